"""Golden vectors, key coercion and batch/scalar agreement of awa.routing hashes."""

from __future__ import annotations

import array
import random

import pytest

import awa
from awa.errors import AwaError, ValidationError
from awa.routing import hashes as H
from awa.routing import (
    AWA_COMPAT,
    CORRELATED_VERIFICATION_ONLY,
    XXH3,
    XXH3_PARTITION_SEED,
    XXH3_SHARD_SEED,
    from_signed64,
    ordering_key_hash64,
    ordering_key_hashes64,
    partition_for_ordering_key,
    partition_hash64,
    partition_hashes64,
    partitions_for_ordering_keys,
    routing_scheme,
    shard_for_ordering_key,
    shards_for_ordering_keys,
    to_signed64,
)

MASK = (1 << 64) - 1


def reference_base_hash(data: bytes) -> int:
    """Straight from the contract text, independent of the module's code."""
    h = 14695981039346656037
    for b in data:
        h = (h * 1099511628211 + b) % 2**64
    return h


def reference_partition_hash(data: bytes) -> int:
    v = reference_base_hash(data) ^ 0x9D4D1B2F53A70C91
    v ^= v >> 30
    v = (v * 0xBF58476D1CE4E5B9) % 2**64
    v ^= v >> 27
    v = (v * 0x94D049BB133111EB) % 2**64
    return v ^ (v >> 31)


# --- golden values from awa's Rust code ---------------------------------------


def test_golden_empty_key() -> None:
    assert ordering_key_hash64(b"") == 14695981039346656037
    assert partition_hash64(b"") == 12892176949946654770
    assert ordering_key_hash64("") == 14695981039346656037


def test_golden_customer_42() -> None:
    key = "customer-42"
    assert ordering_key_hash64(key) == 695220319317454988
    assert shard_for_ordering_key(key, 4) == 0
    assert shard_for_ordering_key(key, 8) == 4
    assert partition_hash64(key) == 2415934538594125323
    assert [partition_for_ordering_key(key, n) for n in (2, 4, 8)] == [1, 3, 3]


def test_golden_cyrillic_key_is_utf8() -> None:
    assert ordering_key_hash64("ключ") == 9189087298592509309
    assert ordering_key_hash64("ключ".encode("utf-8")) == 9189087298592509309
    assert shard_for_ordering_key("ключ", 4) == 1
    assert partition_for_ordering_key("ключ", 4) == 3


def test_multiply_then_add_not_fnv1a() -> None:
    # FNV-1a (xor then multiply) of b"a" would be 0xaf63dc4c8601ec8c.
    assert ordering_key_hash64(b"a") == (14695981039346656037 * 1099511628211 + 97) % 2**64
    assert ordering_key_hash64(b"a") != 0xAF63DC4C8601EC8C


def test_domain_separation_constant_matters() -> None:
    # Without the domain XOR the finalizer would give a different value.
    h = ordering_key_hash64(b"customer-42")
    v = h
    v ^= v >> 30
    v = (v * 0xBF58476D1CE4E5B9) & MASK
    v ^= v >> 27
    v = (v * 0x94D049BB133111EB) & MASK
    assert v ^ (v >> 31) != partition_hash64(b"customer-42")


def test_scalar_matches_reference_on_random_keys() -> None:
    rng = random.Random(7)
    for _ in range(300):
        key = rng.randbytes(rng.randrange(0, 100))
        assert ordering_key_hash64(key) == reference_base_hash(key)
        assert partition_hash64(key) == reference_partition_hash(key)
        n = rng.randrange(2, 50)
        assert shard_for_ordering_key(key, n) == reference_base_hash(key) % n
        assert partition_for_ordering_key(key, n) == reference_partition_hash(key) % n


# --- shard / partition counts ------------------------------------------------


@pytest.mark.parametrize("count", [1, 0, -1, -1000])
def test_counts_up_to_one_route_to_zero(count: int) -> None:
    assert shard_for_ordering_key("customer-42", count) == 0
    assert partition_for_ordering_key("customer-42", count) == 0
    assert shards_for_ordering_keys(["a", "b"], count) == [0, 0]
    assert partitions_for_ordering_keys(["a", "b"], count) == [0, 0]


