--------------------- MODULE PartitionedQueueRepartitionBroken ---------------------
(***************************************************************************)
(* Broken repartitioning designs, swapped into PartitionedQueueRepartition *)
(* by a cfg definition override.                                           *)
(***************************************************************************)
EXTENDS PartitionedQueueRepartition

(* The naive switch: the new width applies at once, no lane is fenced; a  *)
(* moved key's new job is handed out while its old one still waits.       *)
NoFences == FALSE

(* The fence lifts one step early, when a source has handed out all but   *)
(* its last pre-change job.                                                *)
OneEarly == 1

(* The change does not wait for producers holding the key shared: a      *)
(* producer routes with the width it read before the change commits.     *)
NotExcluded == FALSE

(* The brief's lift rule: only the sources' marks, not their own earlier  *)
(* fences; a key that moved twice overtakes its oldest job.               *)
NoChain == FALSE

(* Sources also wait for fences of the same change: two destination lanes *)
(* that are each other's source wait for each other for ever.             *)
SameOrEarlier(f, e) == f <= e

(* Workers stop serving a partition as soon as it is above the width.     *)
CurrentWidthOnly(l) == l < Widths[epoch]

(* Rescue puts the job back at the seq it had: the cursor has passed it.  *)
KeepSeq == FALSE

(* The change records each lane's next seq as its mark instead of the     *)
(* last seq taken (next_seq where next_seq - 1 is meant): the mark points *)
(* one past the lane's tail, and a lane that has taken every seq it ever  *)
(* can gets a mark past MaxSeq.  Kills TypeOK; the destination lane could *)
(* also hand out its first post-change job before the fence lifts, and a  *)
(* fence could wait for a seq no producer takes.                          *)
ChangeMarksNextSeq ==
    /\ epoch < Len(Widths)
    /\ ExcludesProducers => pc = "idle"
    /\ LET e == epoch + 1 IN
       /\ epoch' = e
       /\ mark' = [mark EXCEPT ![e] = [l \in Lanes |-> nextSeq[l]]]
       /\ fence' = [fence EXCEPT ![e] =
                      [l \in Lanes |-> IF UseFences /\ Sources(e, l) # {}
                                       THEN "up" ELSE "none"]]
    /\ UNCHANGED <<pc, readEpoch, nextSeq, claimSeq, enqueued, status, key, lane,
                   seq, crashes, outs>>

=============================================================================
