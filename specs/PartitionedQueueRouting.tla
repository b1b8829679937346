------------------------- MODULE PartitionedQueueRouting -------------------------
(***************************************************************************)
(* Producer-side routing of a partitioned queue (ADR-031 refinement).      *)
(*                                                                         *)
(* A producer holds an ordering key.  The key is abstracted to a base hash *)
(* in 0..HashMax.  Two independent decisions are taken from it:            *)
(*   - the enqueue shard inside a physical queue is the base hash reduced  *)
(*     modulo NumShards (the ADR-025 rule, kept unchanged), and            *)
(*   - the partition (physical queue) is taken from a *different*,         *)
(*     domain-separated hash of the same key.                              *)
(* Every enqueued row records its key, partition, shard and the lane       *)
(* sequence number drawn from the (partition, shard) lane counter.         *)
(*                                                                         *)
(* PartitionScheme selects the routing under test:                         *)
(*   "domain_separated" -- the design;                                     *)
(*   "correlated"       -- the defect ADR-031 removed: the partition is    *)
(*                         the base hash modulo NumPartitions, so both     *)
(*                         levels reduce the same number and keyed traffic *)
(*                         inside a partition collapses onto few shards.   *)
(*                                                                         *)
(* Python mirror: verification/mirrors/routing.py (see specs/MAPPING.md).            *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS
    NumPartitions,    \* physical queues of one logical queue
    NumShards,        \* enqueue shards inside each physical queue
    HashMax,          \* base hashes are 0..HashMax
    JobLimit,         \* bound on the number of enqueues explored
    PartitionScheme   \* "domain_separated" or "correlated"

ASSUME /\ NumPartitions \in Nat \ {0}
       /\ NumShards \in Nat \ {0}
       /\ HashMax \in Nat
       /\ JobLimit \in Nat \ {0}
       /\ PartitionScheme \in {"domain_separated", "correlated"}

VARIABLES
    log,       \* enqueued rows in enqueue order; the index is the job id
    laneNext   \* [Partitions \X Shards -> Nat]: next lane sequence number

vars == <<log, laneNext>>

Partitions == 0 .. (NumPartitions - 1)
Shards     == 0 .. (NumShards - 1)
Hashes     == 0 .. HashMax
HashSpace  == HashMax + 1

(* Enqueue shard: the portable base hash, reduced directly.                *)
ShardFor(h) == h % NumShards

(* Stand-in for the SplitMix64 finaliser applied to (base hash XOR a       *)
(* partition domain constant).  What matters at this level of abstraction *)
(* is that the result mixes the high part of the base hash (h \div        *)
(* NumShards, which the shard rule ignores) into the low digits that the  *)
(* partition modulo keeps.  DomainSalt plays the role of the domain       *)
(* constant.                                                               *)
DomainSalt == 5
MixedHash(h) == (3 * h + h \div NumShards + DomainSalt) % HashSpace

PartitionFor(h) ==
    IF PartitionScheme = "correlated"
        THEN h % NumPartitions
        ELSE MixedHash(h) % NumPartitions

Row == [key: Hashes, partition: Partitions, shard: Shards,
        seq: 1 .. JobLimit]

Init ==
    /\ log = << >>
    /\ laneNext = [lane \in Partitions \X Shards |-> 1]

(* A producer enqueues one job with ordering-key hash h.                   *)
Enqueue(h) ==
    /\ Len(log) < JobLimit
    /\ LET p    == PartitionFor(h)
           s    == ShardFor(h)
           lane == <<p, s>>
       IN /\ log' = Append(log, [key |-> h, partition |-> p, shard |-> s,
                                 seq |-> laneNext[lane]])
          /\ laneNext' = [laneNext EXCEPT ![lane] = @ + 1]

Next == \E h \in Hashes : Enqueue(h)

Spec == Init /\ [][Next]_vars

---------------------------------------------------------------------------
(* Helpers over the rows produced so far.                                  *)
JobIds == DOMAIN log
RowsOn(p, s) == {i \in JobIds : log[i].partition = p /\ log[i].shard = s}
KeysIn(p) == {log[i].key : i \in {i2 \in JobIds : log[i2].partition = p}}
ShardsUsedIn(p) == {log[i].shard : i \in {i2 \in JobIds : log[i2].partition = p}}

---------------------------------------------------------------------------
(* Invariants.                                                             *)

TypeOK ==
    /\ Len(log) <= JobLimit
    /\ \A i \in JobIds : log[i] \in Row
    /\ laneNext \in [Partitions \X Shards -> 1 .. (JobLimit + 1)]

(* Each row sits exactly where the routing functions send its key.         *)
RowsFollowRouting ==
    \A i \in JobIds :
        /\ log[i].partition = PartitionFor(log[i].key)
        /\ log[i].shard = ShardFor(log[i].key)

SameKeySamePartition ==
    \A i, k \in JobIds :
        log[i].key = log[k].key => log[i].partition = log[k].partition

SameKeySameShard ==
    \A i, k \in JobIds :
        log[i].key = log[k].key => log[i].shard = log[k].shard

(* Lane sequence numbers identify a row within its (partition, shard) lane *)
(* and no wider: two different rows of one lane never share a number.     *)
SeqUniqueWithinPartitionShard ==
    \A i, k \in JobIds :
        (i # k /\ log[i].partition = log[k].partition
               /\ log[i].shard = log[k].shard)
            => log[i].seq # log[k].seq

(* The lane counter always points just past the rows already in the lane.  *)
LaneCounterMatchesRows ==
    \A p \in Partitions, s \in Shards :
        laneNext[<<p, s>>] = Cardinality(RowsOn(p, s)) + 1

(* Constant-level: every partition is reachable by keys of every shard.    *)
(* TLC evaluates it once, at start-up, because it mentions no variable.    *)
PartitionShardCoverage ==
    \A p \in Partitions :
        {ShardFor(h) : h \in {h2 \in Hashes : PartitionFor(h2) = p}} = Shards

(* Behaviour-level form of the same defect, checked on the rows actually   *)
(* produced: once a partition has received two different keys, its keyed  *)
(* traffic must use more than one shard.  Under correlated routing the     *)
(* keys of a partition all agree modulo gcd(NumPartitions, NumShards), so *)
(* two enqueues are enough to break it.                                    *)
KeyedTrafficSpreadsAcrossShards ==
    \A p \in Partitions :
        Cardinality(KeysIn(p)) >= 2 => Cardinality(ShardsUsedIn(p)) >= 2

=============================================================================
