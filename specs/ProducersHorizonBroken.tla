---------------------------- MODULE ProducersHorizonBroken ----------------------------
(***************************************************************************)
(* Broken variants of the horizon design, swapped into ProducersHorizon by *)
(* a cfg definition override.                                              *)
(***************************************************************************)
EXTENDS ProducersHorizon

(* No horizon: every committed row is claimable (the naive sequence).      *)
NoGate(j, h) == TRUE

(* Claim order and cursor by the sequence number alone: numbers and xids  *)
(* of concurrent transactions need not be in the same order.              *)
SeqKey(j) == <<0, j.seq>>

(* The horizon read after the rows, from a later snapshot.                *)
HorizonNow == Horizon

(* The claim walks the numbers the lane sequence has issued (cursor+1 ..  *)
(* last_value) instead of the rows it can see, and counts a number as     *)
(* handed out although its row has not committed.                        *)
SnapIssued == {j.seq : j \in jobs}

=============================================================================
