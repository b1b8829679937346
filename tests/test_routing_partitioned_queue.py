"""PartitionedQueue: names, routes, queue configs and exact error texts (as in awa)."""

from __future__ import annotations

import pickle
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import awa
from awa.errors import ValidationError
from awa.routing import (
    AWA_COMPAT,
    CORRELATED_VERIFICATION_ONLY,
    XXH3,
    PartitionedQueue,
    partition_for_ordering_key,
)


def exact(text: str) -> str:
    return "^" + re.escape(text) + "$"


# --- naming --------------------------------------------------------------------


def test_default_names_keep_partition_zero_as_logical_name() -> None:
    pq = PartitionedQueue("customer-updates", 4)
    assert pq.logical_queue == "customer-updates"
    assert pq.partitions == 4
    assert len(pq) == 4
    assert pq.physical_queues == [
        "customer-updates",
        "customer-updates__p1",
        "customer-updates__p2",
        "customer-updates__p3",
    ]
    assert list(pq) == pq.physical_queues
    assert "customer-updates__p3" in pq and "customer-updates__p4" not in pq


def test_one_partition_is_a_plain_queue() -> None:
    pq = PartitionedQueue("email", 1)
    assert pq.physical_queues == ["email"]
    assert pq.queue_for_index(42) == "email"
    assert pq.queue_for_key("anything") == "email"
    assert pq.route_by_key("anything") == {"queue": "email", "ordering_key": b"anything"}
    assert pq.queues_for_keys(["a", b"b", "c"]) == ["email"] * 3


def test_explicit_physical_queues_keep_caller_order() -> None:
    pq = PartitionedQueue.from_physical_queues("email", ["email-fast", "email-bulk", "email-slow"])
    assert pq.logical_queue == "email"
    assert pq.partitions == 3
    assert pq.physical_queues == ["email-fast", "email-bulk", "email-slow"]
    assert pq.queue_for_index(0) == "email-fast"
    assert pq.queue_for_index(4) == "email-bulk"
    # Any iterable of names is accepted.
    assert PartitionedQueue.from_physical_queues("email", (q for q in ["b", "a"])).physical_queues == ["b", "a"]


def test_physical_queues_is_a_copy() -> None:
    pq = PartitionedQueue("email", 2)
    names = pq.physical_queues
    names.append("evil")
    names[0] = "changed"
    assert pq.physical_queues == ["email", "email__p1"]
    assert pq.queue_for_index(2) == "email"


def test_attributes_are_read_only() -> None:
    pq = PartitionedQueue("email", 2)
    for attr, value in [("logical_queue", "x"), ("physical_queues", ["x"]), ("partitions", 9), ("_queues", ())]:
        with pytest.raises(AttributeError):
            setattr(pq, attr, value)
    assert pq.physical_queues == ["email", "email__p1"]


# --- routing -------------------------------------------------------------------


def test_key_routing_matches_awa_golden_partitions() -> None:
    # partition_for_ordering_key("customer-42", 2/4/8) = 1/3/3 in awa.
    assert PartitionedQueue("q", 2).queue_for_key("customer-42") == "q__p1"
    assert PartitionedQueue("q", 4).queue_for_key("customer-42") == "q__p3"
    assert PartitionedQueue("q", 8).queue_for_key(b"customer-42") == "q__p3"
    assert PartitionedQueue("q", 4).queue_for_key("ключ") == "q__p3"
    assert PartitionedQueue("q", 4).partition_for_key("customer-42") == 3


def test_key_routing_str_bytes_and_route_dict() -> None:
    pq = PartitionedQueue("customer-updates", 4)
    assert pq.queue_for_key("customer-42") == pq.queue_for_key(b"customer-42")
    assert pq.queue_for_key(bytearray(b"customer-42")) == pq.queue_for_key(memoryview(b"customer-42"))
    route = pq.route_by_key("customer-42")
    assert route == {"queue": pq.queue_for_key(b"customer-42"), "ordering_key": b"customer-42"}
    assert type(route["ordering_key"]) is bytes
    # The ordering key is carried as the UTF-8 bytes of a str key.
    assert pq.route_by_key("ключ")["ordering_key"] == "ключ".encode()
    assert type(pq.route_by_key(bytearray(b"k"))["ordering_key"]) is bytes


