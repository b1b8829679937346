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

=============================================================================
