--------------------------- MODULE ContinuousLoadBroken ---------------------------
(***************************************************************************)
(* A broken claim loop, swapped into ContinuousLoad by a cfg definition   *)
(* override ("Acquire <- AcquireAllFree").                                 *)
(***************************************************************************)
EXTENDS ContinuousLoad

(* The loop asks for every free slot, want = limit - in_use, without the   *)
(* min(claim_batch_size, ...): one claim takes more slots (and rows) than *)
(* claim_batch_size.  Kills TypeOK (held past Batch).                      *)
AcquireAllFree(c) ==
    LET g == Limit - InUse(c[1]) IN
    /\ held[c] = 0
    /\ g > 0
    /\ held' = [held EXCEPT ![c] = g]
    /\ UNCHANGED <<avail, running, watch>>

=============================================================================
