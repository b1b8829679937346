"""The dead-letter queue on both clients, with awa-pg's names and signatures.

A mixin of :class:`~awa.client.api.ClientAPI`: every method runs one
operation of :mod:`awa.storage.dlq_ops`, so ``Client`` returns values and
``AsyncClient`` awaitables. The bulk calls (``bulk_retry_from_dlq``,
``bulk_move_failed_to_dlq``, ``purge_dlq``) are one statement each and
return a count; without a ``kind``, ``queue`` or ``tag`` they need
``allow_all=True``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from awa.storage.unique import guarded


class DlqAPI:
    _core: Any
    _drive: Any  # ClientAPI's

    def list_dlq(
        self,
        *,
        kind: str | None = None,
        queue: str | None = None,
        tag: str | None = None,
        before_id: int | None = None,
        before_dlq_at: dt.datetime | str | None = None,
        limit: int = 100,
    ) -> Any:
        """:class:`~awa.storage.models.DlqEntry` objects newest first
        (``dlq_at``, then id); the next page: ``before_dlq_at=last.dlq_at,
        before_id=last.job.id``."""
        return self._drive(self._core.list_dlq(queue, kind, limit, tag, before_id, before_dlq_at), tx=False)

    def get_dlq_job(self, job_id: int) -> Any:
        """The entry of this job, or None."""
        return self._drive(self._core.get_dlq_job(job_id), tx=False)

    def dlq_depth(self, *, queue: str | None = None) -> Any:
        return self._drive(self._core.dlq_depth(queue), tx=False)

    def retry_from_dlq(
        self,
        job_id: int,
        *,
        run_at: dt.datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
    ) -> Any:
        """Put a dead-lettered job back into its lane (attempts reset); the Job or None."""
        return guarded(self._drive, self._core.retry_from_dlq(job_id, run_at, priority, queue))

    def purge_dlq_job(self, job_id: int) -> Any:
        """Delete one entry; whether it existed."""
        return self._drive(self._core.purge_dlq_job(job_id), tx=False)

    def move_failed_to_dlq(self, job_id: int, reason: str = "manual") -> Any:
        """Move a failed job into the DLQ; its DlqEntry, or None when the job
        is not failed."""
        return self._drive(self._core.move_failed_to_dlq(job_id, reason))

    def bulk_retry_from_dlq(
        self,
        *,
        kind: str | None = None,
        queue: str | None = None,
        tag: str | None = None,
        allow_all: bool = False,
    ) -> Any:
        """Every entry of ``kind``/``queue``/``tag`` back to work (attempts
        reset, in id order); the number retried. A unique conflict raises
        :class:`~awa.errors.UniqueConflict` with nothing retried."""
        return guarded(self._drive, self._core.bulk_retry_from_dlq(kind, queue, tag, allow_all), None, False)

    def bulk_move_failed_to_dlq(
        self,
        *,
        kind: str | None = None,
        queue: str | None = None,
        reason: str = "manual",
        allow_all: bool = False,
    ) -> Any:
        """Every failed job of ``kind`` and/or ``queue`` into the DLQ; the number moved."""
        return self._drive(self._core.bulk_move_failed_to_dlq(kind, queue, reason, allow_all), tx=False)

    def purge_dlq(
        self,
        *,
        kind: str | None = None,
        queue: str | None = None,
        tag: str | None = None,
        before_id: int | None = None,
        before_dlq_at: dt.datetime | str | None = None,
        allow_all: bool = False,
    ) -> Any:
        """Delete the matching entries (the cursor as in :meth:`list_dlq`); the number deleted."""
        return self._drive(
            self._core.purge_dlq(kind, queue, tag, before_id, before_dlq_at, allow_all), tx=False
        )
