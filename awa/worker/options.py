"""The worker runtime's options, and how many pool connections it needs."""

from __future__ import annotations

from dataclasses import dataclass

from awa.errors import ValidationError
from awa.worker.claim_batcher import DEFAULT_CLAIM_GROUPS
from awa.worker.config import RuntimePlan
from awa.worker.retention import RetentionSettings


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    poll_interval_ms: int = 200
    heartbeat_interval_ms: int = 30_000
    heartbeat_staleness_ms: int = 90_000
    rescue_interval_ms: int = 5_000
    promote_interval_ms: int = 250
    leader_election_interval_ms: int = 2_000
    leader_lease_ms: int = 5_000  # a frozen leader stops maintenance for at most this long
    completion_batch_size: int = 512
    completion_flush_ms: float = 2.0
    sync_handler_threads: int | None = None
    # Retention (awa.worker.retention); None: the default.
    completed_retention_hours: float | None = None
    failed_retention_hours: float | None = None
    dlq_retention_hours: float | None = None
    cleanup_batch_size: int | None = None
    cleanup_interval_ms: int | None = None
    terminal_count_rollup_interval_ms: int | None = None
    # The most pool connections the worker uses (None: what its claimers,
    # flusher, heartbeats and maintenance can use at once; never per partition).
    max_connections: int | None = None

    def validate(self) -> None:
        for name in (
            "poll_interval_ms",
            "heartbeat_interval_ms",
            "heartbeat_staleness_ms",
            "rescue_interval_ms",
            "promote_interval_ms",
            "leader_election_interval_ms",
            "leader_lease_ms",
            "completion_batch_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValidationError(f"{name} must be an int > 0, got {value!r}")
        if self.heartbeat_staleness_ms <= self.heartbeat_interval_ms:
            raise ValidationError(
                "heartbeat_staleness_ms must exceed heartbeat_interval_ms, or healthy jobs would be rescued"
            )
        if self.leader_lease_ms < 30:
            raise ValidationError(f"leader_lease_ms must be at least 30 (renewed every third), got {self.leader_lease_ms}")
        if self.sync_handler_threads is not None and (
            not isinstance(self.sync_handler_threads, int) or self.sync_handler_threads <= 0
        ):
            raise ValidationError("sync_handler_threads must be an int > 0")
        if self.max_connections is not None and (
            not isinstance(self.max_connections, int) or isinstance(self.max_connections, bool)
            or self.max_connections <= 0
        ):
            raise ValidationError(f"max_connections must be an int > 0, got {self.max_connections!r}")
        RetentionSettings.build(self)  # the retention options, checked


def connection_budget(plan: RuntimePlan, cap: int | None = None) -> int:
    """Pool connections the runtime can use at once, whatever the width.

    Claims of plain queues go through the claim batcher: at most
    ``DEFAULT_CLAIM_GROUPS`` statements at a time per claim setting (deadline,
    aging), however many partitions; a shared-slots entry claims with one
    statement per claimer. Plus the completion flusher, the heartbeat loop and
    one maintenance statement. Outcomes of failed attempts queue for these
    connections rather than open more. ``cap`` (``max_connections``) bounds
    the total. (LISTEN uses a dedicated connection outside the pool.)"""
    settings: dict[tuple[int, int], int] = {}
    shared = 0
    for q in plan.queues:
        if q.partitions is not None and q.partitions > 1:
            shared += q.claimers
        else:
            key = (q.deadline_duration_ms, q.priority_aging_interval_ms)
            settings[key] = settings.get(key, 0) + q.claimers
    claims = shared + sum(min(DEFAULT_CLAIM_GROUPS, n) for n in settings.values())
    needed = claims + 3
    return needed if cap is None else max(1, min(needed, cap))
