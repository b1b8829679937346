"""Portable ordering-key hashes, byte-compatible with awa.

Every producer (Python, Rust, SQL, ...) that hands the same key bytes to
these functions must get the same shard and partition, so the arithmetic here
is the contract; speed tricks must never change a single result.

The contract is written out once per form:

* :func:`base_hash` -- awa's base hash of key bytes (scalar);
* :func:`finalize_partition_hash` -- the domain-separated SplitMix64
  finalizer over a base hash (scalar);
* one vectorised numpy form of each, :func:`base_hashes_array` and
  :func:`finalize_partition_hash_array` (numpy uint64 arithmetic wraps modulo
  2**64, exactly like the contract); the tests hold them to the scalar forms.

Everything else (``shard_for_ordering_key``, ``partitions_for_ordering_keys``,
the routing schemes, ``PartitionedQueue``) composes these.  The plural-named
batch functions use the numpy form when numpy is importable and the batch is
large enough, else the scalar form key by key.
"""

from __future__ import annotations

import contextlib
import importlib.util
import operator
from collections.abc import Iterable, Iterator, Sequence
from operator import getitem as _getitem
from typing import Any, Literal, NamedTuple

from awa.errors import ValidationError

# numpy is optional: it only makes batch routing faster.  It is imported on
# the first batch call, not with the package, so `import awa` stays quick.
# ``_np`` is the module once loaded, None when unavailable (or switched off by
# numpy_disabled), or the _NOT_LOADED sentinel.
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


@contextlib.contextmanager
def numpy_disabled() -> Iterator[None]:
    """Inside the block, batch calls behave as if numpy were not installed.

    ``backend="auto"`` takes the pure-Python path and ``backend="numpy"``
    raises.  For tests and benchmarks of the fallback; it switches a module
    global, so it is not thread-safe.
    """
    global _np
    saved = _numpy()
    _np = None
    try:
        yield
    finally:
        _np = saved


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
#: Bytes the numpy form hashes in one vectorised pass, and the size of its
#: two power tables (2 MiB each).  Longer keys are hashed pass by pass.
NUMPY_PASS_BYTES = 1 << 18


# --------------------------------------------------------------------------
# Arguments: keys and counts
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


def key_list(keys: Iterable[object]) -> list[Any]:
    """The keys of a batch call as a list (a list is returned as it is).

    A single key (str or bytes-like) is refused rather than iterated, which
    would silently route each character on its own; so is a non-iterable.
    The keys themselves are not checked here (see :func:`coerce_keys`).
    """
    if isinstance(keys, (str, bytes, bytearray, memoryview)):
        raise ValidationError("keys must be an iterable of ordering keys, not a single key")
    if isinstance(keys, list):
        return keys
    try:
        return list(keys)
    except TypeError:
        raise ValidationError("keys must be an iterable of ordering keys") from None


def coerce_keys(keys: Iterable[object]) -> list[bytes]:
    """Coerce every key with :func:`coerce_key`, keeping the order."""
    items = key_list(keys)
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


def key_batch(keys: Iterable[object]) -> KeyBatch:
    """Coerce many keys into a :class:`KeyBatch` with few Python-level steps."""
    items = key_list(keys)
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


def int_argument(value: object, name: str) -> int:
    """An integer argument as an ``int``; bool and non-integers are rejected.

    Raises ``ValidationError("<name> must be an int; got <type>")``.  The one
    rule for counts and indexes across the routing package.
    """
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be an int; got bool")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValidationError(f"{name} must be an int; got {type(value).__name__}") from None


# --------------------------------------------------------------------------
# Scalar forms: the base hash and the partition finalizer
# --------------------------------------------------------------------------


# The base hash unrolls to OFFSET*P**L + sum(b_i * P**(L-1-i)) mod 2**64, so
# each byte contributes independently: b * P**e for its distance e from the
# end.  Tables of those contributions turn the per-byte Python loop into one
# C-level ``sum(map(getitem, tables, data))`` (about 2x faster for short keys).
_TABLE_SPAN = 64
_MULTIPLIER_POWERS = [1]  # P**e mod 2**64, e in [0, _TABLE_SPAN]
for _ in range(_TABLE_SPAN):
    _MULTIPLIER_POWERS.append((_MULTIPLIER_POWERS[-1] * BASE_HASH_MULTIPLIER) & MASK64)
