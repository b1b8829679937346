"""Python mirror of ``specs/PartitionedQueueRouting.tla``.

One function per spec operator; names in the docstrings point back to the
spec.  A state is ``(log, lane_next)``:

* ``log`` -- tuple of rows ``(key, partition, shard, seq)`` in enqueue order
  (the spec's ``log``, a sequence of records);
* ``lane_next`` -- tuple of next lane sequence numbers, one per
  ``(partition, shard)`` in the order of ``Partitions \\X Shards``.

The mapping from these abstract operators to the concrete routing code in
``awa.routing`` is recorded in ``specs/MAPPING.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from verification.mirrors.cfg import ModelConfig
from verification.mirrors.explore import Model, Transition

DOMAIN_SEPARATED = "domain_separated"
CORRELATED = "correlated"
DOMAIN_SALT = 5  # spec: DomainSalt

Row = tuple[int, int, int, int]  # (key, partition, shard, seq)
RoutingState = tuple[tuple[Row, ...], tuple[int, ...]]


@dataclass(frozen=True)
class RoutingConstants:
    num_partitions: int
    num_shards: int
    hash_max: int
    job_limit: int
    partition_scheme: str

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "RoutingConstants":
        c = config.constants
        constants = cls(
            num_partitions=int(c["NumPartitions"]),
            num_shards=int(c["NumShards"]),
            hash_max=int(c["HashMax"]),
            job_limit=int(c["JobLimit"]),
            partition_scheme=str(c["PartitionScheme"]),
        )
        constants.check_assumptions()
        return constants

    def check_assumptions(self) -> None:
        """spec: the ASSUME block."""
        if self.num_partitions < 1 or self.num_shards < 1 or self.job_limit < 1:
            raise ValueError("NumPartitions, NumShards and JobLimit must be >= 1")
        if self.hash_max < 0:
            raise ValueError("HashMax must be >= 0")
        if self.partition_scheme not in (DOMAIN_SEPARATED, CORRELATED):
            raise ValueError(f"unknown PartitionScheme {self.partition_scheme!r}")

    @property
    def partitions(self) -> range:
        return range(self.num_partitions)

    @property
    def shards(self) -> range:
        return range(self.num_shards)

    @property
    def hashes(self) -> range:
        return range(self.hash_max + 1)

    def lane_index(self, partition: int, shard: int) -> int:
        return partition * self.num_shards + shard


# --- routing operators ---------------------------------------------------


def shard_for(c: RoutingConstants, h: int) -> int:
    """spec: ShardFor(h)."""
    return h % c.num_shards


def mixed_hash(c: RoutingConstants, h: int) -> int:
    """spec: MixedHash(h) -- abstract domain-separated partition hash."""
    return (3 * h + h // c.num_shards + DOMAIN_SALT) % (c.hash_max + 1)


def partition_for(c: RoutingConstants, h: int) -> int:
    """spec: PartitionFor(h)."""
    if c.partition_scheme == CORRELATED:
        return h % c.num_partitions
    return mixed_hash(c, h) % c.num_partitions


# --- behaviour -----------------------------------------------------------


def initial_state(c: RoutingConstants) -> RoutingState:
    """spec: Init."""
    return (), (1,) * (c.num_partitions * c.num_shards)


def enqueue(c: RoutingConstants, state: RoutingState, h: int) -> RoutingState | None:
    """spec: Enqueue(h); None when the action is not enabled."""
    log, lane_next = state
    if len(log) >= c.job_limit or h not in c.hashes:
        return None
    p, s = partition_for(c, h), shard_for(c, h)
    lane = c.lane_index(p, s)
    row = (h, p, s, lane_next[lane])
    bumped = lane_next[:lane] + (lane_next[lane] + 1,) + lane_next[lane + 1:]
    return log + (row,), bumped


def successors(c: RoutingConstants, state: RoutingState) -> Iterator[Transition]:
    """spec: Next == \\E h \\in Hashes : Enqueue(h)."""
    for h in c.hashes:
        nxt = enqueue(c, state, h)
        if nxt is not None:
            yield ("Enqueue", (h,)), nxt


# --- invariants ----------------------------------------------------------


def type_ok(c: RoutingConstants, state: RoutingState) -> bool:
    """spec: TypeOK."""
    log, lane_next = state
    if len(log) > c.job_limit or len(lane_next) != c.num_partitions * c.num_shards:
        return False
    for key, p, s, seq in log:
        if key not in c.hashes or p not in c.partitions or s not in c.shards:
            return False
        if not 1 <= seq <= c.job_limit:
            return False
    return all(1 <= n <= c.job_limit + 1 for n in lane_next)


def rows_follow_routing(c: RoutingConstants, state: RoutingState) -> bool:
    """spec: RowsFollowRouting."""
    return all(p == partition_for(c, k) and s == shard_for(c, k) for k, p, s, _ in state[0])


def same_key_same_partition(c: RoutingConstants, state: RoutingState) -> bool:
    """spec: SameKeySamePartition."""
    seen: dict[int, int] = {}
    for key, p, _, _ in state[0]:
        if seen.setdefault(key, p) != p:
            return False
    return True


def same_key_same_shard(c: RoutingConstants, state: RoutingState) -> bool:
    """spec: SameKeySameShard."""
    seen: dict[int, int] = {}
    for key, _, s, _ in state[0]:
        if seen.setdefault(key, s) != s:
            return False
    return True


def seq_unique_within_partition_shard(c: RoutingConstants, state: RoutingState) -> bool:
    """spec: SeqUniqueWithinPartitionShard."""
    lane_seqs = [(p, s, seq) for _, p, s, seq in state[0]]
    return len(lane_seqs) == len(set(lane_seqs))


def lane_counter_matches_rows(c: RoutingConstants, state: RoutingState) -> bool:
    """spec: LaneCounterMatchesRows."""
    log, lane_next = state
    counts = [0] * len(lane_next)
    for _, p, s, _ in log:
        counts[c.lane_index(p, s)] += 1
    return all(n == count + 1 for n, count in zip(lane_next, counts))


def partition_shard_coverage(c: RoutingConstants) -> bool:
    """spec: PartitionShardCoverage (constant-level)."""
    for p in c.partitions:
        reached = {shard_for(c, h) for h in c.hashes if partition_for(c, h) == p}
        if reached != set(c.shards):
            return False
    return True


def keyed_traffic_spreads_across_shards(c: RoutingConstants, state: RoutingState) -> bool:
    """spec: KeyedTrafficSpreadsAcrossShards."""
    keys: dict[int, set[int]] = {}
    shards: dict[int, set[int]] = {}
    for key, p, s, _ in state[0]:
        keys.setdefault(p, set()).add(key)
        shards.setdefault(p, set()).add(s)
    return all(len(shards[p]) >= 2 for p in keys if len(keys[p]) >= 2)


STATE_INVARIANTS = {
    "TypeOK": type_ok,
    "RowsFollowRouting": rows_follow_routing,
    "SameKeySamePartition": same_key_same_partition,
    "SameKeySameShard": same_key_same_shard,
    "SeqUniqueWithinPartitionShard": seq_unique_within_partition_shard,
    "LaneCounterMatchesRows": lane_counter_matches_rows,
    "KeyedTrafficSpreadsAcrossShards": keyed_traffic_spreads_across_shards,
}
CONSTANT_INVARIANTS = {"PartitionShardCoverage": partition_shard_coverage}
ACTIONS = {"Enqueue": enqueue}
SPECIFICATIONS = {"Spec": ()}


def render(state: RoutingState) -> str:
    log, lane_next = state
    rows = ", ".join(f"[key={k} p={p} s={s} seq={q}]" for k, p, s, q in log)
    return f"log=<<{rows}>> laneNext={list(lane_next)}"


def build_model(config: ModelConfig) -> Model:
    """The explorer's view of this spec under one cfg."""
    c = RoutingConstants.from_cfg(config)
    if config.specification not in SPECIFICATIONS:
        raise KeyError(f"routing mirror has no specification {config.specification!r}")
    return Model(
        name=f"PartitionedQueueRouting/{config.path.name}",
        initial_states=lambda: [initial_state(c)],
        successors=lambda state: successors(c, state),
        invariants={n: (lambda s, f=f: f(c, s)) for n, f in STATE_INVARIANTS.items()},
        constant_invariants={
            n: (lambda f=f: f(c)) for n, f in CONSTANT_INVARIANTS.items()
        },
        render=render,
    )