@pytest.mark.parametrize("bad", ["4", 4.0, None, True])
def test_counts_must_be_ints(bad: object) -> None:
    with pytest.raises(ValidationError, match="shards must be an int"):
        shard_for_ordering_key("k", bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="partitions must be an int"):
        partition_for_ordering_key("k", bad)  # type: ignore[arg-type]


# --- key coercion ------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [b"customer-42", bytearray(b"customer-42"), memoryview(b"customer-42"), "customer-42",
     array.array("B", b"customer-42"), memoryview(b"xxcustomer-42yy")[2:-2]],
)
def test_bytes_like_and_str_keys_agree(key: object) -> None:
    assert ordering_key_hash64(key) == 695220319317454988
    assert H.coerce_key(key) == b"customer-42"


@pytest.mark.parametrize(
    "key", [None, 42, 4.2, True, ["c"], [99, 117], object(), array.array("i", [1, 2]), "\ud800"]
)
def test_other_keys_are_rejected(key: object) -> None:
    for fn in (ordering_key_hash64, partition_hash64):
        with pytest.raises(ValidationError, match="^ordering_key must be bytes-like or str$"):
            fn(key)
    with pytest.raises(ValidationError, match="^ordering_key must be bytes-like or str$"):
        shard_for_ordering_key(key, 4)
    with pytest.raises(ValidationError, match="^ordering_key must be bytes-like or str$"):
        partition_for_ordering_key(key, 4)
    with pytest.raises(ValidationError, match="^ordering_key must be bytes-like or str$"):
        ordering_key_hashes64(["ok", key])


def test_bad_key_rejected_even_when_count_is_one() -> None:
    with pytest.raises(ValidationError):
        shard_for_ordering_key(12, 1)
    with pytest.raises(ValidationError):
        partitions_for_ordering_keys(["a", 12], 1)


def test_validation_error_is_value_error_and_awa_error() -> None:
    with pytest.raises(ValueError):
        ordering_key_hash64(3)
    with pytest.raises(AwaError):
        ordering_key_hash64(3)


@pytest.mark.parametrize("keys", ["abc", b"abc", bytearray(b"abc"), 17])
def test_batch_refuses_a_single_key_or_non_iterable(keys: object) -> None:
    with pytest.raises(ValidationError, match="keys must be an iterable"):
        ordering_key_hashes64(keys)  # type: ignore[arg-type]


# --- batch = scalar, for both backends -----------------------------------------


def _mixed_keys(seed: int, count: int) -> list[object]:
    rng = random.Random(seed)
    keys: list[object] = []
    for i in range(count):
        raw = rng.randbytes(rng.choice([0, 1, 2, 3, 8, 17, 64, 300]))
        form = i % 4
        if form == 0:
            keys.append(raw)
        elif form == 1:
            keys.append(bytearray(raw))
        elif form == 2:
            keys.append(raw.decode("latin-1"))  # non-ASCII str: UTF-8 differs from raw
        else:
            keys.append(f"customer-{rng.randrange(10**9)}")
    return keys


BACKENDS = ["python", "numpy"] if H.HAVE_NUMPY else ["python"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "keys",
    [
        [],
        [b""],
        ["", "", "x", ""],
        [f"customer-{i}" for i in range(1000)],
        ["ключ", "clé", "键", "🔑", "plain"] * 20,
        _mixed_keys(1, 500),
    ],
    ids=["empty-list", "one-empty-key", "empty-keys-between", "ascii", "unicode", "mixed"],
)
def test_batch_functions_equal_scalar(backend: str, keys: list[object]) -> None:
    coerced = [H.coerce_key(k) for k in keys]
    assert ordering_key_hashes64(keys, backend=backend) == [reference_base_hash(k) for k in coerced]
    assert partition_hashes64(keys, backend=backend) == [reference_partition_hash(k) for k in coerced]
    for n in (1, 2, 3, 4, 16, 32767):
        assert shards_for_ordering_keys(keys, n, backend=backend) == [
            shard_for_ordering_key(k, n) for k in coerced
        ]
        assert partitions_for_ordering_keys(keys, n, backend=backend) == [
            partition_for_ordering_key(k, n) for k in coerced
        ]


