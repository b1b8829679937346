"""Checks of the scalar values a job is made of (no I/O).

Every check returns the value it accepts (normalised where stated) or raises
:class:`~awa.errors.ValidationError` with the text users see.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from awa.errors import SerializationError, ValidationError
from awa.routing.hashes import coerce_key
from awa.storage.codec import std_dumps

MAX_NAME_LENGTH = 200
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def derive_kind(class_name: str) -> str:
    """CamelCase class name -> snake_case kind (``SendEmail`` -> ``send_email``,
    ``HTTPRequest`` -> ``http_request``), the same rule awa uses."""
    out: list[str] = []
    n = len(class_name)
    for i, ch in enumerate(class_name):
        if ch.isupper():
            if i > 0:
                prev = class_name[i - 1]
                nxt_lower = i + 1 < n and class_name[i + 1].islower()
                if prev.islower() or prev.isdigit() or (prev.isupper() and nxt_lower):
                    out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def is_valid_name(value: Any) -> bool:
    """Whether :func:`check_name` accepts ``value`` (without wording an error)."""
    return (
        value.__class__ is str
        and bool(value)
        and len(value) <= MAX_NAME_LENGTH
        and CONTROL_CHARS.search(value) is None
    )


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise ValidationError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(f"{what} must be at most {MAX_NAME_LENGTH} characters (got {len(value)})")
    if CONTROL_CHARS.search(value):
        raise ValidationError(f"{what} must not contain control characters")
    return value


def check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 4:
        raise ValidationError(f"priority must be between 1 and 4, got {priority!r}")
    return priority


def check_max_attempts(max_attempts: Any) -> int:
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or not 1 <= max_attempts <= 1000:
        raise ValidationError(f"max_attempts must be between 1 and 1000, got {max_attempts!r}")
    return max_attempts


def check_run_at(run_at: Any) -> dt.datetime | None:
    if run_at is None:
        return None
    if isinstance(run_at, str):  # awa-pg accepts ISO 8601 strings
        from awa.storage.isotime import parse_timestamp

        return parse_timestamp(run_at)
    if not isinstance(run_at, dt.datetime):
        raise ValidationError(f"run_at must be a datetime, got {type(run_at).__name__}")
    if run_at.tzinfo is None or run_at.utcoffset() is None:
        raise ValidationError("run_at must be timezone-aware")
    return run_at


def check_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, (str, bytes)) or not isinstance(tags, Sequence):
        raise ValidationError("tags must be a list of strings")
    out = []
    for tag in tags:
        if not isinstance(tag, str):
            raise ValidationError("tags must be a list of strings")
        if CONTROL_CHARS.search(tag):
            raise ValidationError("tags must not contain control characters")
        out.append(tag)
    return out


def check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError("metadata must be a dict")
    metadata = dict(metadata)
    try:
        text = std_dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"metadata is not JSON-serialisable: {exc}") from None
    if "\\u0000" in text:
        raise ValidationError("metadata must not contain NUL characters")
    return metadata


def check_key(key: Any) -> bytes | None:
    """An ordering key as stored: bytes (str UTF-8 encoded), or None."""
    if key is None:
        return None
    if isinstance(key, (bytes, str)):
        return key if isinstance(key, bytes) else key.encode("utf-8", "surrogatepass")
    return coerce_key(key)  # bytes-like, or ValidationError with the routing module's text


def is_finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def seconds(value: float | dt.timedelta | None, what: str) -> float | None:
    """A duration in seconds from a number or a timedelta (None stays None)."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if not is_finite_number(value):
        raise ValidationError(f"{what} must be a finite number of seconds, got {value!r}")
    return float(value)


def is_int(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)
