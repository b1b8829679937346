----------------------------- MODULE ClaimGroupsBroken -----------------------------
(***************************************************************************)
(* Broken claim batchers, swapped into ClaimGroups by cfg definition      *)
(* overrides ("Cleared <- ClearedReady").                                  *)
(***************************************************************************)
EXTENDS ClaimGroups

(* From idle only one ready group is sent, but the dispatch empties the   *)
(* waiting list of every ready group: the requests of the groups left for *)
(* later are dropped.  Kills NoRequestLost.                                *)
ClearedReady(fl) == Ready(fl)

(* Queues are dealt without the wrap (len(seen) + offset, no % groups): a *)
(* queue gets a group number past the last group, and its request goes to *)
(* a list that the batcher's dict makes for it and no dispatch visits.    *)
(* Two overrides, one defect: "GroupOf <- GroupOfUnwrapped" and           *)
(* "Ask <- AskNewList" (Ask adds the list, as the dict's setdefault does). *)
(* Kills TypeOK (a waiting list outside the groups).                       *)
GroupOfUnwrapped(q) == q

AskNewList(q) ==
    LET g    == GroupOf(q)
        list == IF g \in DOMAIN waiting THEN waiting[g] ELSE {}
    IN /\ nextReq <= NumRequests
       /\ queueOf' = [queueOf EXCEPT ![nextReq] = q]
       /\ waiting' = [h \in DOMAIN waiting \cup {g} |->
                        IF h = g THEN list \cup {nextReq} ELSE waiting[h]]
       /\ nextReq' = nextReq + 1
       /\ dispatchPending' = TRUE
       /\ UNCHANGED <<flight, answered, gone, lastStarted>>

=============================================================================