@pytest.mark.skipif(not H.HAVE_NUMPY, reason="numpy not installed")
@pytest.mark.parametrize("pass_bytes", [1, 2, 97, 98, 1000, H.NUMPY_PASS_BYTES])
def test_numpy_path_handles_long_keys_and_pass_boundaries(pass_bytes: int) -> None:
    rng = random.Random(3)
    keys = [rng.randbytes(rng.choice([0, 1, 5, 40, 97, 98, 99, 250, 1000])) for _ in range(400)]
    expected = [reference_base_hash(k) for k in keys]
    # Small passes force keys longer than a pass (hashed pass by pass) and
    # many pass boundaries; the result must not move.
    assert H.base_hashes_array(keys, pass_bytes=pass_bytes).tolist() == expected
    assert ordering_key_hashes64(keys, backend="numpy") == expected


@pytest.mark.skipif(not H.HAVE_NUMPY, reason="numpy not installed")
@pytest.mark.parametrize("pass_bytes", [0, -1, True, 2.0])
def test_pass_bytes_must_be_a_positive_int(pass_bytes: object) -> None:
    with pytest.raises(ValidationError, match="pass_bytes must be"):
        H.base_hashes_array([b"a"], pass_bytes=pass_bytes)  # type: ignore[arg-type]


# --- the vectorised forms against the scalar forms ------------------------------


@pytest.mark.skipif(not H.HAVE_NUMPY, reason="numpy not installed")
def test_vectorised_base_hash_equals_scalar_base_hash() -> None:
    rng = random.Random(17)
    keys = [rng.randbytes(rng.choice([0, 1, 2, 7, 63, 64, 65, 128, 129, 500])) for _ in range(600)]
    keys += [bytes([255]) * n for n in (1, 64, 65, 300)] + [bytes(n) for n in (1, 64, 65)]
    assert H.base_hashes_array(keys).tolist() == [H.base_hash(k) for k in keys]
    assert H.base_hashes_array(H.key_batch(keys)).tolist() == [H.base_hash(k) for k in keys]


@pytest.mark.skipif(not H.HAVE_NUMPY, reason="numpy not installed")
def test_vectorised_finalizer_equals_scalar_finalizer() -> None:
    import numpy as np

    rng = random.Random(19)
    edges = [0, 1, MASK, 1 << 63, (1 << 63) - 1, H.PARTITION_HASH_DOMAIN, H.PARTITION_HASH_DOMAIN ^ MASK,
             H.BASE_HASH_OFFSET]
    values = edges + [rng.getrandbits(64) for _ in range(2000)]
    array = np.array(values, dtype=np.uint64)
    assert H.finalize_partition_hash_array(array).tolist() == [H.finalize_partition_hash(v) for v in values]
    assert array.tolist() == values  # the input is left alone
    keys = [f"customer-{i}" for i in range(300)]
    assert H.partition_hashes_array(keys).tolist() == [
        H.finalize_partition_hash(H.base_hash(k.encode())) for k in keys
    ]


def test_scalar_finalizer_is_the_contract() -> None:
    rng = random.Random(23)
    for value in [0, MASK, 1 << 63, H.PARTITION_HASH_DOMAIN] + [rng.getrandbits(64) for _ in range(500)]:
        v = value ^ 0x9D4D1B2F53A70C91
        v ^= v >> 30
        v = (v * 0xBF58476D1CE4E5B9) % 2**64
        v ^= v >> 27
        v = (v * 0x94D049BB133111EB) % 2**64
        assert H.finalize_partition_hash(value) == v ^ (v >> 31)


@pytest.mark.skipif(not H.HAVE_NUMPY, reason="numpy not installed")
def test_numpy_key_longer_than_default_pass() -> None:
    key = random.Random(5).randbytes((1 << 18) + 12345)
    assert ordering_key_hashes64([b"a", key, b"b"] * 12, backend="numpy")[1] == reference_base_hash(key)


