"""What a handler can say about its job besides "done".

Each outcome is an exception so a handler may ``raise`` it from deep inside a
call stack; returning an instance has the same effect (awa's handlers return
``RetryAfter``/``Snooze``/``Cancel``, so both styles work).
"""

from __future__ import annotations

from awa.errors import AwaError, ValidationError


class JobOutcome(AwaError):
    """Base class of the handler outcomes below."""


class RetryAfter(JobOutcome):
    """Retry after ``seconds``; consumes an attempt (the last one fails the job)."""

    def __init__(self, seconds: float, error: str | None = None) -> None:
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise ValidationError(f"RetryAfter seconds must be a number >= 0, got {seconds!r}")
        super().__init__(f"retry after {seconds}s")
        self.seconds = float(seconds)
        self.error = error


class Snooze(JobOutcome):
    """Run again after ``seconds`` without using up an attempt."""

    def __init__(self, seconds: float) -> None:
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise ValidationError(f"Snooze seconds must be a number >= 0, got {seconds!r}")
        super().__init__(f"snooze {seconds}s")
        self.seconds = float(seconds)


class Cancel(JobOutcome):
    """Stop the job for good, state ``cancelled``."""

    def __init__(self, reason: str = "cancelled by handler") -> None:
        super().__init__(reason)
        self.reason = reason


class TerminalError(JobOutcome):
    """Fail the job now, without further retries."""


__all__ = ["JobOutcome", "RetryAfter", "Snooze", "Cancel", "TerminalError"]