def test_index_routing_is_round_robin() -> None:
    pq = PartitionedQueue("email", 4)
    assert pq.queue_for_index(0) == "email"
    assert pq.queue_for_index(5) == "email__p1"
    assert pq.route_by_index(5) == {"queue": "email__p1"}
    assert [pq.queue_for_index(i) for i in range(9)] == pq.physical_queues * 2 + ["email"]
    assert pq.queue_for_index(2**70 + 3) == "email__p3"  # Python ints are unbounded
    assert pq.queues_for_indexes(range(6)) == [pq.queue_for_index(i) for i in range(6)]


@pytest.mark.parametrize("index", [-1, -(2**70)])
def test_negative_index_rejected(index: int) -> None:
    pq = PartitionedQueue("email", 4)
    with pytest.raises(ValidationError, match=exact("index must be >= 0")):
        pq.queue_for_index(index)
    with pytest.raises(ValidationError, match=exact("index must be >= 0")):
        pq.route_by_index(index)
    with pytest.raises(ValidationError, match=exact("index must be >= 0")):
        pq.queues_for_indexes([0, index])


@given(
    width=st.integers(1, 9),
    start=st.integers(-3, 2**66),
    length=st.integers(0, 40),
    step=st.sampled_from([1, 1, 1, 2, 3, -1]),
)
def test_queues_for_indexes_of_a_range_equals_one_index_at_a_time(width: int, start: int, length: int, step: int) -> None:
    """A range takes a shortcut (the names rotated and repeated); it must give
    exactly what routing each index alone gives, and reject what that rejects."""
    pq = PartitionedQueue("email", width)
    indexes = range(start, start + step * length, step)
    try:
        expected: list[str] | None = [pq.queue_for_index(i) for i in indexes]
    except ValidationError:
        expected = None
    if expected is None:
        with pytest.raises(ValidationError, match=exact("index must be >= 0")):
            pq.queues_for_indexes(indexes)
    else:
        got = pq.queues_for_indexes(indexes)
        assert type(got) is list
        assert got == expected
        assert pq.route_by_indexes(indexes) == [pq.route_by_index(i) for i in indexes]


@pytest.mark.parametrize("index", [1.0, "1", None, True])
def test_index_wrong_type_rejected(index: object) -> None:
    with pytest.raises(ValidationError, match="index must be an int"):
        PartitionedQueue("email", 4).queue_for_index(index)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [object(), None, 42, 1.5, ["a"], "\udc80"])
def test_bad_keys_rejected_everywhere(key: object) -> None:
    for partitions in (1, 3):
        pq = PartitionedQueue("email", partitions)
        for method in (pq.queue_for_key, pq.route_by_key, pq.partition_for_key):
            with pytest.raises(ValidationError, match=exact("ordering_key must be bytes-like or str")):
                method(key)
        for method in (pq.queues_for_keys, pq.route_by_keys, pq.partitions_for_keys):
            with pytest.raises(ValidationError, match=exact("ordering_key must be bytes-like or str")):
                method(["fine", key])


def test_batch_routes_equal_single_routes() -> None:
    keys = [f"customer-{i}" for i in range(500)] + ["ключ", b"\x00\xff", bytearray(b"ba"), ""]
    for scheme in (AWA_COMPAT, XXH3, CORRELATED_VERIFICATION_ONLY):
        for n in (1, 2, 4, 7):
            pq = PartitionedQueue("orders", n, scheme=scheme)
            assert pq.queues_for_keys(keys) == [pq.queue_for_key(k) for k in keys]
            assert pq.route_by_keys(keys) == [pq.route_by_key(k) for k in keys]
            assert pq.partitions_for_keys(keys) == [pq.partition_for_key(k) for k in keys]
            assert pq.queues_for_keys(iter(keys)) == pq.queues_for_keys(keys)


def test_batch_refuses_single_key() -> None:
    pq = PartitionedQueue("orders", 4)
    with pytest.raises(ValidationError, match="keys must be an iterable of ordering keys"):
        pq.queues_for_keys("customer-42")


def test_schemes_route_differently_and_default_is_awa() -> None:
    keys = [f"customer-{i}" for i in range(64)]
    default = PartitionedQueue("orders", 8)
    assert default.scheme is AWA_COMPAT
    assert default.partitions_for_keys(keys) == [partition_for_ordering_key(k, 8) for k in keys]
    xxh = PartitionedQueue("orders", 8, scheme="xxh3")
    assert xxh.scheme is XXH3
    assert xxh.partitions_for_keys(keys) != default.partitions_for_keys(keys)
    with pytest.raises(ValidationError, match="unknown routing scheme"):
        PartitionedQueue("orders", 8, scheme="md5")