del _
_POSITION_TABLES = [  # _POSITION_TABLES[e][b] = b * P**e mod 2**64
    [(b * power) & MASK64 for b in range(256)] for power in _MULTIPLIER_POWERS[:_TABLE_SPAN]
]
# Tables for one block of the long-key path, by block length, in byte order.
_BLOCK_TABLES: list[tuple[list[int], ...]] = [
    tuple(_POSITION_TABLES[length - 1 - i] for i in range(length)) for length in range(_TABLE_SPAN + 1)
]
# Tables for a whole key of 1.._TABLE_SPAN bytes, by key length: the first
# byte's table also carries OFFSET * P**L, so one sum (then a mask) is the
# complete base hash.  Index 0 is None: the empty key takes the long-key path.
_KEY_TABLES: list[tuple[list[int], ...] | None] = [None] + [
    (
        [(e + BASE_HASH_OFFSET * _MULTIPLIER_POWERS[length]) & MASK64 for e in _BLOCK_TABLES[length][0]],
        *_BLOCK_TABLES[length][1:],
    )
    for length in range(1, _TABLE_SPAN + 1)
]


def base_hash(data: bytes) -> int:
    """awa's base hash of key bytes (already coerced), an unsigned 64-bit int.

    ``h = 14695981039346656037``; for each byte ``b``:
    ``h = (h * 1099511628211 + b) mod 2**64``.  Computed through the tables
    above: in one sum for keys up to 64 bytes, by Horner's rule over 64-byte
    blocks beyond.  ``data`` must be bytes-like (see :func:`coerce_key`).
    """
    try:
        return sum(map(_getitem, _KEY_TABLES[len(data)], data)) & MASK64
    except (IndexError, TypeError):  # the empty key, or longer than the tables
        pass
    h = BASE_HASH_OFFSET
    for start in range(0, len(data), _TABLE_SPAN):
        block = data[start : start + _TABLE_SPAN]
        size = len(block)
        h = (h * _MULTIPLIER_POWERS[size] + sum(map(_getitem, _BLOCK_TABLES[size], block))) & MASK64
    return h


def finalize_partition_hash(h: int) -> int:
    """The domain-separated SplitMix64 finalizer applied to a base hash."""
    v = h ^ PARTITION_HASH_DOMAIN
    v ^= v >> 30
    v = (v * SPLITMIX_MUL_1) & MASK64
    v ^= v >> 27
    v = (v * SPLITMIX_MUL_2) & MASK64
    return v ^ (v >> 31)


def awa_partition_index(data: bytes, partitions: int) -> int:
    """Partition of key bytes (already coerced) for a count of at least 1."""
    return finalize_partition_hash(base_hash(data)) % partitions


def ordering_key_hash64(key: object) -> int:
    """awa's portable base hash of a key (:func:`base_hash` of its bytes)."""
    return base_hash(coerce_key(key))


def shard_for_ordering_key(key: object, shards: int) -> int:
    """Enqueue shard of a key (ADR-025): 0 when ``shards <= 1``."""
    shards = int_argument(shards, "shards")
    data = coerce_key(key)
    if shards <= 1:
        return 0
    return base_hash(data) % shards


def partition_hash64(key: object) -> int:
    """Domain-separated SplitMix64 finalizer over :func:`ordering_key_hash64`."""
    return finalize_partition_hash(base_hash(coerce_key(key)))


def partition_for_ordering_key(key: object, partitions: int) -> int:
    """Partition index of a key in ``[0, partitions)``: 0 when ``partitions <= 1``."""
    partitions = int_argument(partitions, "partitions")
    data = coerce_key(key)
    if partitions <= 1:
        return 0
    return finalize_partition_hash(base_hash(data)) % partitions


# --------------------------------------------------------------------------
# Vectorised (numpy) forms
# --------------------------------------------------------------------------


# MULTIPLIER**i and MULTIPLIER**-i modulo 2**64 for i in [0, NUMPY_PASS_BYTES]
# (the multiplier is odd, so it has an inverse modulo 2**64).
_POWER_TABLES: tuple[Any, Any] | None = None


