"""ISO 8601 / RFC 3339 timestamps given as strings (awa-pg accepts ``run_at="2030-01-02T03:04:05Z"``)."""

from __future__ import annotations

import datetime as dt

from awa.errors import ValidationError


def parse_timestamp(text: str, name: str = "run_at") -> dt.datetime:
    """A timezone-aware datetime from an ISO 8601 string; one without an
    offset is UTC (as awa-pg reads it)."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{name} must be a datetime or RFC3339 string, got {text!r}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value
