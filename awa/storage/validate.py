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
from awa.routing.names import is_valid_queue_name, queue_name_problem
from awa.storage.codec import JsonRejected, strict_dumps

MAX_NAME_LENGTH = 200
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
SURROGATES = re.compile("[\ud800-\udfff]")  # lone surrogates: not Unicode, not encodable as UTF-8
# The largest integer a bigint/integer parameter takes (ids, leases, limits).
MAX_BIGINT = (1 << 63) - 1
MAX_INT4 = (1 << 31) - 1


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
        and SURROGATES.search(value) is None
    )


def is_valid_queue(value: Any) -> bool:
    """Whether :func:`check_queue` accepts ``value`` (without wording an error)."""
    return is_valid_queue_name(value)


# Names already accepted, so that a producer naming the same queue and kind on
# every call checks each once (a regular-expression pass apiece was a tenth of
# the Python of a single insert). Only exact ``str`` values are remembered;
# the sets are emptied when they reach their bound.
_KNOWN_LIMIT = 4096
_known_queues: set[str] = set()
_known_names: set[str] = set()


def _remember(known: set[str], value: str) -> None:
    if len(known) >= _KNOWN_LIMIT:
        known.clear()
    known.add(value)


def check_queue(value: Any, what: str = "queue", *, allow_partition: bool = True) -> str:
    """A queue name of the grammar in :mod:`awa.routing.names` (partition
    names ``base__pN`` included unless ``allow_partition=False``)."""
    if allow_partition and value.__class__ is str and value in _known_queues:
        return value
    problem = queue_name_problem(value, allow_partition=allow_partition)
    if problem is not None:
        raise ValidationError(f"{what} {problem}")
    if allow_partition:
        _remember(_known_queues, value)
    return value


def check_name(value: Any, what: str) -> str:
    if value.__class__ is str and value in _known_names:
        return value
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise ValidationError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(f"{what} must be at most {MAX_NAME_LENGTH} characters (got {len(value)})")
    if CONTROL_CHARS.search(value):
        raise ValidationError(f"{what} must not contain control characters")
    if SURROGATES.search(value):
        raise ValidationError(f"{what} must not contain lone surrogates (not valid Unicode)")
    if value.__class__ is str:
        _remember(_known_names, value)
    return value


def check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 4:
        raise ValidationError(f"priority must be between 1 and 4, got {priority!r}")
    return priority


def check_max_attempts(max_attempts: Any) -> int:
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or not 1 <= max_attempts <= 1000:
        raise ValidationError(f"max_attempts must be between 1 and 1000, got {max_attempts!r}")
    return max_attempts


# Every timestamp the database returns must load into a Python datetime in
# any session time zone (offsets up to +-16 h): a day of margin on each side
# of datetime's range. PostgreSQL itself would store far more (4713 BC ..
# 294276 AD), but a job that cannot be read back is an error after a commit.
MIN_RUN_AT = dt.datetime(1, 1, 2, tzinfo=dt.timezone.utc)
MAX_RUN_AT = dt.datetime(9999, 12, 30, tzinfo=dt.timezone.utc)


def check_run_at(run_at: Any, what: str = "run_at") -> dt.datetime | None:
    if run_at is None:
        return None
    if isinstance(run_at, str):  # awa-pg accepts ISO 8601 strings
        from awa.storage.isotime import parse_timestamp

        return parse_timestamp(run_at, what)
    if not isinstance(run_at, dt.datetime):
        raise ValidationError(f"{what} must be a datetime, got {type(run_at).__name__}")
    try:
        offset = run_at.utcoffset()
    except Exception as exc:  # a tzinfo whose utcoffset() misbehaves
        raise ValidationError(f"{what} has an unusable tzinfo: {exc}") from None
    if offset is None:
        raise ValidationError(f"{what} must be timezone-aware")
    try:
        utc = run_at.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not MIN_RUN_AT <= utc <= MAX_RUN_AT:
        raise ValidationError(
            f"{what} must be between {MIN_RUN_AT.date()} and {MAX_RUN_AT.date()} UTC, got {run_at.isoformat()}"
        )
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
        if SURROGATES.search(tag):
            raise ValidationError("tags must not contain lone surrogates (not valid Unicode)")
        out.append(tag)
    return out


def check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError("metadata must be a dict")
    metadata = dict(metadata)
    check_json(metadata, "metadata")
    return metadata


def check_json(value: Any, what: str) -> str:
    """The JSON text of ``value`` as stored (see :func:`awa.storage.codec.strict_dumps`)."""
    try:
        text = strict_dumps(value)
    except JsonRejected as exc:
        raise ValidationError(f"{what} {exc}") from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise SerializationError(f"{what} is not JSON-serialisable: {exc}") from None
    if "\\u0000" in text:
        raise ValidationError(f"{what} must not contain NUL characters")
    return text


def check_key(key: Any) -> bytes | None:
    """An ordering key as stored: bytes (str UTF-8 encoded), or None."""
    if key is None:
        return None
    # The routing module's rule, so insert and route_by_key accept the same
    # keys: str UTF-8 encoded (a lone surrogate is rejected), bytes-like copied.
    return coerce_key(key)


def is_finite_number(x: Any) -> bool:
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond float range
        return False


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


def check_int(value: Any, what: str, *, minimum: int = 0, maximum: int = MAX_BIGINT) -> int:
    """An int (not a bool) in ``minimum .. maximum`` (default: a non-negative bigint)."""
    if not is_int(value) or not minimum <= value <= maximum:
        raise ValidationError(f"{what} must be an integer between {minimum} and {maximum}, got {value!r}")
    return int(value)


# Longest delay or deadline accepted (snooze, retry, deadline_ms): 100 years,
# far inside PostgreSQL's interval range and datetime's.
MAX_DELAY_SECONDS = 100 * 365 * 86_400.0


def check_id(value: Any, what: str = "job id") -> int:
    """A job id or run lease: an int in bigint range."""
    return check_int(value, what, minimum=-MAX_BIGINT - 1)


def check_limit(value: Any, what: str = "limit", *, minimum: int = 0) -> int:
    """A row count sent as an ``integer`` parameter."""
    return check_int(value, what, minimum=minimum, maximum=MAX_INT4)


def check_delay(value: Any, what: str) -> float | None:
    """A delay in seconds (number or timedelta), at most :data:`MAX_DELAY_SECONDS`;
    negative delays mean now, as the database treats them."""
    try:
        delay = seconds(value, what)
    except OverflowError:
        delay = math.inf
    if delay is not None and not delay <= MAX_DELAY_SECONDS:
        raise ValidationError(f"{what} must be at most {MAX_DELAY_SECONDS:.0f} seconds (100 years), got {value!r}")
    return delay


def check_timeout(value: Any, what: str) -> float:
    """A positive duration in seconds, at most :data:`MAX_DELAY_SECONDS`."""
    delay = check_delay(value, what)
    if delay is None or not delay > 0:
        raise ValidationError(f"{what} must be a positive number of seconds, got {value!r}")
    return delay


def check_duration_ms(value: Any, what: str, *, minimum: int) -> int:
    return check_int(value, what, minimum=minimum, maximum=int(MAX_DELAY_SECONDS * 1000))


def check_text(value: Any, what: str) -> str:
    """Free text stored in a text column: a str without NUL or lone surrogates."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise ValidationError(f"{what} must not contain NUL characters")
    if SURROGATES.search(value):
        raise ValidationError(f"{what} must not contain lone surrogates (not valid Unicode)")
    return value
