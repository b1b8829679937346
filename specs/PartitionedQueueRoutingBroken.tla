---------------------- MODULE PartitionedQueueRoutingBroken ----------------------
(***************************************************************************)
(* Broken routings, swapped into PartitionedQueueRouting by a cfg          *)
(* definition override ("PartitionFor <- PartitionForRotor").  The defect *)
(* is sending keyed jobs through the round-robin rotor meant for unkeyed  *)
(* jobs: the choice then depends on how many jobs came before, not on the *)
(* key alone.                                                              *)
(***************************************************************************)
EXTENDS PartitionedQueueRouting, Integers

PartitionForRotor(h) == Len(log) % NumPartitions
ShardForRotor(h)     == Len(log) % NumShards

(* The partition reduces the signed bigint form of the 64-bit partition  *)
(* hash (partition_hash64_i64) with SQL mod(), which keeps the dividend's *)
(* sign: a hash with the top bit set gives a negative partition, a queue  *)
(* that does not exist.  Hashes 0..HashMax stand for the unsigned values; *)
(* the upper half of them is negative as a signed number.                 *)
AsSigned(x) == IF 2 * x >= HashSpace THEN x - HashSpace ELSE x
SqlMod(x, n) == IF x >= 0 THEN x % n ELSE -((-x) % n)
PartitionForSigned(h) == SqlMod(AsSigned(MixedHash(h)), NumPartitions)

=============================================================================
