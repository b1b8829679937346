"""RoutedOpts: the column form of PartitionedQueue's batch routes (no database)."""

from __future__ import annotations

import pytest

from awa.errors import ValidationError
from awa.routing import PartitionedQueue, RoutedOpts
from awa.routing import partitioned_queue as pq_module


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


def test_key_memo_is_bounded_and_never_changes_an_answer(monkeypatch) -> None:
    monkeypatch.setattr(pq_module, "_MEMO_KEYS", 64)
    monkeypatch.setattr(pq_module, "_MEMO_KEY_LENGTH", 8)
    pq = PartitionedQueue("orders", 5)
    long_key = "k" * 9  # longer than the memo takes
    for round_no in range(6):
        keys = [f"c{(round_no * 37 + i) % 150}" for i in range(90)] + [long_key, b"c1", "c1"]
        assert pq.route_by_keys(keys) == [pq.route_by_key(k) for k in keys]
        queue_memo, bytes_memo = pq._key_memo
        assert len(queue_memo) <= 64 and len(bytes_memo) <= 64
        assert long_key not in queue_memo
        # Everything remembered is right.
        for key, queue in queue_memo.items():
            assert queue == pq.queue_for_key(key)
            assert bytes_memo[key] == (key.encode() if isinstance(key, str) else key)
