"""Which Python mirror belongs to which spec, and how to check one model."""

from __future__ import annotations

from types import ModuleType

from verification.mirrors import claim_groups, cron, key_concurrency, leadership, lifecycle, producers, routing
from verification.mirrors import continuous_load
from verification.mirrors import repartition
from verification.mirrors import producers_horizon
from verification.mirrors import producers_lazy
from verification.mirrors.cfg import parse_cfg
from verification.mirrors.explore import CheckResult, Model, check
from verification.mirrors.manifest import ModelEntry

MIRRORS: dict[str, ModuleType] = {
    "PartitionedQueueRouting": routing,
    "PartitionedQueueLifecycle": lifecycle,
    "ClaimGroups": claim_groups,
    "KeyConcurrency": key_concurrency,
    "Cron": cron,
    "ConcurrentProducers": producers,
    "Leadership": leadership,
    "ContinuousLoad": continuous_load,
    "PartitionedQueueRepartition": repartition,
    "ProducersHorizon": producers_horizon,
    "ProducersLazy": producers_lazy,
}

#: Modules of broken designs: each EXTENDS one spec above and only defines
#: replacement operators that a cfg swaps in (``Op <- OpBroken``); the base
#: spec's mirror reads the overrides from the cfg.
BROKEN_MODULES: dict[str, str] = {
    "PartitionedQueueRoutingBroken": "PartitionedQueueRouting",
    "PartitionedQueueLifecycleBroken": "PartitionedQueueLifecycle",
    "ClaimGroupsBroken": "ClaimGroups",
    "ConcurrentProducersBroken": "ConcurrentProducers",
    "PartitionedQueueRepartitionBroken": "PartitionedQueueRepartition",
    "LeadershipBroken": "Leadership",
    "ContinuousLoadBroken": "ContinuousLoad",
    "CronBroken": "Cron",
    "ProducersHorizonBroken": "ProducersHorizon",
    "ProducersLazyBroken": "ProducersLazy",
}


def base_spec(module: str) -> str:
    """The spec a manifest module belongs to (itself, or what it EXTENDS)."""
    return BROKEN_MODULES.get(module, module)


def mirror_names(spec: str) -> set[str]:
    """Every invariant/property name the mirror of ``spec`` can check."""
    module = MIRRORS[spec]
    names: set[str] = set()
    for table in ("STATE_INVARIANTS", "CONSTANT_INVARIANTS", "INVARIANTS",
                  "ACTION_PROPERTIES", "LIVENESS"):
        names.update(getattr(module, table, {}))
    return names


def build(entry: ModelEntry) -> tuple[Model, list[str], list[str]]:
    config = parse_cfg(entry.cfg_path)
    model = MIRRORS[base_spec(entry.spec)].build_model(config)
    return model, config.invariants, config.properties


def check_entry(entry: ModelEntry, progress: bool = False) -> CheckResult:
    model, invariants, properties = build(entry)
    return check(model, invariants, properties, progress=progress)


def matches(entry: ModelEntry, result: CheckResult) -> bool:
    if result.outcome != entry.expected or result.tlc_exit != entry.tlc_exit:
        return False
    if entry.expected == "pass":
        return result.distinct_states == entry.distinct_states
    # A failing model must come with a trace unless TLC itself gives none
    # (constant-level violation at start-up).
    return bool(result.trace) or entry.tlc_exit == 151