def _power_tables(pass_bytes: int) -> tuple[Any, Any]:
    global _POWER_TABLES
    if _POWER_TABLES is not None and _POWER_TABLES[0].shape[0] == pass_bytes + 1:
        return _POWER_TABLES
    np = _np
    forward = np.full(pass_bytes + 1, BASE_HASH_MULTIPLIER, dtype=np.uint64)
    inverse = np.full(pass_bytes + 1, pow(BASE_HASH_MULTIPLIER, -1, 1 << 64), dtype=np.uint64)
    forward[0] = inverse[0] = 1
    # Integer cumprod wraps modulo 2**64: exactly the powers we need.
    tables = (np.cumprod(forward, dtype=np.uint64), np.cumprod(inverse, dtype=np.uint64))
    if pass_bytes == NUMPY_PASS_BYTES:
        _POWER_TABLES = tables  # only the default size is kept
    return tables


def _pass_hashes_numpy(buf: Any, lengths: Any, start: Any, tables: tuple[Any, Any]) -> Any:
    """The vectorised base hash: consecutive keys whose bytes ``buf`` fit one pass.

    Each key's hash starts from ``start`` (the offset, or the hash so far of
    a long key).  Horner's rule ``h = h*P + b`` over a key of L bytes unrolls to
    ``start*P**L + sum(b_i * P**(L-1-i))``.  Writing ``P**(L-1-i)`` as
    ``P**(end-1) * P**-pos`` (pos = byte position in the pass, end = position
    after the key) turns the per-key sum into one elementwise multiply of the
    whole buffer by a fixed table, a segmented sum, and one multiply per key.
    uint64 arithmetic wraps modulo 2**64, the contract's reduction, so the
    result is bit-for-bit :func:`base_hash`.
    """
    np = _np
    forward, inverse = tables
    total = int(buf.shape[0])
    ends = np.cumsum(lengths)
    sums = np.zeros(len(lengths), dtype=np.uint64)
    if total:
        weighted = buf * inverse[:total]
        nonempty = lengths > 0
        # reduceat misreports empty segments, so only non-empty keys go in.
        sums[nonempty] = np.add.reduceat(weighted, (ends - lengths)[nonempty])
        sums *= forward[np.maximum(ends - 1, 0)]
    return forward[lengths] * start + sums


def _long_key_hash_numpy(view: Any, pass_bytes: int, tables: tuple[Any, Any]) -> Any:
    """Base hash of one key longer than a pass: pass by pass, each from the last."""
    np = _np
    h = np.uint64(BASE_HASH_OFFSET)
    for first in range(0, int(view.shape[0]), pass_bytes):
        block = view[first : first + pass_bytes]
        h = _pass_hashes_numpy(block, np.array([block.shape[0]], dtype=np.int64), h, tables)[0]
    return h


def _base_hashes_numpy(batch: KeyBatch, pass_bytes: int = NUMPY_PASS_BYTES) -> Any:
    """uint64 array of base hashes for every key of the batch."""
    np = _np
    n = len(batch.lengths)
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    tables = _power_tables(pass_bytes)
    offset = np.uint64(BASE_HASH_OFFSET)
    lengths = np.fromiter(batch.lengths, dtype=np.int64, count=n)
    buf = np.frombuffer(batch.flat, dtype=np.uint8)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])

    long_positions = np.flatnonzero(lengths > pass_bytes).tolist()
    for idx in long_positions:
        out[idx] = _long_key_hash_numpy(buf[offsets[idx] : offsets[idx + 1]], pass_bytes, tables)

    # The keys between long ones are contiguous and fit a pass each: hash
    # them in passes of at most pass_bytes bytes (the power tables' size).
    first = 0
    for stop in [*long_positions, n]:
        while first < stop:
            end = int(np.searchsorted(offsets, int(offsets[first]) + pass_bytes, side="right")) - 1
            end = min(max(end, first + 1), stop)
            run = buf[offsets[first] : offsets[end]]
            out[first:end] = _pass_hashes_numpy(run, lengths[first:end], offset, tables)
            first = end
        first = stop + 1
    return out


def finalize_partition_hash_array(hashes: Any) -> Any:
    """The vectorised :func:`finalize_partition_hash`: a new uint64 array (needs numpy)."""
    np = _numpy()
    if np is None:
        raise ValidationError("numpy is not installed")
    hashes = np.asarray(hashes, dtype=np.uint64)
    v = hashes ^ np.uint64(PARTITION_HASH_DOMAIN)
    v ^= v >> np.uint64(30)
    v *= np.uint64(SPLITMIX_MUL_1)
    v ^= v >> np.uint64(27)
    v *= np.uint64(SPLITMIX_MUL_2)
    v ^= v >> np.uint64(31)
    return v


