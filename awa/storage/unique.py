"""Unique-job keys and options, byte-compatible with awa (no I/O).

A unique key is BLAKE3 over the kind, then ``\\x00`` + queue, ``\\x00`` +
canonical JSON args and ``\\x00`` + the period bucket as a little-endian i64
(each only when the options include it), truncated to 16 bytes. Canonical
JSON is what Rust's ``serde_json`` writes for a ``Value``: compact, object
keys sorted, non-ASCII as UTF-8, floats in the shortest round-trip form with
Rust's exponent notation (``1e20``, ``1.5e-7``). So a Rust, a Python and a
SQL producer computing the key of the same job agree (ADR 0021).

The database enforces the key with a partial unique index over
``(unique_key)`` for jobs whose state is in their own ``unique_states``
mask, so duplicates are refused exactly, by concurrent producers, inside one
COPY batch and across the partitions of a partitioned queue.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import struct
from collections.abc import Mapping
from typing import Any

import blake3

from awa.errors import UniqueConflict, ValidationError
from awa.storage.models import JobState

KEY_BYTES = 16
INDEX_NAME = "idx_awa_jobs_unique"

# Bit i of awa's states mask is the i-th state of its enum.
STATE_BITS = ("scheduled", "available", "running", "completed", "retryable", "failed", "cancelled", "waiting_external")
DEFAULT_STATES = 0b0001_1111  # scheduled, available, running, completed, retryable
# The worker moves jobs among these on its own (claim, retry, snooze, rescue,
# promotion); a mask must hold all of them so no transition can run into a key.
LIVE_STATES = 0b0001_0111
OPTION_KEYS = ("by_queue", "by_args", "by_period", "states")
_I64 = (-(1 << 63), (1 << 63) - 1)


@dataclasses.dataclass(frozen=True, slots=True)
class UniqueOpts:
    """awa's ``unique_opts``: which parts of a job make it unique, among which states."""

    by_queue: bool = False
    by_args: bool = True
    by_period: int | None = None
    states: int = DEFAULT_STATES

    @property
    def states_bits(self) -> str:
        """The ``bit(8)`` text PostgreSQL stores: awa's bit 0 leftmost."""
        return "".join("1" if self.states >> i & 1 else "0" for i in range(8))

    def state_names(self) -> list[str]:
        return [name for i, name in enumerate(STATE_BITS) if self.states >> i & 1]


def parse_unique_opts(value: Any, where: str = "unique_opts") -> UniqueOpts | None:
    """A dict as awa-pg takes it (``by_queue``, ``by_args``, ``by_period``,
    ``states``), a :class:`UniqueOpts`, or None."""
    if value is None or isinstance(value, UniqueOpts):
        return value
    if not isinstance(value, Mapping):
        raise ValidationError(f"{where} must be a dict")
    for name in value:
        if name not in OPTION_KEYS:
            raise ValidationError(
                f"unsupported {where} key {name!r}; expected 'by_queue', 'by_args', 'by_period' or 'states'"
            )
    by_queue = value.get("by_queue", False)
    by_args = value.get("by_args", True)
    for flag, got in (("by_queue", by_queue), ("by_args", by_args)):
        if not isinstance(got, bool):
            raise ValidationError(f"{where} {flag} must be a bool, got {got!r}")
    period = value.get("by_period")
    if period is not None and (type(period) is not int or not _I64[0] <= period <= _I64[1]):
        raise ValidationError(f"{where} by_period must be a 64-bit integer period bucket, got {period!r}")
    states = value.get("states", DEFAULT_STATES)
    if type(states) is not int or not 0 <= states <= 255:
        raise ValidationError(f"{where} states must be an 8-bit state mask (0..255), got {states!r}")
    if states & LIVE_STATES != LIVE_STATES:
        raise ValidationError(
            f"{where} states must include scheduled, available, running and retryable "
            f"(mask {LIVE_STATES:#06b}); got {states:#010b}"
        )
    return UniqueOpts(by_queue, by_args, period, states)


# -- canonical JSON, as serde_json writes a Value --------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _float(value: float) -> str:
    """The shortest round-trip digits (Python's repr finds the same ones as
    Rust's ryu) laid out the way ryu does."""
    if not math.isfinite(value):
        raise ValidationError("unique key args must not contain NaN or infinity")
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    every = whole + frac  # value = 0.<every> * 10**(len(whole) + exponent)
    lead = len(every) - len(every.lstrip("0"))
    point = len(whole) + exponent - lead  # where ryu puts the decimal point
    digits = every.strip("0")
    n = len(digits)
    if 0 < point <= 16:  # 1234e7 -> 12340000000.0 ; 1234e-2 -> 12.34
        if n <= point:
            return f"{sign}{digits}{'0' * (point - n)}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -5 < point <= 0:  # 1234e-6 -> 0.001234
        return f"{sign}0.{'0' * -point}{digits}"
    exp = point - 1
    if n == 1:
        return f"{sign}{digits}e{exp}"
    return f"{sign}{digits[0]}.{digits[1:]}e{exp}"


