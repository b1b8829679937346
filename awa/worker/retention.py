"""Retention, run by the maintenance leader: finished jobs leave after their retention.

Defaults are awa's: completed jobs stay 24 hours, failed and cancelled jobs
72 hours, dead-letter entries 30 days. ``start()`` takes awa-pg's options
(``completed_retention_hours``, ``failed_retention_hours``,
``cleanup_batch_size``, per queue ``"retention": {"completed_hours": ...,
"failed_hours": ...}``) and ``dlq_retention_hours``, ``cleanup_interval_ms``,
``terminal_count_rollup_interval_ms``.

Every ``cleanup_interval_ms`` the leader deletes what is due in batches of
``cleanup_batch_size`` rows, each batch its own short transaction that skips
locked rows, so producers and claimers never wait for it; a round spends at
most :data:`ROUND_BUDGET_S` on it and goes on in the next round when more is
due. Every ``terminal_count_rollup_interval_ms`` it folds finished jobs into
the stored terminal counts that keep ``queue_stats`` cheap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from awa.errors import ValidationError
from awa.storage.housekeeping import HOUR, RetentionPolicy, check_hours

log = logging.getLogger("awa.worker.retention")

DEFAULT_COMPLETED_HOURS = 24.0
DEFAULT_FAILED_HOURS = 72.0
DEFAULT_DLQ_HOURS = 720.0
DEFAULT_CLEANUP_BATCH_SIZE = 1000
DEFAULT_CLEANUP_INTERVAL_MS = 60_000
DEFAULT_ROLLUP_INTERVAL_MS = 5_000
# Terminal rows finished within this many seconds are counted live, not rolled up.
ROLLUP_LAG_S = 2.0
# Pruning time per maintenance round, so rescue and promotion keep their pace.
ROUND_BUDGET_S = 0.25

_RETENTION_KEYS = frozenset({"completed_hours", "failed_hours"})


def parse_queue_retention(value: Any, queue: str) -> tuple[float | None, float | None] | None:
    """A queue config's ``retention`` dict as (completed_hours, failed_hours); None keeps the defaults."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError("retention must be a dict with 'completed_hours' and/or 'failed_hours' keys")
    unknown = sorted(set(value) - _RETENTION_KEYS)
    if unknown:
        raise ValidationError(f"unknown retention key(s) for queue '{queue}': {', '.join(map(str, unknown))}")
    completed = value.get("completed_hours")
    failed = value.get("failed_hours")
    return (
        None if completed is None else check_hours(completed, "retention completed_hours"),
        None if failed is None else check_hours(failed, "retention failed_hours"),
    )


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValidationError(f"{name} must be > 0")
    return value


@dataclass(frozen=True)
class RetentionSettings:
    default: RetentionPolicy
    per_queue: dict[str, RetentionPolicy] = field(default_factory=dict)
    dlq_s: float = DEFAULT_DLQ_HOURS * HOUR
    batch_size: int = DEFAULT_CLEANUP_BATCH_SIZE
    interval_s: float = DEFAULT_CLEANUP_INTERVAL_MS / 1000
    rollup_interval_s: float = DEFAULT_ROLLUP_INTERVAL_MS / 1000

    @classmethod
    def build(cls, options: Any, queue_overrides: Iterable[tuple[str, Any]] = ()) -> RetentionSettings:
        """From runtime options (None: the default) and ``(physical queue, retention)`` pairs."""
        completed = options.completed_retention_hours
        failed = options.failed_retention_hours
        completed_h = DEFAULT_COMPLETED_HOURS if completed is None else check_hours(completed, "completed_retention_hours")
        failed_h = DEFAULT_FAILED_HOURS if failed is None else check_hours(failed, "failed_retention_hours")
        dlq = options.dlq_retention_hours
        dlq_h = DEFAULT_DLQ_HOURS if dlq is None else check_hours(dlq, "dlq_retention_hours")
        per_queue = {}
        for name, raw in queue_overrides:
            parsed = parse_queue_retention(raw, name)
            if parsed is not None:
                q_completed, q_failed = parsed
                per_queue[name] = RetentionPolicy(
                    (completed_h if q_completed is None else q_completed) * HOUR,
                    (failed_h if q_failed is None else q_failed) * HOUR,
                )

        def option(name: str, default: int) -> int:
            value = getattr(options, name)
            return default if value is None else _positive_int(value, name)

        return cls(
            default=RetentionPolicy(completed_h * HOUR, failed_h * HOUR),
            per_queue=per_queue,
            dlq_s=dlq_h * HOUR,
            batch_size=option("cleanup_batch_size", DEFAULT_CLEANUP_BATCH_SIZE),
            interval_s=option("cleanup_interval_ms", DEFAULT_CLEANUP_INTERVAL_MS) / 1000,
            rollup_interval_s=option("terminal_count_rollup_interval_ms", DEFAULT_ROLLUP_INTERVAL_MS) / 1000,
        )


class Retention:
    """The leader's retention work; :meth:`tick` once per maintenance round."""

    def __init__(self, store: Any, settings: RetentionSettings, metrics: Any = None) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self._next_prune = 0.0
        self._next_rollup = 0.0
        self.deleted = {"completed": 0, "failed": 0, "cancelled": 0, "dlq": 0}

    async def tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_rollup:
            await self.store.rollup_terminal_counts(ROLLUP_LAG_S)
            self._next_rollup = now + self.settings.rollup_interval_s
        if now >= self._next_prune:
            more = await self.prune(ROUND_BUDGET_S)
            # Unfinished (the budget ran out): go on next round, not next interval.
            self._next_prune = now if more else now + self.settings.interval_s

    async def prune(self, budget_s: float | None = None) -> bool:
        """Delete what is due, batch by batch; True when the budget ran out first."""
        s = self.settings
        started = time.monotonic()
        totals: dict[str, int] = {}
        more = False
        for target in ("jobs", "dlq"):
            while True:
                if target == "jobs":
                    rows = await self.store.prune_terminal(s.default, s.per_queue, s.batch_size)
                    n = sum(count for _q, _s, count in rows)
                    for queue, state, count in rows:
                        totals[state] = totals.get(state, 0) + count
                        if self.metrics is not None:
                            self.metrics.pruned(queue, state, count)
                else:
                    n = await self.store.prune_dlq(s.dlq_s, s.batch_size)
                    totals["dlq"] = totals.get("dlq", 0) + n
                if n < s.batch_size:
                    break
                if budget_s is not None and time.monotonic() - started >= budget_s:
                    more = True
                    break
            if more:
                break
        for key, n in totals.items():
            self.deleted[key] = self.deleted.get(key, 0) + n
        if any(totals.values()):
            log.info("retention: deleted %s", ", ".join(f"{n} {k}" for k, n in sorted(totals.items()) if n))
        return more
