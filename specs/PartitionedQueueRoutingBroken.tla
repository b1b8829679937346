---------------------- MODULE PartitionedQueueRoutingBroken ----------------------
(***************************************************************************)
(* Broken routings, swapped into PartitionedQueueRouting by a cfg          *)
(* definition override ("PartitionFor <- PartitionForRotor").  The defect *)
(* is sending keyed jobs through the round-robin rotor meant for unkeyed  *)
(* jobs: the choice then depends on how many jobs came before, not on the *)
(* key alone.                                                              *)
(***************************************************************************)
EXTENDS PartitionedQueueRouting

PartitionForRotor(h) == Len(log) % NumPartitions
ShardForRotor(h)     == Len(log) % NumShards

=============================================================================
