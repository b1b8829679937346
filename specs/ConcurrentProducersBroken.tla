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

=============================================================================
