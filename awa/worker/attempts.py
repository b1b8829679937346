"""Failed attempts, made visible: each one counted and logged once.

A failed attempt is logged when its outcome has been written (a stale lease
logs nothing): ``WARNING`` when the job runs again, with the time of the next
attempt; ``ERROR`` when it failed for good or was dead-lettered. The record's
fields (``job_id``, ``kind``, ``queue``, ``attempt``, ``max_attempts``,
``error`` - the error's last line -, ``outcome``, ``next_run_at``) are printed
by ``awa ... --log-format json``.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from typing import Any

log = logging.getLogger("awa.worker")


def last_line(exc: BaseException) -> str:
    """The error's last line (``ValueError: boom``), as a traceback ends."""
    text = "".join(traceback.format_exception_only(exc)).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def job_fields(raw: Any, **more: Any) -> dict[str, Any]:
    """Structured fields of a job's log record."""
    return {"job_id": raw.id, "kind": raw.kind, "queue": raw.queue, "attempt": raw.attempt,
            "max_attempts": raw.max_attempts, **more}


def log_failed_attempt(stats: Any, metrics: Any, raw: Any, word: str, outcome: BaseException,
                       delay: float | None) -> None:
    """Count (``stats``, ``metrics``) and log the failed attempt whose outcome word is ``word``."""
    stats.failed_attempts += 1
    metrics.failed(raw.queue, word)
    fields = job_fields(raw, error=last_line(outcome), outcome=word)
    if word in ("retryable", "available"):
        stats.retrying += 1
        at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delay or 0.0)
        fields["next_run_at"] = at.isoformat(timespec="seconds")
        log.warning("job %s (kind %s, queue %s) attempt %s/%s failed: %s; next attempt in %.1fs (at %s)",
                    raw.id, raw.kind, raw.queue, raw.attempt, raw.max_attempts, fields["error"], delay or 0.0,
                    at.strftime("%H:%M:%S"), extra=fields)
        return
    stats.failed += 1
    where = "dead-lettered" if word == "dead_lettered" else "failed for good"
    log.error("job %s (kind %s, queue %s) %s after attempt %s/%s: %s", raw.id, raw.kind, raw.queue,
              where, raw.attempt, raw.max_attempts, fields["error"], extra=fields)
