------------------------- MODULE ConcurrentProducersBroken -------------------------
(***************************************************************************)
(* Broken producer designs, swapped into ConcurrentProducers by a cfg     *)
(* definition override.                                                    *)
(***************************************************************************)
EXTENDS ConcurrentProducers

(* The head lock is released (the reservation committed on its own) before *)
(* the rows commit: a later transaction's rows can commit first, the      *)
(* claimer moves past, and the late commit is stranded below the head.    *)
EarlyRelease == FALSE

(* Lanes are locked in the order the batch lists them, not sorted: two    *)
(* batches over the same lanes in opposite orders deadlock.                *)
AnyLockOrder(B) == Perms(B)

(* The row takes the lane number the head bump returns, which is the     *)
(* head after the bump (next_seq), not the number reserved (next_seq - 1): *)
(* each row is numbered one past what its lane handed out, and the lane's *)
(* last reservation gets a number past MaxSeq.  Kills TypeOK.              *)
ReserveAfterBump(p) ==
    /\ pc[p] = "locking"
    /\ Cardinality(Reserved(p)) < Len(order[p])
    /\ LET l == NextLane(p) IN
       /\ ~HeldByOther(p, l)
       /\ held' = [held EXCEPT ![p] = @ \cup {l}]
       /\ resv' = [resv EXCEPT ![p][l] = laneNext[l] + 1]
       /\ laneNext' = [laneNext EXCEPT ![l] = @ + 1]
    /\ UNCHANGED <<pc, rounds, order, committed, claimed, claimHead>>

=============================================================================
