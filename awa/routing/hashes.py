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

import importlib.util
import operator
from operator import getitem as _getitem
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

from awa.errors import ValidationError

# numpy is optional: it only makes batch routing faster.  It is imported on
# the first batch call, not with the package, so `import awa` stays quick.
# ``_np`` is the module once loaded, None when unavailable (tests set None to
# force the pure-Python path), or the _NOT_LOADED sentinel.
_NOT_LOADED: Any = object()
_np: Any = _NOT_LOADED
HAVE_NUMPY: bool = importlib.util.find_spec("numpy") is not None


def _numpy() -> Any:
    """The numpy module, or None when it is not installed."""
    global _np
    if _np is _NOT_LOADED:
        try:
            import numpy
        except ImportError:  # pragma: no cover - only where numpy is absent
            numpy = None
        _np = numpy
    return _np

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
    if kinds == {str}:
        # Keys repeat (one per customer, say): encode each distinct key once.
        try:
            encoded = {k: k.encode("utf-8") for k in set(items)}
        except UnicodeEncodeError as exc:
            raise ValidationError(KEY_TYPE_ERROR) from exc
        return list(map(encoded.__getitem__, items))
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
# Scalar hashes
# --------------------------------------------------------------------------


# The base hash unrolls to OFFSET*P**L + sum(b_i * P**(L-1-i)) mod 2**64, so
# each byte contributes independently: b * P**e for its distance e from the
# key's end.  Tables of those contributions turn the per-byte Python loop into
# one C-level ``sum(map(getitem, tables, data))`` (about 2x faster for short
# keys).  _POSITION_TABLES[e][b] = b * P**e mod 2**64.
_TABLE_SPAN = 64
_MULTIPLIER_POWERS = [1]
for _ in range(_TABLE_SPAN):
    _MULTIPLIER_POWERS.append((_MULTIPLIER_POWERS[-1] * BASE_HASH_MULTIPLIER) & MASK64)
_POSITION_TABLES = [
    [(b * _MULTIPLIER_POWERS[e]) & MASK64 for b in range(256)] for e in range(_TABLE_SPAN)
]
# Tables for one block of length l (index l), in byte order.
_BLOCK_TABLES: list[tuple[list[int], ...]] = [
    tuple(_POSITION_TABLES[length - 1 - i] for i in range(length)) for length in range(_TABLE_SPAN + 1)
]
# Whole keys of length 1.._TABLE_SPAN: the first byte's table also carries
# OFFSET * P**L, so one sum (then a mask) is the complete base hash.
KEY_TABLES: dict[int, tuple[list[int], ...]] = {
    length: (
        [
            (b * _MULTIPLIER_POWERS[length - 1] + BASE_HASH_OFFSET * _MULTIPLIER_POWERS[length]) & MASK64
            for b in range(256)
        ],
        *_BLOCK_TABLES[length][1:],
    )
    for length in range(1, _TABLE_SPAN + 1)
}
del _
# The same, as a list indexed by key length (a list index is cheaper than a
# dict lookup on the single-key hot path).  Index 0 is None: the empty key has
# no table and takes the general path.
KEY_TABLE_LIST: list[tuple[list[int], ...] | None] = [None] + [
    KEY_TABLES[length] for length in range(1, _TABLE_SPAN + 1)
]


def _base_hash_bytes(data: bytes) -> int:
    tables = KEY_TABLES.get(len(data))
    if tables is not None:
        return sum(map(_getitem, tables, data)) & MASK64
    if not data:
        return BASE_HASH_OFFSET
    # Long key: Horner's rule over blocks, each block summed through tables.
    h = BASE_HASH_OFFSET
    powers = _MULTIPLIER_POWERS
    block_tables = _BLOCK_TABLES
    for start in range(0, len(data), _TABLE_SPAN):
        block = data[start : start + _TABLE_SPAN]
        size = len(block)
        h = (h * powers[size] + sum(map(_getitem, block_tables[size], block))) & MASK64
    return h


def finalize_partition_hash(h: int) -> int:
    """The domain-separated SplitMix64 finalizer applied to a base hash."""
    v = h ^ PARTITION_HASH_DOMAIN
    v ^= v >> 30
    v = (v * SPLITMIX_MUL_1) & MASK64
    v ^= v >> 27
    v = (v * SPLITMIX_MUL_2) & MASK64
    return v ^ (v >> 31)


def _partition_hash_bytes(data: bytes) -> int:
    return finalize_partition_hash(_base_hash_bytes(data))


def awa_partition_index(data: bytes, partitions: int) -> int:
    """``partition_hash64(data) % partitions`` for key bytes, inlined for speed."""
    tables = KEY_TABLES.get(len(data))
    v = (sum(map(_getitem, tables, data)) & MASK64) if tables is not None else _base_hash_bytes(data)
    v ^= PARTITION_HASH_DOMAIN
    v ^= v >> 30
    v = (v * SPLITMIX_MUL_1) & MASK64
    v ^= v >> 27
    v = (v * SPLITMIX_MUL_2) & MASK64
    return (v ^ (v >> 31)) % partitions


def _reference_base_hash(data: bytes) -> int:
    """The contract's per-byte loop, kept as the reference the tables must match."""
    h = BASE_HASH_OFFSET
    for byte in data:
        h = (h * BASE_HASH_MULTIPLIER + byte) & MASK64
    return h


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
        if _numpy() is None:
            raise ValidationError("backend 'numpy' requested but numpy is not installed")
        return True
    if backend != "auto":
        raise ValidationError(f"backend must be 'auto', 'numpy' or 'python'; got {backend!r}")
    return n >= _NUMPY_MIN_BATCH and _numpy() is not None


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
    if _numpy() is None:
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
    return [awa_partition_index(k, partitions) for k in coerced]


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