# --- queue configs ---------------------------------------------------------------


def test_queue_configs_hard_reserved() -> None:
    pq = PartitionedQueue("email", 2)
    assert pq.queue_configs(
        max_workers_per_partition=8,
        rate_limit_per_partition=(100.0, 200),
        claimers=2,
        claim_batch_size=64,
    ) == [
        {"name": "email", "max_workers": 8, "rate_limit": (100.0, 200), "claimers": 2, "claim_batch_size": 64},
        {"name": "email__p1", "max_workers": 8, "rate_limit": (100.0, 200), "claimers": 2, "claim_batch_size": 64},
    ]
    # Positional first argument, as in awa.
    assert pq.queue_configs(3) == [{"name": "email", "max_workers": 3}, {"name": "email__p1", "max_workers": 3}]


def test_queue_configs_weighted_and_all_options() -> None:
    pq = PartitionedQueue("email", 2)
    assert pq.queue_configs(min_workers_per_partition=0, weight=3) == [
        {"name": "email", "min_workers": 0, "weight": 3},
        {"name": "email__p1", "min_workers": 0, "weight": 3},
    ]
    configs = pq.queue_configs(
        min_workers_per_partition=2,
        priority_aging_interval_ms=0,
        deadline_duration_ms=30_000,
        claimers=1,
        claim_batch_size=1,
    )
    assert configs[1] == {
        "name": "email__p1",
        "min_workers": 2,
        "weight": 1,
        "priority_aging_interval_ms": 0,
        "deadline_duration_ms": 30_000,
        "claimers": 1,
        "claim_batch_size": 1,
    }
    # weight only appears in weighted mode.
    assert "weight" not in pq.queue_configs(max_workers_per_partition=1, weight=5)[0]


def test_queue_configs_follow_explicit_names() -> None:
    pq = PartitionedQueue.from_physical_queues("email", ["fast", "slow"])
    assert [c["name"] for c in pq.queue_configs(max_workers_per_partition=1)] == ["fast", "slow"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "queue_configs requires max_workers_per_partition or min_workers_per_partition"),
        ({"weight": 3}, "queue_configs requires max_workers_per_partition or min_workers_per_partition"),
        ({"max_workers_per_partition": 1, "min_workers_per_partition": 1},
         "use max_workers_per_partition or min_workers_per_partition, not both"),
        # awa reports "not both" before a zero max_workers.
        ({"max_workers_per_partition": 0, "min_workers_per_partition": 1},
         "use max_workers_per_partition or min_workers_per_partition, not both"),
        ({"max_workers_per_partition": 0}, "max_workers_per_partition must be > 0"),
        ({"max_workers_per_partition": -1}, "max_workers_per_partition must be > 0"),
        ({"min_workers_per_partition": -1}, "min_workers_per_partition must be >= 0"),
        ({"min_workers_per_partition": 0, "weight": 0}, "weight must be > 0"),
        ({"min_workers_per_partition": 0, "weight": -2}, "weight must be > 0"),
        ({"max_workers_per_partition": 1, "weight": 0}, "weight must be > 0"),
        ({"max_workers_per_partition": 1, "claimers": 0}, "claimers must be > 0"),
        ({"max_workers_per_partition": 1, "claimers": -1}, "claimers must be > 0"),
        ({"max_workers_per_partition": 1, "claimers": 65536}, "claimers must be <= 65535"),
        ({"max_workers_per_partition": 1, "claim_batch_size": 0}, "claim_batch_size must be > 0"),
        ({"max_workers_per_partition": 1, "claim_batch_size": -5}, "claim_batch_size must be > 0"),
        ({"max_workers_per_partition": 2**32}, "max_workers_per_partition must be <= 4294967295"),
        ({"max_workers_per_partition": 1, "priority_aging_interval_ms": -1},
         "priority_aging_interval_ms must be >= 0"),
        ({"max_workers_per_partition": 1, "deadline_duration_ms": -1}, "deadline_duration_ms must be >= 0"),
        ({"max_workers_per_partition": "8"}, "max_workers_per_partition must be an int; got str"),
        ({"max_workers_per_partition": 8.0}, "max_workers_per_partition must be an int; got float"),
        ({"max_workers_per_partition": True}, "max_workers_per_partition must be an int; got bool"),
        ({"min_workers_per_partition": 1, "weight": None}, "weight must be an int; got NoneType"),
        ({"max_workers_per_partition": 1, "claimers": 1.5}, "claimers must be an int; got float"),
    ],
)
def test_queue_configs_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=exact(message)):
        PartitionedQueue("email", 2).queue_configs(**kwargs)


