"""Portable ordering-key hashes, byte-compatible with awa.

Every producer (Python, Rust, SQL, ...) that hands the same key bytes to
these functions must get the same shard and partition, so the arithmetic here
is the contract; speed tricks must never change a single result.

Scalar functions work on one key.  The batch functions (plural names) take
many keys at once and, when numpy is importable, hash them with vectorised
uint64 arithmetic (numpy wraps modulo 2**64, exactly like the contract); the
pure-Python path is kept as the reference and the fallback.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

from awa.errors import ValidationError

try:  # numpy is optional: it only makes batch routing faster.
    import numpy as _np
except ImportError:  # pragma: no cover - exercised only where numpy is absent
    _np = None

HAVE_NUMPY: bool = _np is not None

MASK64 = (1 << 64) - 1
#: Start value and multiplier of awa's base hash (ADR-025).  The step is
#: ``h * MULTIPLIER + byte`` (multiply, then add): this is *not* FNV-1a.
BASE_HASH_OFFSET = 14695981039346656037
BASE_HASH_MULTIPLIER = 1099511628211
#: XORed into the base hash before the SplitMix64 finalizer so that partition
#: selection is independent of the enqueue-shard selection for the same key.
PARTITION_HASH_DOMAIN = 0x9D4D1B2F53A70C91
SPLITMIX_MUL_1 = 0xBF58476D1CE4E5B9
SPLITMIX_MUL_2 = 0x94D049BB133111EB

KEY_TYPE_ERROR = "ordering_key must be bytes-like or str"

Backend = Literal["auto", "numpy", "python"]

# Below this many keys the numpy set-up costs more than it saves.
_NUMPY_MIN_BATCH = 32
# Bytes hashed in one vectorised pass; also the size of the two power tables
# (2 MiB each).  Longer keys are hashed block by block.
_PASS_BYTES = 1 << 18


# --------------------------------------------------------------------------
# Key coercion
# --------------------------------------------------------------------------


def coerce_key(key: object) -> bytes:
    """Return the key bytes: ``str`` is UTF-8 encoded, bytes-like is copied.

    Bytes-like means an object with the buffer protocol and one-byte items
    (bytes, bytearray, memoryview of bytes, ...).  Anything else, including a
    ``str`` that cannot be UTF-8 encoded (lone surrogates), is rejected.
    """
    kind = type(key)
    if kind is bytes:
        return key  # type: ignore[return-value]
    if kind is str or isinstance(key, str):
        try:
            return key.encode("utf-8")  # type: ignore[union-attr]
        except UnicodeEncodeError as exc:
            raise ValidationError(KEY_TYPE_ERROR) from exc
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    try:
        view = memoryview(key)  # type: ignore[arg-type]
    except TypeError:
        raise ValidationError(KEY_TYPE_ERROR) from None
    with view:
        if view.itemsize != 1:
            # Raw bytes of wider items would silently differ from what other
            # producers see for "the same" key; refuse instead.
            raise ValidationError(KEY_TYPE_ERROR)
        return view.tobytes()


class KeyBatch(NamedTuple):
    """Many keys, as one concatenated buffer plus the length of each key."""

    flat: bytes
    lengths: list[int]

    def keys(self) -> list[bytes]:
        """Split the buffer back into one ``bytes`` per key."""
        out: list[bytes] = []
        pos = 0
        flat = self.flat
        for length in self.lengths:
            out.append(flat[pos : pos + length])
            pos += length
        return out


def _as_key_list(keys: Iterable[object]) -> list[Any]:
    if isinstance(keys, (str, bytes, bytearray, memoryview)):
        # Iterating one key would silently route each character on its own.
        raise ValidationError("keys must be an iterable of ordering keys, not a single key")
    if isinstance(keys, list):
        return keys
    try:
        return list(keys)
    except TypeError:
        raise ValidationError("keys must be an iterable of ordering keys") from None


def coerce_keys(keys: Iterable[object]) -> list[bytes]:
    """Coerce every key with :func:`coerce_key`, keeping the order."""
    items = _as_key_list(keys)
    kinds = set(map(type, items))
    if kinds <= {bytes}:
        return items if type(items) is list else list(items)
    return [coerce_key(k) for k in items]


def key_batch(keys: Iterable[object]) -> KeyBatch:
    """Coerce many keys into a :class:`KeyBatch` with few Python-level steps."""
    items = _as_key_list(keys)
    try:
        # str.join doubles as the type check: it fails unless every key is a str.
        joined = "".join(items)
    except TypeError:
        joined = None
    if joined is not None:
        if joined.isascii():
            # ASCII: one byte per character, so str lengths are byte lengths.
            return KeyBatch(joined.encode("ascii"), list(map(len, items)))
        try:
            encoded = [k.encode("utf-8") for k in items]
        except UnicodeEncodeError as exc:
            raise ValidationError(KEY_TYPE_ERROR) from exc
    elif set(map(type, items)) <= {bytes}:
        encoded = items
    else:
        encoded = [coerce_key(k) for k in items]
    return KeyBatch(b"".join(encoded), list(map(len, encoded)))


def _count(value: object, name: str) -> int:
    """Validate an integer argument (bool and other types are rejected)."""
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be an int; got bool")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValidationError(f"{name} must be an int; got {type(value).__name__}") from None


# --------------------------------------------------------------------------
# Scalar hashes (the reference implementation)
# --------------------------------------------------------------------------


def _base_hash_bytes(
    data: bytes,
    _h: int = BASE_HASH_OFFSET,
    _p: int = BASE_HASH_MULTIPLIER,
    _m: int = MASK64,
) -> int:
    h = _h
    for byte in data:
        h = (h * _p + byte) & _m
    return h


def _finalize_partition(
    h: int,
    _d: int = PARTITION_HASH_DOMAIN,
    _c1: int = SPLITMIX_MUL_1,
    _c2: int = SPLITMIX_MUL_2,
    _m: int = MASK64,
) -> int:
    v = h ^ _d
    v ^= v >> 30
    v = (v * _c1) & _m
    v ^= v >> 27
    v = (v * _c2) & _m
    return v ^ (v >> 31)


def _partition_hash_bytes(
    data: bytes,
    _h: int = BASE_HASH_OFFSET,
    _p: int = BASE_HASH_MULTIPLIER,
    _m: int = MASK64,
    _d: int = PARTITION_HASH_DOMAIN,
    _c1: int = SPLITMIX_MUL_1,
    _c2: int = SPLITMIX_MUL_2,
) -> int:
    # Both steps inlined: this is the single-key hot path of queue_for_key.
    h = _h
    for byte in data:
        h = (h * _p + byte) & _m
    v = h ^ _d
    v ^= v >> 30
    v = (v * _c1) & _m
    v ^= v >> 27
    v = (v * _c2) & _m
    return v ^ (v >> 31)


def ordering_key_hash64(key: object) -> int:
    """awa's portable base hash of the key bytes, an unsigned 64-bit int.

    ``h = 14695981039346656037``; for each byte ``b``:
    ``h = (h * 1099511628211 + b) mod 2**64``.
    """
    return _base_hash_bytes(coerce_key(key))


def shard_for_ordering_key(key: object, shards: int) -> int:
    """Enqueue shard of a key (ADR-025): 0 when ``shards <= 1``."""
    shards = _count(shards, "shards")
    data = coerce_key(key)
    if shards <= 1:
        return 0
    return _base_hash_bytes(data) % shards


def partition_hash64(key: object) -> int:
    """Domain-separated SplitMix64 finalizer over :func:`ordering_key_hash64`."""
    return _partition_hash_bytes(coerce_key(key))


def partition_for_ordering_key(key: object, partitions: int) -> int:
    """Partition index of a key in ``[0, partitions)``: 0 when ``partitions <= 1``."""
    partitions = _count(partitions, "partitions")
    data = coerce_key(key)
    if partitions <= 1:
        return 0
    return _partition_hash_bytes(data) % partitions


# --------------------------------------------------------------------------
# Batch hashes
# --------------------------------------------------------------------------


def _use_numpy(backend: str, n: int) -> bool:
    if backend == "python":
        return False
    if backend == "numpy":
        if _np is None:
            raise ValidationError("backend 'numpy' requested but numpy is not installed")
        return True
    if backend != "auto":
        raise ValidationError(f"backend must be 'auto', 'numpy' or 'python'; got {backend!r}")
    return _np is not None and n >= _NUMPY_MIN_BATCH


# Tables of MULTIPLIER**i and MULTIPLIER**-i modulo 2**64 for i in [0, _PASS_BYTES].
# The multiplier is odd, so it has an inverse modulo 2**64.
_POWER_TABLES: tuple[Any, Any] | None = None


def _power_tables() -> tuple[Any, Any]:
    global _POWER_TABLES
    if _POWER_TABLES is None:
        np = _np
        size = _PASS_BYTES + 1
        forward = np.full(size, BASE_HASH_MULTIPLIER, dtype=np.uint64)
        forward[0] = 1
        inverse = np.full(size, pow(BASE_HASH_MULTIPLIER, -1, 1 << 64), dtype=np.uint64)
        inverse[0] = 1
        # Integer cumprod wraps modulo 2**64: exactly the powers we need.
        _POWER_TABLES = (np.cumprod(forward, dtype=np.uint64), np.cumprod(inverse, dtype=np.uint64))
    return _POWER_TABLES


def _pass_hashes_numpy(buf: Any, lengths: Any) -> Any:
    """Base hashes of consecutive keys whose bytes (``buf``) fit in one pass.

    Horner's rule ``h = h*P + b`` unrolls to
    ``OFFSET*P**L + sum(b_i * P**(L-1-i))``.  Writing ``P**(L-1-i)`` as
    ``P**(end-1) * P**-pos`` (pos = byte position in the pass, end = position
    after the key) turns the per-key sum into one elementwise multiply of the
    whole buffer by a fixed table, a segmented sum, and one multiply per key.
    uint64 arithmetic wraps modulo 2**64, which is exactly the contract's
    reduction, so the result is bit-for-bit the scalar one.
    """
    np = _np
    forward, inverse = _power_tables()
    n = len(lengths)
    total = int(buf.shape[0])
    ends = np.cumsum(lengths)
    sums = np.zeros(n, dtype=np.uint64)
    if total:
        weighted = buf * inverse[:total]
        nonempty = lengths > 0
        # reduceat misreports empty segments, so only non-empty keys go in.
        sums[nonempty] = np.add.reduceat(weighted, (ends - lengths)[nonempty])
        sums *= forward[np.maximum(ends - 1, 0)]
    return forward[lengths] * np.uint64(BASE_HASH_OFFSET) + sums


def _long_key_hash_numpy(data: bytes) -> int:
    """Base hash of one key longer than a pass, block by block (exact)."""
    np = _np
    forward, inverse = _power_tables()
    h = BASE_HASH_OFFSET
    view = np.frombuffer(data, dtype=np.uint8)
    for start in range(0, len(data), _PASS_BYTES):
        block = view[start : start + _PASS_BYTES]
        size = int(block.shape[0])
        block_sum = int((block * inverse[:size]).sum(dtype=np.uint64)) * int(forward[size - 1])
        h = (h * int(forward[size]) + block_sum) & MASK64
    return h


def _base_hashes_numpy(batch: KeyBatch) -> Any:
    """uint64 array of base hashes for every key of the batch."""
    np = _np
    n = len(batch.lengths)
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    lengths = np.fromiter(batch.lengths, dtype=np.int64, count=n)
    buf = np.frombuffer(batch.flat, dtype=np.uint8)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])

    long_positions = np.flatnonzero(lengths > _PASS_BYTES).tolist()
    for idx in long_positions:
        out[idx] = _long_key_hash_numpy(batch.flat[int(offsets[idx]) : int(offsets[idx + 1])])

    def hash_run(first: int, stop: int) -> None:
        # Keys first..stop-1 fit a pass each and are contiguous; hash them in
        # passes of at most _PASS_BYTES bytes (the power tables' size).
        while first < stop:
            budget_end = int(offsets[first]) + _PASS_BYTES
            end = int(np.searchsorted(offsets, budget_end, side="right")) - 1
            end = min(max(end, first + 1), stop)
            out[first:end] = _pass_hashes_numpy(
                buf[int(offsets[first]) : int(offsets[end])], lengths[first:end]
            )
            first = end

    previous = 0
    for boundary in [*long_positions, n]:
        if previous < boundary:
            hash_run(previous, boundary)
        previous = boundary + 1
    return out


def _finalize_partition_numpy(hashes: Any) -> Any:
    np = _np
    v = hashes ^ np.uint64(PARTITION_HASH_DOMAIN)
    v ^= v >> np.uint64(30)
    v *= np.uint64(SPLITMIX_MUL_1)
    v ^= v >> np.uint64(27)
    v *= np.uint64(SPLITMIX_MUL_2)
    v ^= v >> np.uint64(31)
    return v


def base_hashes_array(keys: Iterable[object] | KeyBatch) -> Any:
    """numpy uint64 array of :func:`ordering_key_hash64` for many keys (needs numpy)."""
    if _np is None:
        raise ValidationError("numpy is not installed")
    batch = keys if isinstance(keys, KeyBatch) else key_batch(keys)
    return _base_hashes_numpy(batch)


def partition_hashes_array(keys: Iterable[object] | KeyBatch) -> Any:
    """numpy uint64 array of :func:`partition_hash64` for many keys (needs numpy)."""
    return _finalize_partition_numpy(base_hashes_array(keys))


def _modulo_list(hashes: Any, modulus: int) -> list[int]:
    if modulus <= 1:
        return [0] * len(hashes)
    return (hashes % _np.uint64(modulus)).tolist()


def ordering_key_hashes64(keys: Iterable[object], *, backend: Backend = "auto") -> list[int]:
    """:func:`ordering_key_hash64` of every key, in order."""
    items = _as_key_list(keys)
    if _use_numpy(backend, len(items)):
        return _base_hashes_numpy(key_batch(items)).tolist()
    return [_base_hash_bytes(k) for k in coerce_keys(items)]


def partition_hashes64(keys: Iterable[object], *, backend: Backend = "auto") -> list[int]:
    """:func:`partition_hash64` of every key, in order."""
    items = _as_key_list(keys)
    if _use_numpy(backend, len(items)):
        return _finalize_partition_numpy(_base_hashes_numpy(key_batch(items))).tolist()
    return [_partition_hash_bytes(k) for k in coerce_keys(items)]


def shards_for_ordering_keys(
    keys: Iterable[object], shards: int, *, backend: Backend = "auto"
) -> list[int]:
    """:func:`shard_for_ordering_key` of every key, in order."""
    shards = _count(shards, "shards")
    items = _as_key_list(keys)
    if _use_numpy(backend, len(items)):
        return _modulo_list(_base_hashes_numpy(key_batch(items)), shards)
    coerced = coerce_keys(items)
    if shards <= 1:
        return [0] * len(coerced)
    return [_base_hash_bytes(k) % shards for k in coerced]


def partitions_for_ordering_keys(
    keys: Iterable[object], partitions: int, *, backend: Backend = "auto"
) -> list[int]:
    """:func:`partition_for_ordering_key` of every key, in order."""
    partitions = _count(partitions, "partitions")
    items = _as_key_list(keys)
    if _use_numpy(backend, len(items)):
        return _modulo_list(_finalize_partition_numpy(_base_hashes_numpy(key_batch(items))), partitions)
    coerced = coerce_keys(items)
    if partitions <= 1:
        return [0] * len(coerced)
    return [_partition_hash_bytes(k) % partitions for k in coerced]


# --------------------------------------------------------------------------
# Helpers for storing hashes in signed 64-bit columns (Postgres bigint)
# --------------------------------------------------------------------------


def to_signed64(value: int) -> int:
    """Reinterpret an unsigned 64-bit value as two's-complement signed."""
    if not 0 <= value <= MASK64:
        raise ValidationError(f"value must be in [0, 2**64); got {value}")
    return value - (1 << 64) if value >= (1 << 63) else value


def from_signed64(value: int) -> int:
    """Inverse of :func:`to_signed64`."""
    if not -(1 << 63) <= value < (1 << 63):
        raise ValidationError(f"value must be in [-2**63, 2**63); got {value}")
    return value & MASK64


__all__: Sequence[str] = [
    "HAVE_NUMPY",
    "BASE_HASH_OFFSET",
    "BASE_HASH_MULTIPLIER",
    "PARTITION_HASH_DOMAIN",
    "KeyBatch",
    "coerce_key",
    "coerce_keys",
    "key_batch",
    "ordering_key_hash64",
    "shard_for_ordering_key",
    "partition_hash64",
    "partition_for_ordering_key",
    "ordering_key_hashes64",
    "partition_hashes64",
    "shards_for_ordering_keys",
    "partitions_for_ordering_keys",
    "base_hashes_array",
    "partition_hashes_array",
    "to_signed64",
    "from_signed64",
]
