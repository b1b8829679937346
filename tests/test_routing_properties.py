"""Hypothesis properties of key routing, for every scheme and both batch backends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from awa.routing.names import queue_name_problem
from awa.routing import (
    AWA_COMPAT,
    CORRELATED_VERIFICATION_ONLY,
    XXH3,
    PartitionedQueue,
    ordering_key_hash64,
    ordering_key_hashes64,
    partition_for_ordering_key,
    partition_hash64,
    partitions_for_ordering_keys,
    shard_for_ordering_key,
    shards_for_ordering_keys,
)
from awa.routing import hashes as H

schemes = st.sampled_from([AWA_COMPAT, XXH3, CORRELATED_VERIFICATION_ONLY])
counts = st.integers(min_value=1, max_value=300)
text_keys = st.text(max_size=40)  # surrogates excluded by default: valid UTF-8
byte_keys = st.binary(max_size=64)
keys = st.one_of(text_keys, byte_keys)
# Logical names in the queue-name grammar (docs/configuration.md); names
# outside it are rejected, which tests/test_bad_input.py covers.
logical_names = st.from_regex(r"[A-Za-z0-9_.:-]{1,20}", fullmatch=True).filter(
    lambda n: queue_name_problem(n, allow_partition=False) is None
)
backends = st.sampled_from(["python", "numpy"] if H.HAVE_NUMPY else ["python"])


def _contract_hash(data: bytes) -> int:
    h = 14695981039346656037
    for b in data:
        h = (h * 1099511628211 + b) % 2**64
    return h


@given(key=keys, n=counts, scheme=schemes)
def test_same_key_same_partition_and_shard(key: str | bytes, n: int, scheme: object) -> None:
    copy = key[:] if isinstance(key, str) else bytes(bytearray(key))
    assert scheme.partition_for_key(key, n) == scheme.partition_for_key(copy, n)
    assert scheme.shard_for_key(key, n) == scheme.shard_for_key(copy, n)
    pq = PartitionedQueue("q", n, scheme=scheme)
    assert pq.queue_for_key(key) == pq.queue_for_key(copy)


@given(key=keys, n=counts, scheme=schemes)
def test_results_in_range(key: str | bytes, n: int, scheme: object) -> None:
    assert 0 <= scheme.partition_for_key(key, n) < n
    assert 0 <= scheme.shard_for_key(key, n) < n
    assert 0 <= ordering_key_hash64(key) < 2**64
    assert 0 <= partition_hash64(key) < 2**64
    pq = PartitionedQueue("q", n, scheme=scheme)
    assert pq.queue_for_key(key) in pq.physical_queues


@given(text=text_keys, n=counts, scheme=schemes)
def test_str_and_utf8_bytes_agree(text: str, n: int, scheme: object) -> None:
    data = text.encode("utf-8")
    assert ordering_key_hash64(text) == ordering_key_hash64(data) == _contract_hash(data)
    assert scheme.partition_for_key(text, n) == scheme.partition_for_key(data, n)
    assert scheme.shard_for_key(text, n) == scheme.shard_for_key(bytearray(data), n)
    pq = PartitionedQueue("q", n, scheme=scheme)
    assert pq.route_by_key(text) == pq.route_by_key(data) == {"queue": pq.queue_for_key(data), "ordering_key": data}


@given(key=keys, logical=logical_names, scheme=schemes, index=st.integers(min_value=0, max_value=2**80))
def test_one_partition_is_a_plain_queue(key: str | bytes, logical: str, scheme: object, index: int) -> None:
    pq = PartitionedQueue(logical, 1, scheme=scheme)
    assert pq.physical_queues == [logical]
    assert pq.queue_for_key(key) == logical
    assert pq.queue_for_index(index) == logical
    assert partition_for_ordering_key(key, 1) == 0 and shard_for_ordering_key(key, 1) == 0


@given(n=st.integers(min_value=1, max_value=64), start=st.integers(min_value=0, max_value=10**6),
       rounds=st.integers(min_value=1, max_value=4))
def test_index_routing_is_exact_round_robin(n: int, start: int, rounds: int) -> None:
    pq = PartitionedQueue("rr", n)
    seen = [pq.queue_for_index(i) for i in range(start, start + n * rounds)]
    # Every window of n consecutive indexes visits every queue exactly once, in order.
    queues = pq.physical_queues
    assert seen == [queues[i % n] for i in range(start, start + n * rounds)]
    for r in range(rounds):
        assert sorted(seen[r * n : (r + 1) * n]) == sorted(queues)


@given(batch=st.lists(keys, max_size=60), n=counts, backend=backends)
def test_batch_equals_scalar(batch: list, n: int, backend: str) -> None:
    assert ordering_key_hashes64(batch, backend=backend) == [ordering_key_hash64(k) for k in batch]
    assert partitions_for_ordering_keys(batch, n, backend=backend) == [
        partition_for_ordering_key(k, n) for k in batch
    ]
    assert shards_for_ordering_keys(batch, n, backend=backend) == [shard_for_ordering_key(k, n) for k in batch]


@given(batch=st.lists(keys, max_size=40), n=counts, scheme=schemes)
def test_partitioned_queue_batch_equals_single(batch: list, n: int, scheme: object) -> None:
    pq = PartitionedQueue("orders", n, scheme=scheme)
    assert pq.queues_for_keys(batch) == [pq.queue_for_key(k) for k in batch]


@given(names=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=20, unique=True), key=keys)
def test_explicit_queues_route_inside_the_list(names: list[str], key: str | bytes) -> None:
    pq = PartitionedQueue.from_physical_queues("logical", names)
    assert pq.physical_queues == names
    assert pq.queue_for_key(key) == names[partition_for_ordering_key(key, len(names))]