# --- construction errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", 4), "partitioned queue logical queue must not be empty"),
        (("email", 0), "partitioned queue partitions must be > 0"),
        (("email", -1), "partitioned queue partitions must be > 0"),
        # The count is checked before the name, as in awa.
        (("", 0), "partitioned queue partitions must be > 0"),
        (("email", 32768), "partitioned queue supports at most 32767 physical queues; got 32768"),
        (("email", 10**12), "partitioned queue supports at most 32767 physical queues; got 1000000000000"),
        (("email", "4"), "partitioned queue partitions must be an int; got str"),
        (("email", 4.0), "partitioned queue partitions must be an int; got float"),
        (("email", True), "partitioned queue partitions must be an int; got bool"),
        ((None, 4), "partitioned queue logical queue must be a str; got NoneType"),
        ((b"email", 4), "partitioned queue logical queue must be a str; got bytes"),
    ],
)
def test_constructor_errors(args: tuple, message: str) -> None:
    with pytest.raises(ValidationError, match=exact(message)):
        PartitionedQueue(*args)


def test_largest_partition_count_is_allowed() -> None:
    pq = PartitionedQueue("email", 32767)
    assert pq.physical_queues[-1] == "email__p32766"


@pytest.mark.parametrize(
    ("logical", "queues", "message"),
    [
        ("email", [], "partitioned queue partitions must be > 0"),
        ("email", ["email-a", ""], "partitioned queue physical queue must not be empty"),
        ("email", ["email-a", "email-a"], "partitioned queue physical queue 'email-a' is duplicated"),
        ("", ["a"], "partitioned queue logical queue must not be empty"),
        ("email", ["a", 3], "partitioned queue physical queue must be a str; got int"),
        ("email", "ab", "physical_queues must be a list of queue names, not a single str"),
        ("email", 5, "physical_queues must be an iterable of str; got int"),
        ("email", [f"q{i}" for i in range(32768)],
         "partitioned queue supports at most 32767 physical queues; got 32768"),
    ],
)
def test_from_physical_queues_errors(logical: str, queues: object, message: str) -> None:
    with pytest.raises(ValidationError, match=exact(message)):
        PartitionedQueue.from_physical_queues(logical, queues)  # type: ignore[arg-type]


# --- value semantics --------------------------------------------------------------


def test_equality_and_hash() -> None:
    a = PartitionedQueue("email", 3)
    b = PartitionedQueue.from_physical_queues("email", ["email", "email__p1", "email__p2"])
    assert a == b and hash(a) == hash(b)
    assert a != PartitionedQueue("email", 4)
    assert a != PartitionedQueue.from_physical_queues("email", ["email__p1", "email", "email__p2"])
    assert a != PartitionedQueue("email", 3, scheme=XXH3)
    assert a != ["email", "email__p1", "email__p2"]
    assert len({a, b, PartitionedQueue("email", 3, scheme=XXH3)}) == 2


def test_repr() -> None:
    assert repr(PartitionedQueue("email", 4)) == (
        'PartitionedQueue(logical_queue="email", partitions=4, scheme="awa-compat")'
    )
    assert repr(PartitionedQueue("email", 2, scheme="xxh3")) == (
        'PartitionedQueue(logical_queue="email", partitions=2, scheme="xxh3")'
    )
    assert repr(PartitionedQueue.from_physical_queues("e", ["a", 'b"c'])) == (
        'PartitionedQueue(logical_queue="e", partitions=2, physical_queues=["a", "b\\"c"], scheme="awa-compat")'
    )


def test_pickle_round_trip() -> None:
    for pq in (PartitionedQueue("email", 3, scheme="xxh3"), PartitionedQueue.from_physical_queues("e", ["x", "y"])):
        copy = pickle.loads(pickle.dumps(pq))
        assert copy == pq and copy.scheme is pq.scheme


def test_reexported_from_awa() -> None:
    assert awa.PartitionedQueue is PartitionedQueue
