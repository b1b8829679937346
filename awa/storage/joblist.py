"""Job-level admin operations: keyset-paginated listing and retry by id (no I/O).

A page lists jobs newest first (id descending). Its cursor is the smallest id
on the page, as text; the next page holds the ids below it, so a page never
repeats or skips a job that stays in the selection, however many jobs are
enqueued meanwhile, and each page costs the same at any depth (no OFFSET).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from awa.errors import ValidationError
from awa.storage.models import Job, JobState
from awa.storage.ops import Op, OpsBase, Query, jobs_of
from awa.storage.queries import render
from awa.storage.validate import MAX_BIGINT, check_id, check_name, check_queue, check_run_at, is_int

MAX_PAGE = 1_000_000
_DIGITS = re.compile(r"[0-9]{1,19}\Z")

# One statement per combination of filters, each with only the predicates it
# needs: with `(%(state)s IS NULL OR state = ...)` a generic prepared plan
# could not use the partial listing index. The state is one of the enum's
# labels, so it is written into the statement; every other value is a
# parameter.
_SELECT = "SELECT * FROM __schema__.jobs"
_ORDER = " ORDER BY id DESC LIMIT %(limit)s::integer"


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of :meth:`list_jobs_page`; ``next_cursor`` is None on the last page."""

    jobs: list[Job]
    next_cursor: str | None


def parse_state(state: Any) -> JobState | None:
    if state is None:
        return None
    try:
        return JobState(str(state))
    except ValueError:
        raise ValidationError(
            f"unknown job state {state!r}; expected one of {', '.join(str(s) for s in JobState)}"
        ) from None


def parse_cursor(cursor: Any) -> int | None:
    if cursor is None:
        return None
    if is_int(cursor) and 0 < cursor <= MAX_BIGINT:
        return int(cursor)
    if isinstance(cursor, str) and _DIGITS.match(cursor) and 0 < int(cursor) <= MAX_BIGINT:
        return int(cursor)
    raise ValidationError(f"cursor must be a next_cursor from an earlier page, got {cursor!r}")


class JobOps(OpsBase):
    def list_jobs_page(
        self, state: Any, kind: str | None, queue: str | None, limit: int, cursor: Any = None
    ) -> Op:
        job_state = parse_state(state)
        if kind is not None:
            check_name(kind, "kind")
        if queue is not None:
            check_queue(queue, "queue")
        if not is_int(limit) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be an integer between 1 and {MAX_PAGE}, got {limit!r}")
        before = parse_cursor(cursor)
        low = high = None
        if job_state is JobState.AVAILABLE:
            bounds = yield Query(self.q("available_id_range"), {"queue": queue})
            low, high = bounds.rows[0]
            if low is None:
                return JobPage([], None)
        where = []
        if job_state is not None:
            where.append(f"state = '{job_state.label}'")
        if kind is not None:
            where.append("kind = %(kind)s::text")
        if queue is not None:
            where.append("queue = %(queue)s::text")
        if before is not None:
            where.append("id < %(before)s::bigint")
        if low is not None:
            where.append("id BETWEEN %(low)s::bigint AND %(high)s::bigint")
        text = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + _ORDER
        # One row more than asked for tells whether there is a next page.
        res = yield Query(
            render(self.schema, text), {"kind": kind, "queue": queue, "before": before, "low": low, "high": high, "limit": limit + 1}
        )
        jobs = jobs_of(res)
        if len(jobs) > limit:
            del jobs[limit:]
            return JobPage(jobs, str(jobs[-1].id))
        return JobPage(jobs, None)

    def list_jobs(self, state: Any, kind: str | None, queue: str | None, limit: int, cursor: Any = None) -> Op:
        page = yield from self.list_jobs_page(state, kind, queue, limit, cursor)
        return page.jobs

    def retry_job(self, job_id: int, run_at: dt.datetime | None = None) -> Op:
        """A failed or cancelled job back to work (attempts reset); the Job, or None."""
        check_id(job_id)
        run_at = check_run_at(run_at)
        res = yield Query(
            self.q("retry_job"), {"id": job_id, "now": self.now(), "run_at": run_at, "channel": self.channel}
        )
        jobs = jobs_of(res)
        return jobs[0] if jobs else None
