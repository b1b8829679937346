---------------------------- MODULE ProducersLazyBroken ----------------------------
(***************************************************************************)
(* Broken variants of the lazy-numbering design, swapped into             *)
(* ProducersLazy by a cfg definition override.                             *)
(***************************************************************************)
EXTENDS ProducersLazy

(* The COPY reserves its numbers at the head without sequencing the      *)
(* pending set first: a single insert committed before the batch gets a  *)
(* number after it.                                                       *)
CopySkipsPending == {}

(* Pending rows numbered in whatever order the scan returns them (no     *)
(* ORDER BY job_id): any one-to-one ranking.                              *)
AnyRanks(S) == {r \in [S -> 0 .. (Cardinality(S) - 1)] :
                   \A a, b \in S : a # b => r[a] # r[b]}

(* Sequencing reads the pending set without the visibility rule (its     *)
(* uncommitted rows too, as a dirty read or an id range would).          *)
SeqDirty == pending

(* Claimers sequence without the head locks: no claim-head lock, no       *)
(* enqueue-head lock, next_seq read with the statement's snapshot.        *)
ClaimBeginUnlocked(c) ==
    /\ cpc[c] = "idle"
    /\ cpc' = [cpc EXCEPT ![c] = "seq"]
    /\ seen' = [seen EXCEPT ![c] = SeqVisible]
    /\ base' = [base EXCEPT ![c] = laneNext]
    /\ UNCHANGED <<claimHolder, enqHolder, claimed, cursor>>
    /\ UNCHANGED <<prodVars, pending, seqOf, laneNext>>
    /\ UNCHANGED copyVars

(* Numbers start at the head the bump returns (UPDATE ... SET next_seq =  *)
(* next_seq + k RETURNING next_seq), not at the head before it.            *)
FirstAfterBump(head, k) == head + k

(* Sequencing keeps an id watermark instead of reading the whole pending *)
(* set: only pending ids above the largest id numbered so far.  A smaller *)
(* id that commits late is never numbered.                                *)
SeqAboveMark == {i \in pending \cap committed : \A j \in Numbered : i > j}

=============================================================================
