----------------------------- MODULE ClaimGroupsBroken -----------------------------
(***************************************************************************)
(* A broken claim batcher, swapped into ClaimGroups by a cfg definition   *)
(* override ("Cleared <- ClearedReady").                                   *)
(***************************************************************************)
EXTENDS ClaimGroups

(* From idle only one ready group is sent, but the dispatch empties the   *)
(* waiting list of every ready group: the requests of the groups left for *)
(* later are dropped.  Kills NoRequestLost.                                *)
ClearedReady(fl) == Ready(fl)

=============================================================================
