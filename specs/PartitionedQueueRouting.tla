------------------------- MODULE PartitionedQueueRouting -------------------------
(***************************************************************************)
(* Producer-side routing of a partitioned queue (ADR-031 refinement).      *)
(*                                                                         *)
(* A producer holds an ordering key.  The key is abstracted to a base hash *)
(* in 0..HashMax.  The routing contract takes two independent decisions   *)
(* from it:                                                                *)
(*   - the enqueue shard inside a physical queue is the base hash reduced  *)
(*     modulo NumShards (the ADR-025 rule, kept unchanged), and            *)
(*   - the partition (physical queue) is taken from a *different*,         *)
(*     domain-separated hash of the same key.                              *)
(* The contract (ContractPartition, ContractShard) is stated on its own;   *)
(* the routing under test (PartitionFor, ShardFor) is what Enqueue uses,   *)
(* and the invariants compare the rows it writes with the contract.       *)
(*                                                                         *)
(* PartitionScheme selects the routing under test:                         *)
(*   "domain_separated" -- the design;                                     *)
(*   "correlated"       -- the defect ADR-031 removed: the partition is    *)
(*                         the base hash modulo NumPartitions, so both     *)
(*                         levels reduce the same number and keyed traffic *)
(*                         inside a partition collapses onto few shards.   *)
(* PartitionedQueueRoutingBroken.tla holds two more broken routings  *)
(* (keyed jobs sent through the unkeyed rotor), swapped in by the cfg.     *)
(*                                                                         *)
(* Lane sequence numbers are not part of routing: specs/ConcurrentProducers *)
(* models how they are reserved and committed.                             *)
(*                                                                         *)
(* Python mirror: verification/mirrors/routing.py (see specs/MAPPING.md).  *)
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
    log        \* enqueued rows in enqueue order; the index is the job id

vars == <<log>>

Partitions == 0 .. (NumPartitions - 1)
Shards     == 0 .. (NumShards - 1)
Hashes     == 0 .. HashMax
HashSpace  == HashMax + 1

(* Stand-in for the SplitMix64 finaliser applied to (base hash XOR a       *)
(* partition domain constant).  What matters at this level of abstraction *)
(* is that the result mixes the high part of the base hash (h \div        *)
(* NumShards, which the shard rule ignores) into the low digits that the  *)
(* partition modulo keeps.  DomainSalt plays the role of the domain       *)
(* constant.                                                               *)
DomainSalt == 5
MixedHash(h) == (3 * h + h \div NumShards + DomainSalt) % HashSpace

(* The routing contract, stated separately from the code under test.      *)
ContractShard(h)     == h % NumShards
ContractPartition(h) == MixedHash(h) % NumPartitions

(* The routing under test.                                                 *)
ShardFor(h) == h % NumShards

PartitionFor(h) ==
    IF PartitionScheme = "correlated"
        THEN h % NumPartitions
        ELSE MixedHash(h) % NumPartitions

Row == [key: Hashes, partition: Partitions, shard: Shards]

Init == log = << >>

(* A producer enqueues one job with ordering-key hash h.                   *)
Enqueue(h) ==
    /\ Len(log) < JobLimit
    /\ log' = Append(log, [key |-> h, partition |-> PartitionFor(h),
                           shard |-> ShardFor(h)])

Next == \E h \in Hashes : Enqueue(h)

Spec == Init /\ [][Next]_vars

---------------------------------------------------------------------------
(* Helpers over the rows produced so far.                                  *)
JobIds == DOMAIN log

---------------------------------------------------------------------------
(* Invariants.                                                             *)

TypeOK ==
    /\ Len(log) <= JobLimit
    /\ \A i \in JobIds : log[i] \in Row

(* Each row sits exactly where the routing contract sends its key.         *)
RowsFollowRouting ==
    \A i \in JobIds :
        /\ log[i].partition = ContractPartition(log[i].key)
        /\ log[i].shard = ContractShard(log[i].key)

(* Ordering: every job of one key is in one partition and one shard, so   *)
(* one lane keeps the key's jobs in order.                                 *)
SameKeySamePartition ==
    \A i, k \in JobIds :
        log[i].key = log[k].key => log[i].partition = log[k].partition

SameKeySameShard ==
    \A i, k \in JobIds :
        log[i].key = log[k].key => log[i].shard = log[k].shard

(* Constant-level: every partition is reachable by keys of every shard.    *)
(* TLC evaluates it once, at start-up, because it mentions no variable.    *)
PartitionShardCoverage ==
    \A p \in Partitions :
        {ShardFor(h) : h \in {h2 \in Hashes : PartitionFor(h2) = p}} = Shards

(* Behaviour-level spread, true of the design at every hash range with     *)
(* NumPartitions * NumShards <= HashMax + 1 (not only at HashMax =         *)
(* P*S - 1): a partition that has received keyed traffic can receive its  *)
(* next key on any shard, i.e. the partition does not pin the shard.       *)
(* Under correlated routing with gcd(P, S) > 1 the first enqueue already  *)
(* lands in a partition that some shard can never reach.  How evenly keys *)
(* spread is statistical and is measured in Python                         *)
(* (tests/test_routing_distribution.py), not here.                        *)
KeyedTrafficSpreadsAcrossShards ==
    \A i \in JobIds :
        \A s \in Shards :
            \E h \in Hashes : /\ PartitionFor(h) = log[i].partition
                              /\ ShardFor(h) = s

=============================================================================