def test_numpy_backend_absent_is_reported() -> None:
    keys = [f"k{i}" for i in range(100)]
    with H.numpy_disabled():
        for call in (lambda: ordering_key_hashes64(["a"], backend="numpy"), lambda: H.base_hashes_array(["a"]),
                     lambda: H.partition_hashes_array(["a"]), lambda: H.finalize_partition_hash_array([1])):
            with pytest.raises(ValidationError, match="numpy is not installed"):
                call()
        # "auto" silently falls back to the exact pure-Python path.
        assert ordering_key_hashes64(keys) == [reference_base_hash(k.encode()) for k in keys]
        assert partitions_for_ordering_keys(keys, 7) == [reference_partition_hash(k.encode()) % 7 for k in keys]
    if H.HAVE_NUMPY:  # switched back on when the block ends
        assert ordering_key_hashes64(["a"], backend="numpy") == [reference_base_hash(b"a")]


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValidationError, match="backend must be"):
        ordering_key_hashes64(["a"], backend="gpu")  # type: ignore[arg-type]


def test_batch_accepts_generators_and_tuples() -> None:
    keys = [f"customer-{i}" for i in range(50)]
    expected = [partition_for_ordering_key(k, 8) for k in keys]
    assert partitions_for_ordering_keys((k for k in keys), 8) == expected
    assert partitions_for_ordering_keys(tuple(keys), 8) == expected


# --- signed 64-bit helpers ---------------------------------------------------


def test_signed_round_trip() -> None:
    for value in (0, 1, 2**63 - 1, 2**63, 2**64 - 1, 14695981039346656037):
        signed = to_signed64(value)
        assert -(2**63) <= signed < 2**63
        assert from_signed64(signed) == value
    assert to_signed64(2**64 - 1) == -1
    with pytest.raises(ValidationError):
        to_signed64(2**64)
    with pytest.raises(ValidationError):
        from_signed64(2**63)


# --- schemes -----------------------------------------------------------------


def test_awa_compat_scheme_is_the_contract() -> None:
    keys = ["customer-42", "ключ", b"", b"\xff\x00"]
    for key in keys:
        assert AWA_COMPAT.partition_for_key(key, 4) == partition_for_ordering_key(key, 4)
        assert AWA_COMPAT.shard_for_key(key, 4) == shard_for_ordering_key(key, 4)
    assert AWA_COMPAT.awa_compatible and not AWA_COMPAT.verification_only


def test_correlated_scheme_reuses_the_base_hash() -> None:
    key = "customer-42"
    assert CORRELATED_VERIFICATION_ONLY.verification_only
    assert not CORRELATED_VERIFICATION_ONLY.awa_compatible
    assert CORRELATED_VERIFICATION_ONLY.partition_for_key(key, 8) == ordering_key_hash64(key) % 8
    assert CORRELATED_VERIFICATION_ONLY.shard_for_key(key, 8) == shard_for_ordering_key(key, 8)
    # Not exported from the top-level package: nobody picks it by accident.
    assert not hasattr(awa, "CORRELATED_VERIFICATION_ONLY")


def test_xxh3_scheme_uses_separate_seeds() -> None:
    import xxhash

    key = b"customer-42"
    assert XXH3_SHARD_SEED != XXH3_PARTITION_SEED
    assert XXH3.shard_for_key(key, 1000) == xxhash.xxh3_64_intdigest(key, seed=XXH3_SHARD_SEED) % 1000
    assert XXH3.partition_for_key("customer-42", 1000) == (
        xxhash.xxh3_64_intdigest(key, seed=XXH3_PARTITION_SEED) % 1000
    )
    assert not XXH3.awa_compatible and not XXH3.verification_only


@pytest.mark.parametrize("scheme", [AWA_COMPAT, XXH3, CORRELATED_VERIFICATION_ONLY])
def test_scheme_batch_equals_scalar(scheme: object) -> None:
    keys = _mixed_keys(11, 200)
    for n in (1, 2, 5, 16):
        assert scheme.partitions_for_keys(keys, n) == [scheme.partition_for_key(k, n) for k in keys]
        assert scheme.shards_for_keys(keys, n) == [scheme.shard_for_key(k, n) for k in keys]
    with pytest.raises(ValidationError, match="ordering_key must be bytes-like or str"):
        scheme.partitions_for_keys(["a", 1.5], 4)


