"""RoutedOpts: the column form of PartitionedQueue's batch routes (no database)."""

from __future__ import annotations

import pytest

from awa.errors import ValidationError
from awa.routing import PartitionedQueue, RoutedOpts
from awa.routing.routed_opts import BatchRouter, check_index


def test_route_by_keys_is_a_read_only_sequence_equal_to_the_single_routes() -> None:
    pq = PartitionedQueue("orders", 4)
    keys = [f"customer-{i % 7}" for i in range(50)]
    routed = pq.route_by_keys(keys)
    singles = [pq.route_by_key(k) for k in keys]
    assert isinstance(routed, RoutedOpts)
    assert routed == singles and singles == routed
    assert list(routed) == singles
    assert len(routed) == 50
    assert routed[-1] == singles[-1]
    assert routed[10:20] == singles[10:20] and isinstance(routed[10:20], RoutedOpts)
    assert routed != singles[:-1]
    with pytest.raises(TypeError):
        routed[0] = {"queue": "elsewhere"}  # type: ignore[index]
    # Items are fresh dicts: changing one changes nothing stored.
    routed[0]["queue"] = "elsewhere"
    assert routed[0] == singles[0]
    assert routed.queues == [d["queue"] for d in singles]
    assert routed.keys == [d["ordering_key"] for d in singles]


def test_route_by_keys_does_not_keep_the_callers_list() -> None:
    pq = PartitionedQueue("orders", 4)
    keys = [b"a", b"b", b"c"]
    routed = pq.route_by_keys(keys)
    keys[0] = b"changed"
    assert routed.keys == [b"a", b"b", b"c"]


def test_route_by_indexes_equals_route_by_index() -> None:
    pq = PartitionedQueue("orders", 3)
    assert pq.route_by_indexes(range(10)) == [pq.route_by_index(i) for i in range(10)]
    with pytest.raises(ValidationError, match="index must be >= 0"):
        pq.route_by_indexes([1, -1])
    with pytest.raises(ValidationError, match="index must be an int; got bool"):
        pq.route_by_index(True)


@pytest.mark.parametrize(
    ("queues", "keys", "message"),
    [
        (["q", 7], None, "RoutedOpts queues must be strings"),
        (["q"], ["text"], "RoutedOpts ordering keys must be bytes"),
        (["q"], [bytearray(b"k")], "RoutedOpts ordering keys must be bytes"),
        (["q", "q"], [b"k"], "RoutedOpts queues and keys must have the same length"),
    ],
)
def test_constructor_checks_both_columns(queues, keys, message) -> None:
    with pytest.raises(ValidationError, match=message):
        RoutedOpts(queues, keys)


def test_constructor_copies_its_inputs() -> None:
    queues, keys = ["a", "b"], [b"1", b"2"]
    routed = RoutedOpts(queues, keys)
    queues[0], keys[0] = "x", b"x"
    assert routed == [{"queue": "a", "ordering_key": b"1"}, {"queue": "b", "ordering_key": b"2"}]


def test_key_memo_is_bounded_and_never_changes_an_answer() -> None:
    pq = PartitionedQueue("orders", 5)
    router = BatchRouter(pq.physical_queues, pq.scheme.partitions_for_keys, memo_keys=64, memo_key_length=8)
    long_key = "k" * 9  # longer than the memo takes
    for round_no in range(6):
        # At most 42 short distinct keys a round, so each round is remembered
        # and every other round overflows the 64 and restarts the memo.
        keys = [f"c{(round_no * 37 + i) % 150}" for i in range(40)] * 2 + [long_key, b"c1", "c1"]
        expected = [pq.route_by_key(k) for k in keys]
        assert router.route_keys(keys) == expected
        assert router.route_keys(keys) == expected  # answered from the memo where it can be
        assert pq.route_by_keys(keys) == expected
        memo = router.remembered()
        assert 40 <= len(memo) <= 64
        assert long_key not in memo and b"c1" in memo and "c1" in memo
        # Everything remembered is right.
        for key, (queue, data) in memo.items():
            assert queue == pq.queue_for_key(key)
            assert data == (key.encode() if isinstance(key, str) else key)


def test_router_routes_like_the_single_routes() -> None:
    pq = PartitionedQueue.from_physical_queues("orders", ["o-a", "o-b", "o-c"])
    router = BatchRouter(("o-a", "o-b", "o-c"), pq.scheme.partitions_for_keys)
    keys = ["x", bytearray(b"y"), memoryview(b"z"), b"x", "x"] * 3
    assert router.route_keys(keys) == [pq.route_by_key(k) for k in keys]
    assert router.remembered() == {}  # keys of other types are not remembered
    assert router.route_indexes(range(2, 9)) == [pq.route_by_index(i) for i in range(2, 9)]
    assert router.queues_for_indexes([0, 4, 5]) == ["o-a", "o-b", "o-c"]
    assert router.queues_for_indexes(range(0)) == []
    one = BatchRouter(["only"], pq.scheme.partitions_for_keys)
    assert one.route_keys(["a", b"b"]) == [{"queue": "only", "ordering_key": b"a"},
                                           {"queue": "only", "ordering_key": b"b"}]
    with pytest.raises(ValidationError, match="ordering_key must be bytes-like or str"):
        router.route_keys(["a", 1])
    with pytest.raises(ValidationError, match="not a single key"):
        router.route_keys("abc")


@pytest.mark.parametrize("queues", [[], ["a", ""], ["a", 1], "ab"])
def test_router_checks_its_queues(queues) -> None:
    if queues == "ab":  # a str is a sequence of one-character names: allowed, two queues
        assert BatchRouter(queues, lambda data, n: [0] * len(data)).queues_for_indexes([1]) == ["b"]
        return
    with pytest.raises(ValidationError, match="BatchRouter queues must be"):
        BatchRouter(queues, lambda data, n: [0] * len(data))


def test_router_refuses_a_partition_function_with_the_wrong_length() -> None:
    router = BatchRouter(["a", "b"], lambda data, n: [0])
    with pytest.raises(ValidationError, match="one partition per key"):
        router.route_keys(["x", "y"])


@pytest.mark.parametrize(("index", "message"), [(-1, "index must be >= 0"), (True, "index must be an int; got bool"),
                                                (1.0, "index must be an int; got float")])
def test_check_index(index, message) -> None:
    with pytest.raises(ValidationError, match=f"^{message}$"):
        check_index(index)
    assert check_index(0) == 0 and check_index(2**70) == 2**70
