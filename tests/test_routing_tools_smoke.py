"""Smoke runs of bench/routing.py and scripts/distribution_report.py at tiny sizes.

No speed assertions (shared, noisy machines): these check that the tools run,
that the benchmark's exactness guard holds, and that the report shows the
documented findings.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ and scripts/ are top-level packages of the repository.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import routing as routing_bench  # noqa: E402
from scripts import distribution_report  # noqa: E402

from awa.routing import PartitionedQueue  # noqa: E402


def test_benchmark_baseline_is_the_contract() -> None:
    pq = PartitionedQueue("customer-updates", 4)
    keys = [f"customer-{i}" for i in range(500)] + ["", "ключ", "x" * 200]
    assert [routing_bench.naive_queue_for_key(pq.physical_queues, k) for k in keys] == pq.queues_for_keys(keys)


def test_benchmark_runs_and_reports_every_case() -> None:
    results = routing_bench.run(keys=300, rounds=1)
    assert results["keys"] == 300
    for family in ("customer", "uuid"):
        figures = results["families"][family]
        assert "baseline per-byte loop" in figures
        assert "batch queues_for_keys (awa-compat)" in figures
        assert "single queue_for_key (awa-compat)" in figures
        for fig in figures.values():
            assert fig["median_keys_per_s"] > 0 and fig["median_keys_per_cpu_s"] > 0
    assert set(results["targets"]) == {"batch_keys_per_s", "single_keys_per_s"}
    assert "| customer-{i} | baseline per-byte loop |" in results["markdown"]


def test_distribution_report_shows_the_findings() -> None:
    text = distribution_report.report(2_000)
    assert "COLLAPSED" in text  # the base hash's shards on the high-bit family
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    collapsed = [r for r in rows if r.endswith("COLLAPSED |")]
    # Only the high-bit family collapses, and only where the base hash is
    # reduced directly: shards, and the correlated scheme's partitions.
    assert collapsed and all("| high-bit |" in r and "| xxh3 |" not in r for r in collapsed)
    assert not [r for r in collapsed if "| awa-compat | partition |" in r]
    assert [r for r in collapsed if "| awa-compat | shard |" in r]
    # (xxh3's full coverage needs more keys than a smoke run; the 20,000-key
    # grid test in test_routing_distribution.py covers it.)
    assert "| awa-compat | 256 |" in text
    assert "| correlated | 159 |" in text
