"""Python mirror of ``specs/PartitionedQueueRouting.tla``.

One function per spec operator; names in the docstrings point back to the
spec.  A state is the spec's ``log``: a tuple of rows
``(key, partition, shard)`` in enqueue order.  The broken routings of
``specs/PartitionedQueueRoutingBroken.tla`` are switched on by the cfg's
definition overrides (``PartitionFor <- PartitionForRotor``).

The mapping from these abstract operators to the concrete routing code in
``awa.routing`` is recorded in ``specs/MAPPING.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from verification.mirrors.cfg import ModelConfig, switches
from verification.mirrors.explore import Model, Transition

DOMAIN_SEPARATED = "domain_separated"
CORRELATED = "correlated"
DOMAIN_SALT = 5  # spec: DomainSalt

Row = tuple[int, int, int]  # (key, partition, shard)
RoutingState = tuple[Row, ...]

OVERRIDES = {
    ("PartitionFor", "PartitionForRotor"): "partition_rotor",
    ("ShardFor", "ShardForRotor"): "shard_rotor",
    ("PartitionFor", "PartitionForSigned"): "partition_signed",
}


@dataclass(frozen=True)
class RoutingConstants:
    num_partitions: int
    num_shards: int
    hash_max: int
    job_limit: int
    partition_scheme: str
    partition_rotor: bool = False  # spec: PartitionFor <- PartitionForRotor
    shard_rotor: bool = False  # spec: ShardFor <- ShardForRotor
    partition_signed: bool = False  # spec: PartitionFor <- PartitionForSigned

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "RoutingConstants":
        c = config.constants
        on = switches(config, OVERRIDES)
        constants = cls(
            num_partitions=int(c["NumPartitions"]),
            num_shards=int(c["NumShards"]),
            hash_max=int(c["HashMax"]),
            job_limit=int(c["JobLimit"]),
            partition_scheme=str(c["PartitionScheme"]),
            partition_rotor="partition_rotor" in on,
            shard_rotor="shard_rotor" in on,
            partition_signed="partition_signed" in on,
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


# --- routing operators ---------------------------------------------------


def mixed_hash(c: RoutingConstants, h: int) -> int:
    """spec: MixedHash(h) -- abstract domain-separated partition hash."""
    return (3 * h + h // c.num_shards + DOMAIN_SALT) % (c.hash_max + 1)


def contract_shard(c: RoutingConstants, h: int) -> int:
    """spec: ContractShard(h)."""
    return h % c.num_shards


def contract_partition(c: RoutingConstants, h: int) -> int:
    """spec: ContractPartition(h)."""
    return mixed_hash(c, h) % c.num_partitions


def shard_for(c: RoutingConstants, h: int, log: RoutingState = ()) -> int:
    """spec: ShardFor(h) (ShardForRotor(h) when overridden)."""
    if c.shard_rotor:
        return len(log) % c.num_shards
    return h % c.num_shards


def partition_for(c: RoutingConstants, h: int, log: RoutingState = ()) -> int:
    """spec: PartitionFor(h) (PartitionForRotor / PartitionForSigned when overridden)."""
    if c.partition_rotor:
        return len(log) % c.num_partitions
    if c.partition_signed:
        x = mixed_hash(c, h)
        space = c.hash_max + 1
        signed = x - space if 2 * x >= space else x  # spec: AsSigned
        return signed % c.num_partitions if signed >= 0 else -((-signed) % c.num_partitions)  # spec: SqlMod
    if c.partition_scheme == CORRELATED:
        return h % c.num_partitions
    return mixed_hash(c, h) % c.num_partitions


# --- behaviour -----------------------------------------------------------


def initial_state(c: RoutingConstants) -> RoutingState:
    """spec: Init."""
    return ()


def enqueue(c: RoutingConstants, log: RoutingState, h: int) -> RoutingState | None:
    """spec: Enqueue(h); None when the action is not enabled."""
    if len(log) >= c.job_limit or h not in c.hashes:
        return None
    return log + ((h, partition_for(c, h, log), shard_for(c, h, log)),)


def successors(c: RoutingConstants, state: RoutingState) -> Iterator[Transition]:
    """spec: Next == \\E h \\in Hashes : Enqueue(h)."""
    for h in c.hashes:
        nxt = enqueue(c, state, h)
        if nxt is not None:
            yield ("Enqueue", (h,)), nxt


# --- invariants ----------------------------------------------------------


def type_ok(c: RoutingConstants, log: RoutingState) -> bool:
    """spec: TypeOK."""
    if len(log) > c.job_limit:
        return False
    return all(k in c.hashes and p in c.partitions and s in c.shards for k, p, s in log)


def rows_follow_routing(c: RoutingConstants, log: RoutingState) -> bool:
    """spec: RowsFollowRouting -- rows against the separately stated contract."""
    return all(p == contract_partition(c, k) and s == contract_shard(c, k) for k, p, s in log)


def same_key_same_partition(c: RoutingConstants, log: RoutingState) -> bool:
    """spec: SameKeySamePartition."""
    seen: dict[int, int] = {}
    return all(seen.setdefault(key, p) == p for key, p, _ in log)


def same_key_same_shard(c: RoutingConstants, log: RoutingState) -> bool:
    """spec: SameKeySameShard."""
    seen: dict[int, int] = {}
    return all(seen.setdefault(key, s) == s for key, _, s in log)


def partition_shard_coverage(c: RoutingConstants) -> bool:
    """spec: PartitionShardCoverage (constant-level)."""
    for p in c.partitions:
        reached = {shard_for(c, h) for h in c.hashes if partition_for(c, h) == p}
        if reached != set(c.shards):
            return False
    return True


def keyed_traffic_spreads_across_shards(c: RoutingConstants, log: RoutingState) -> bool:
    """spec: KeyedTrafficSpreadsAcrossShards."""
    reach: dict[int, set[int]] = {}
    for h in c.hashes:
        reach.setdefault(partition_for(c, h, log), set()).add(shard_for(c, h, log))
    every = set(c.shards)
    return all(reach.get(p, set()) == every for _, p, _ in log)


STATE_INVARIANTS = {
    "TypeOK": type_ok,
    "RowsFollowRouting": rows_follow_routing,
    "SameKeySamePartition": same_key_same_partition,
    "SameKeySameShard": same_key_same_shard,
    "KeyedTrafficSpreadsAcrossShards": keyed_traffic_spreads_across_shards,
}
CONSTANT_INVARIANTS = {"PartitionShardCoverage": partition_shard_coverage}
ACTIONS = {"Enqueue": enqueue}
SPECIFICATIONS = {"Spec": ()}


def render(log: RoutingState) -> str:
    rows = ", ".join(f"[key={k} p={p} s={s}]" for k, p, s in log)
    return f"log=<<{rows}>>"


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