def canonical_json(value: Any) -> str:
    """``value`` as serde_json writes the equivalent ``Value`` (keys sorted)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if -(1 << 63) <= value < (1 << 64):
            return str(value)
        return _float(float(value))  # serde_json holds larger integers as f64
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = []
        for key in sorted(value):
            if not isinstance(key, str):
                raise ValidationError(f"unique key args must have string keys, got {key!r}")
            items.append(f"{_string(key)}:{canonical_json(value[key])}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    raise ValidationError(f"unique key args must be JSON values, got {type(value).__name__}")


def compute_unique_key(
    kind: str, queue: str | None = None, args: Any = None, period_bucket: int | None = None, *, has_args: bool | None = None
) -> bytes:
    """awa's ``compute_unique_key``: 16 bytes. ``args=None`` leaves args out
    (as awa's ``Option``), unless ``has_args=True`` hashes JSON ``null``."""
    hasher = blake3.blake3(kind.encode("utf-8"))
    if queue is not None:
        hasher.update(b"\x00" + queue.encode("utf-8"))
    if has_args if has_args is not None else args is not None:
        hasher.update(b"\x00" + canonical_json(args).encode("utf-8"))
    if period_bucket is not None:
        hasher.update(b"\x00" + struct.pack("<q", period_bucket))
    return hasher.digest()[:KEY_BYTES]


def key_for(opts: UniqueOpts, kind: str, queue: str, args: Any) -> bytes:
    """The key of one job under ``opts``."""
    return compute_unique_key(
        kind, queue if opts.by_queue else None, args, opts.by_period, has_args=opts.by_args
    )


def holds(opts: UniqueOpts, state: JobState | str) -> bool:
    """Whether a job in ``state`` keeps its key."""
    return bool(opts.states >> STATE_BITS.index(str(state)) & 1)


# -- the database's refusal, as the package's error --------------------------------


def conflict_of(exc: BaseException) -> UniqueConflict | None:
    """The :class:`UniqueConflict` for a unique violation of the unique-job index, else None."""
    import psycopg

    if isinstance(exc, psycopg.errors.UniqueViolation):
        constraint = exc.diag.constraint_name
        if constraint == INDEX_NAME:
            return UniqueConflict(constraint)
    return None


def guarded(run: Any, *args: Any) -> Any:
    """``run(*args)`` (an executor call, sync or async) with the index's unique
    violation raised as :class:`UniqueConflict`."""
    try:
        result = run(*args)
    except Exception as exc:
        conflict = conflict_of(exc)
        if conflict is None:
            raise
        raise conflict from None
    if inspect.isawaitable(result):
        return _guard_async(result)
    return result


async def _guard_async(awaitable: Any) -> Any:
    try:
        return await awaitable
    except Exception as exc:
        conflict = conflict_of(exc)
        if conflict is None:
            raise
        raise conflict from None


# -- a batch's options -------------------------------------------------------------


def split_unique(unique_opts: Any, opts: Any, n_jobs: int) -> tuple[Any, list[UniqueOpts | None] | None]:
    """The batch's per-job opts without their ``unique_opts`` entries, and each
    row's :class:`UniqueOpts` (a row's own entry, else the batch's), or None
    when no row is unique."""
    default = parse_unique_opts(unique_opts)
    per_row: list[UniqueOpts | None] | None = None
    if isinstance(opts, list) and len(opts) == n_jobs and any(type(e) is dict and "unique_opts" in e for e in opts):
        per_row = [default] * n_jobs
        stripped: list[Any] = []
        for i, entry in enumerate(opts):
            if type(entry) is dict and "unique_opts" in entry:
                entry = dict(entry)
                per_row[i] = parse_unique_opts(entry.pop("unique_opts"), f"opts[{i}] unique_opts")
                entry = entry or None
            stripped.append(entry)
        opts = stripped
    elif default is not None:
        per_row = [default] * n_jobs
    if per_row is not None and all(u is None for u in per_row):
        per_row = None
    return opts, per_row


def key_columns(batch: Any, lanes: Any, ids: list[int]) -> tuple[list[int], list[bytes], list[str]]:
    """Ids, keys and state masks of a batch's unique rows (``ids`` in lane
    order, as the reservation handed them out)."""
    from awa.storage.codec import loads

    out_ids: list[int] = []
    keys: list[bytes] = []
    masks: list[str] = []
    kinds = batch.kinds
    pos = 0
    for lane in lanes:
        rows = lane.rows if lane.rows is not None else range(batch.n)
        for offset, i in enumerate(rows):
            opts = batch.unique[i]
            if opts is not None:
                kind = kinds if isinstance(kinds, str) else kinds[i]
                args = loads(batch.args_text[i]) if opts.by_args else None
                out_ids.append(ids[pos + offset])
                keys.append(key_for(opts, kind, lane.queue, args))
                masks.append(opts.states_bits)
        pos += len(rows)
    return out_ids, keys, masks