def _as_batch(keys: Iterable[object] | KeyBatch) -> KeyBatch:
    if _numpy() is None:
        raise ValidationError("numpy is not installed")
    return keys if isinstance(keys, KeyBatch) else key_batch(keys)


def base_hashes_array(keys: Iterable[object] | KeyBatch, *, pass_bytes: int = NUMPY_PASS_BYTES) -> Any:
    """numpy uint64 array of :func:`ordering_key_hash64` for many keys (needs numpy).

    ``pass_bytes`` sets the bytes hashed per vectorised pass (at least 1);
    the result does not depend on it.
    """
    batch = _as_batch(keys)
    if int_argument(pass_bytes, "pass_bytes") < 1:
        raise ValidationError("pass_bytes must be >= 1")
    return _base_hashes_numpy(batch, pass_bytes)


def partition_hashes_array(keys: Iterable[object] | KeyBatch) -> Any:
    """numpy uint64 array of :func:`partition_hash64` for many keys (needs numpy)."""
    return finalize_partition_hash_array(_base_hashes_numpy(_as_batch(keys)))


# --------------------------------------------------------------------------
# Batch functions: the numpy form for large batches, else the scalar form
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


def _modulo_list(hashes: Any, modulus: int) -> list[int]:
    if modulus <= 1:
        return [0] * len(hashes)
    return (hashes % _np.uint64(modulus)).tolist()


def ordering_key_hashes64(keys: Iterable[object], *, backend: Backend = "auto") -> list[int]:
    """:func:`ordering_key_hash64` of every key, in order."""
    items = key_list(keys)
    if _use_numpy(backend, len(items)):
        return _base_hashes_numpy(key_batch(items)).tolist()
    return [base_hash(k) for k in coerce_keys(items)]


def partition_hashes64(keys: Iterable[object], *, backend: Backend = "auto") -> list[int]:
    """:func:`partition_hash64` of every key, in order."""
    items = key_list(keys)
    if _use_numpy(backend, len(items)):
        return finalize_partition_hash_array(_base_hashes_numpy(key_batch(items))).tolist()
    return [finalize_partition_hash(base_hash(k)) for k in coerce_keys(items)]


def shards_for_ordering_keys(
    keys: Iterable[object], shards: int, *, backend: Backend = "auto"
) -> list[int]:
    """:func:`shard_for_ordering_key` of every key, in order."""
    shards = int_argument(shards, "shards")
    items = key_list(keys)
    if _use_numpy(backend, len(items)):
        return _modulo_list(_base_hashes_numpy(key_batch(items)), shards)
    coerced = coerce_keys(items)
    if shards <= 1:
        return [0] * len(coerced)
    return [base_hash(k) % shards for k in coerced]


def partitions_for_ordering_keys(
    keys: Iterable[object], partitions: int, *, backend: Backend = "auto"
) -> list[int]:
    """:func:`partition_for_ordering_key` of every key, in order."""
    partitions = int_argument(partitions, "partitions")
    items = key_list(keys)
    if _use_numpy(backend, len(items)):
        return _modulo_list(finalize_partition_hash_array(_base_hashes_numpy(key_batch(items))), partitions)
    coerced = coerce_keys(items)
    if partitions <= 1:
        return [0] * len(coerced)
    return [finalize_partition_hash(base_hash(k)) % partitions for k in coerced]


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
    "NUMPY_PASS_BYTES",
    "MASK64",
    "BASE_HASH_OFFSET",
    "BASE_HASH_MULTIPLIER",
    "PARTITION_HASH_DOMAIN",
    "SPLITMIX_MUL_1",
    "SPLITMIX_MUL_2",
    "KEY_TYPE_ERROR",
    "KeyBatch",
    "numpy_disabled",
    "coerce_key",
    "coerce_keys",
    "key_list",
    "key_batch",
    "int_argument",
    "base_hash",
    "finalize_partition_hash",
    "awa_partition_index",
    "ordering_key_hash64",
    "shard_for_ordering_key",
    "partition_hash64",
    "partition_for_ordering_key",
    "ordering_key_hashes64",
    "partition_hashes64",
    "shards_for_ordering_keys",
    "partitions_for_ordering_keys",
    "base_hashes_array",
    "finalize_partition_hash_array",
    "partition_hashes_array",
    "to_signed64",
    "from_signed64",
]