def test_routing_scheme_lookup() -> None:
    assert routing_scheme("awa-compat") is AWA_COMPAT
    assert routing_scheme("xxh3") is XXH3
    assert routing_scheme("correlated") is CORRELATED_VERIFICATION_ONLY
    assert routing_scheme(XXH3) is XXH3
    with pytest.raises(ValidationError, match="unknown routing scheme 'fnv'"):
        routing_scheme("fnv")
    with pytest.raises(ValidationError, match="scheme must be a RoutingScheme"):
        routing_scheme(3)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        AWA_COMPAT.partition_index = None  # type: ignore[misc]
    assert repr(XXH3) == "RoutingScheme('xxh3')"


def test_schemes_pickle_as_singletons() -> None:
    import pickle

    for scheme in (AWA_COMPAT, XXH3, CORRELATED_VERIFICATION_ONLY):
        assert pickle.loads(pickle.dumps(scheme)) is scheme


def test_top_level_reexports() -> None:
    for name in ("PartitionedQueue", "ordering_key_hash64", "shard_for_ordering_key", "partition_hash64",
                 "partition_for_ordering_key", "AWA_COMPAT", "XXH3", "RoutingScheme"):
        assert getattr(awa, name) is getattr(awa.routing, name)


@pytest.mark.parametrize("length", [0, 1, 2, 63, 64, 65, 127, 128, 129, 1000])
def test_table_boundaries_match_reference(length: int) -> None:
    # The scalar path sums precomputed per-position tables for keys up to 64
    # bytes and works block by block beyond; both must equal the plain loop.
    rng = random.Random(length)
    for _ in range(20):
        key = rng.randbytes(length)
        assert ordering_key_hash64(key) == reference_base_hash(key) == H.base_hash(key)
        assert H.base_hash(bytearray(key)) == H.base_hash(memoryview(key)) == reference_base_hash(key)
        assert partition_hash64(key) == reference_partition_hash(key)
        assert H.awa_partition_index(key, 7) == reference_partition_hash(key) % 7
        pq = awa.PartitionedQueue("q", 5)
        assert pq.queue_for_key(key) == pq.physical_queues[reference_partition_hash(key) % 5]
    key = bytes([255]) * length  # largest table entries everywhere
    assert ordering_key_hash64(key) == reference_base_hash(key)


# --- the shared argument helpers -----------------------------------------------


def test_base_hash_takes_bytes_only() -> None:
    # Coercion is the callers' job (coerce_key); a str is not silently encoded.
    for data in ("abc", "x" * 100):
        with pytest.raises(TypeError):
            H.base_hash(data)  # type: ignore[arg-type]
    assert H.base_hash(b"") == 14695981039346656037


def test_key_list() -> None:
    keys = ["a", b"b"]
    assert H.key_list(keys) is keys
    assert H.key_list(k for k in keys) == keys
    assert H.key_list(("a", 1)) == ["a", 1]  # the keys themselves are not checked here
    for single in ("ab", b"ab", bytearray(b"ab"), memoryview(b"ab")):
        with pytest.raises(ValidationError, match="^keys must be an iterable of ordering keys, not a single key$"):
            H.key_list(single)
    with pytest.raises(ValidationError, match="^keys must be an iterable of ordering keys$"):
        H.key_list(3)  # type: ignore[arg-type]


def test_int_argument() -> None:
    class Five:
        def __index__(self) -> int:
            return 5

    assert H.int_argument(7, "n") == 7 and H.int_argument(-2, "n") == -2
    assert H.int_argument(Five(), "n") == 5 and type(H.int_argument(Five(), "n")) is int
    for bad, kind in ((True, "bool"), (2.0, "float"), ("3", "str"), (None, "NoneType")):
        with pytest.raises(ValidationError, match=f"^count must be an int; got {kind}$"):
            H.int_argument(bad, "count")
