"""Storage operations of unique jobs (no I/O): cancel by key."""

from __future__ import annotations

from typing import Any

from awa.storage.ops import Op, OpsBase, Query
from awa.storage.unique import compute_unique_key
from awa.storage.validate import check_name


class UniqueOps(OpsBase):
    def cancel_by_unique_key(
        self, kind: str, queue: str | None, args: Any, period_bucket: int | None
    ) -> Op:
        """Cancel the oldest live job holding the key of these parts (awa's
        ``cancel_by_unique_key``); the cancelled Job, or None."""
        kind = check_name(kind, "kind")
        if queue is not None:
            queue = check_name(queue, "queue")
        if period_bucket is not None and (type(period_bucket) is not int or not -(1 << 63) <= period_bucket < 1 << 63):
            from awa.errors import ValidationError

            raise ValidationError(f"period_bucket must be a 64-bit integer, got {period_bucket!r}")
        key = compute_unique_key(kind, queue, args, period_bucket)
        res = yield Query(self.q("unique_key_holder"), {"key": key})
        job_id = res.rows[0][0] if res.rows else None
        if job_id is None:
            return None
        job = yield from self.cancel_job(job_id)  # type: ignore[attr-defined]
        return job
