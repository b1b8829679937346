"""Attempt outcomes: written to the store, and failed attempts made visible.

:func:`write_outcome` turns what a handler returned or raised into one store
call (snooze, cancel, fail, or retry with the database's backoff).

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
from typing import Any, Awaitable, Callable

from awa.worker.outcomes import Cancel, JobOutcome, RetryAfter, Snooze, TerminalError

log = logging.getLogger("awa.worker")

ERROR_TEXT_LIMIT = 4000  # characters of traceback kept in a job's error


def error_text(exc: BaseException) -> str:
    """The error's traceback, its last ``ERROR_TEXT_LIMIT`` characters."""
    text = "".join(traceback.format_exception(exc)).strip()
    return text[-ERROR_TEXT_LIMIT:]


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


async def write_outcome(store: Any, raw: Any, outcome: BaseException,
                        failed: Callable[[Any, str, BaseException, float | None], bool]) -> bool:
    """Write the outcome of a failed or re-scheduled attempt of ``raw`` (not a success).

    Returns whether it was applied (False: the lease was stale). ``failed`` is
    called with the store's outcome word of a failed attempt and returns the same.
    """
    if isinstance(outcome, Snooze):
        return bool(await store.snooze(raw.id, raw.run_lease, outcome.seconds))
    if isinstance(outcome, Cancel):
        applied = bool(await store.cancel(raw.id, raw.run_lease))
        if applied:
            log.info("job %s (kind %s, queue %s) cancelled by its handler: %s", raw.id, raw.kind, raw.queue,
                     outcome.reason, extra=job_fields(raw))
        return applied
    if isinstance(outcome, TerminalError):
        word = await store.finish(raw.id, raw.run_lease, "fail", error_text(outcome), None)
        return failed(raw, word, outcome, None)
    # The store decides retry versus failed/dead-lettered from attempt and max_attempts;
    # the delay is the database's backoff rule, drawn here so the log can say when.
    if isinstance(outcome, RetryAfter):
        error = outcome.error or f"retry requested after {outcome.seconds}s"
        delay = outcome.seconds
    else:
        error = error_text(outcome)
        if isinstance(outcome, JobOutcome):  # an unknown outcome subclass: treat as an error
            error = f"unsupported outcome {type(outcome).__name__}: {error}"
        delay = store.backoff_seconds(raw.attempt)
    word = await store.finish(raw.id, raw.run_lease, "retry", error, delay)
    return failed(raw, word, outcome, delay)
