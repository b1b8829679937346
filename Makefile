# Every target sets itself up: a fresh clone needs only Python >= 3.11 and make.
# `make help` lists the targets.

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
PYTEST_ARGS ?=
# Parallel test workers: pytest-xdist with one process per core (2 here).
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help venv test test-serial verify verify-deep tlc mirrors machines bench clean mutants chaos

help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@echo "==> creating virtualenv $(VENV) and installing awa[dev]"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(VENV)/.installed-bench: $(STAMP)
	@echo "==> installing the bench extra (matplotlib) into $(VENV)"
	@$(PY) -m pip install --quiet -e '.[dev,bench]'
	@touch $@

venv: $(STAMP) ## Create .venv and install the package with dev extras (only when pyproject.toml changed)

test: $(STAMP) ## Run the test suite (parallel, real PostgreSQL; DATABASE_URL or embedded PG 18)
	@$(PY) -m scripts.run_tests -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-serial: $(STAMP) ## Run the test suite in one process
	@$(PY) -m scripts.run_tests -n 0 $(PYTEST_ARGS)

verify: $(STAMP) ## Every check: TLC models, spec parsing, model mirrors, tests, state machines; summary table
	@$(PY) -m scripts.verify

verify-deep: $(STAMP) ## Like verify, with long Hypothesis runs (HYPOTHESIS_PROFILE=deep), then make mutants
	@rc=0; HYPOTHESIS_PROFILE=deep $(PY) -m scripts.verify --deep || rc=1; \
	$(PY) -m scripts.mutants $(MUTANTS_ARGS) || rc=1; exit $$rc

tlc: ## Run the TLC model checks (SKIP with exit 3 when no Java or tla2tools.jar)
	@bash scripts/run-tlc.sh

mirrors: $(STAMP) ## Explore every spec config with the Python model mirrors and compare with the manifest
	@$(PY) -m verification.mirrors check

machines: $(STAMP) ## Hypothesis state machines against PostgreSQL (HYPOTHESIS_PROFILE, default ci)
	@$(PY) -m scripts.run_tests -n $(TEST_WORKERS) -m machines $(PYTEST_ARGS)

mutants: $(STAMP) ## Seeded defects, one at a time on a copy of the tree: each must be killed by a test (MUTANTS_ARGS="-k NAME")
	@$(PY) -m scripts.mutants $(MUTANTS_ARGS)

chaos: $(STAMP) ## Fault injection on a throwaway PostgreSQL: kill -9, restarts, terminated COPY, frozen leader (CHAOS_ARGS="--profile full")
	@$(PY) scripts/chaos.py $(CHAOS_ARGS)

bench: $(VENV)/.installed-bench ## Benchmarks with printed figures, side by side with awa-pg (BENCH_ARGS="--quick")
	@$(PY) -m bench $(BENCH_ARGS)

clean: ## Remove the virtualenv, caches and benchmark output
	rm -rf $(VENV) .bench-venv* .pytest_cache .hypothesis bench/results .verify
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
