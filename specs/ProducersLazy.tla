------------------------------ MODULE ProducersLazy ------------------------------
(***************************************************************************)
(* Single inserts numbered at claim time: the lazy-numbering design        *)
(* (ADR 0028, proposed, NOT implemented).                                  *)
(*                                                                         *)
(* One lane.  A single insert takes no lane lock and no lane number: it    *)
(* writes its job row and a row of the lane's pending set, whose id comes *)
(* from one global sequence (pending_id, nextval() with CACHE 1: not      *)
(* transactional, increasing in time), both in its own                    *)
(* transaction (Insert).  A savepoint rollback removes the last row and   *)
(* its pending row, the id becomes a gap (Undo); the transaction commits  *)
(* or rolls back.  Each producer runs one transaction of up to JobsPerTxn *)
(* rows.                                                                   *)
(*                                                                         *)
(* Numbers are given by whoever takes the lane's enqueue-head lock next;  *)
(* it first *sequences*: it reads the pending rows its snapshot sees      *)
(* (committed ones), numbers them from next_seq in job-id order and        *)
(* deletes them from the pending set, in its own transaction.              *)
(*  - A COPY batch (CopyReserve) locks the enqueue head until its commit,  *)
(*    sequences, then reserves CopyRows numbers for its own rows and       *)
(*    writes them; its numbering, deletes and head bump commit with it     *)
(*    (CopyCommit) or vanish (CopyRollback).  Its rows count as inserted   *)
(*    at the reservation (one enqueue call).                               *)
(*  - A claimer locks the lane's claim head (ClaimBegin), tries the       *)
(*    enqueue head without waiting; if it gets it, it reads the pending   *)
(*    rows there and then numbers them (Sequence).  If a COPY holds the   *)
(*    enqueue head it skips sequencing this round: the COPY sequenced      *)
(*    before it reserved.  Then (Take) it hands out the first committed    *)
(*    numbered row after its cursor claim_seq, exactly as today, commits   *)
(*    and releases both locks.  Claimers never roll back here.             *)
(* All rows of the lane share the lane's order, so per-key FIFO is that   *)
(* order restricted to a key; the properties are stated for every pair of *)
(* rows, which is the per-key statement for any assignment of keys.       *)
(*                                                                         *)
(* Broken designs (ProducersLazyBroken.tla, by cfg override):              *)
(*   CopySequenced <- CopySkipsPending: a COPY reserves without            *)
(*     sequencing the pending set first;                                   *)
(*   Ranks <- AnyRanks: pending rows numbered in any order (no ORDER BY); *)
(*   SeqVisible <- SeqDirty: sequencing takes uncommitted pending rows;    *)
(*   ClaimBegin <- ClaimBeginUnlocked: claimers sequence without the head *)
(*     locks, from a next_seq read with their snapshot;                    *)
(*   FirstNumber <- FirstAfterBump: numbers start at the head the bump    *)
(*     returns (next_seq + k), not at the head before it;                  *)
(*   SeqVisible <- SeqAboveMark: only pending ids above the largest id     *)
(*     numbered so far (an id watermark instead of the pending set).       *)
(* TrackCommitOrder = TRUE keeps the ghost cbefore, for KeysCommitOrdered  *)
(* (ADR 0023's order, which this design does not keep).                   *)
(*                                                                         *)
(* Python mirror: verification/mirrors/producers_lazy.py.                 *)
(***************************************************************************)
EXTENDS Integers, FiniteSets, Sequences

CONSTANTS
    NumProducers,   \* concurrent single-insert producer sessions
    JobsPerTxn,     \* rows a single-insert transaction holds at most at a time
    CopyRows,       \* rows of the one COPY batch, 0 = no COPY producer
    NumClaimers,    \* claimers of the lane
    TrackCommitOrder \* keep the ghost cbefore (only to show commit order is not kept)

ASSUME /\ NumProducers \in Nat \ {0}
       /\ JobsPerTxn \in Nat \ {0}
       /\ CopyRows \in Nat
       /\ NumClaimers \in Nat \ {0}
       /\ TrackCommitOrder \in BOOLEAN

Producers  == 1 .. NumProducers
Claimers   == 1 .. NumClaimers
CopyHolder == NumClaimers + 1     \* the COPY's id as a lock holder
MaxId      == NumProducers * JobsPerTxn + CopyRows
Ids        == 1 .. MaxId
MaxSeq     == MaxId
Seqs       == 1 .. MaxSeq

VARIABLES
    pc,          \* [Producers -> {"idle", "open", "done"}]
    mine,        \* [Producers -> Seq(Ids)]: the open transaction's rows, in insert order
    nextId,      \* the global job-id sequence's next value
    rows,        \* SUBSET Ids: rows written and not rolled back
    committed,   \* SUBSET Ids: rows of committed transactions
    pending,     \* SUBSET Ids: rows in the lane's pending set (committed or not)
    after,       \* ghost [Ids -> SUBSET Ids]: rows that must be handed out first
    cbefore,     \* ghost [Ids -> SUBSET Ids]: rows committed before the row's commit
    seqOf,       \* [Ids -> 0..MaxSeq]: committed lane number of a row, 0 = none
    laneNext,    \* the enqueue head's next_seq (committed value)
    copyPc,      \* "idle", "open" (holds the enqueue head), "done"
    copyRows,    \* SUBSET Ids: the open COPY's rows
    copyNums,    \* [Ids -> 0..MaxSeq]: the open COPY's numbering, not committed yet
    copyNext,    \* the next_seq the open COPY will commit, 0 = none
    cpc,         \* [Claimers -> {"idle", "seq", "take"}]
    seen,        \* [Claimers -> SUBSET Ids]: pending rows read for sequencing
    base,        \* [Claimers -> 0..MaxSeq+1]: next_seq read for sequencing
    claimHolder, \* 0 or the claimer holding the claim-head lock
    enqHolder,   \* 0, a claimer, or CopyHolder: who holds the enqueue-head lock
    claimed,     \* SUBSET Ids: rows handed out
    cursor       \* claim_seq: the number of the last row handed out

vars == <<pc, mine, nextId, rows, committed, pending, after, cbefore, seqOf, laneNext, copyPc,
          copyRows, copyNums, copyNext, cpc, seen, base, claimHolder, enqHolder, claimed,
          cursor>>
prodVars  == <<pc, mine, nextId, rows, committed, after, cbefore>>
copyVars  == <<copyPc, copyRows, copyNums, copyNext>>
claimVars == <<cpc, seen, base, claimHolder, claimed, cursor>>

(* The design: which pending rows a sequencer takes, in which order they  *)
(* are numbered, where the numbers start, what a COPY sequences.           *)
SeqVisible == pending \cap committed
Ranks(S) == {[i \in S |-> Cardinality({k \in S : k < i})]}
FirstNumber(head, k) == head
CopySequenced == SeqVisible

SeqsOf(t) == {t[i] : i \in DOMAIN t}
NoNums == [i \in Ids |-> 0]
Numbered == {i \in Ids : seqOf[i] # 0}

Init ==
    /\ pc = [p \in Producers |-> "idle"]
    /\ mine = [p \in Producers |-> << >>]
    /\ nextId = 1
    /\ rows = {}
    /\ committed = {}
    /\ pending = {}
    /\ after = [i \in Ids |-> {}]
    /\ cbefore = [i \in Ids |-> {}]
    /\ seqOf = NoNums
    /\ laneNext = 1
    /\ copyPc = "idle"
    /\ copyRows = {}
    /\ copyNums = NoNums
    /\ copyNext = 0
    /\ cpc = [c \in Claimers |-> "idle"]
    /\ seen = [c \in Claimers |-> {}]
    /\ base = [c \in Claimers |-> 0]
    /\ claimHolder = 0
    /\ enqHolder = 0
    /\ claimed = {}
    /\ cursor = 0

---------------------------------------------------------------------------
(* Single-insert producers: no lane lock.                                  *)

(* INSERT the job row (id from the global sequence) and its pending row.  *)
(* The ghost after holds the rows committed now and the transaction's own *)
(* earlier rows.  Producers leave the COPY's ids to it.                   *)
Insert(p) ==
    /\ pc[p] \in {"idle", "open"}
    /\ Len(mine[p]) < JobsPerTxn
    /\ nextId + (IF copyPc = "idle" THEN CopyRows ELSE 0) <= MaxId
    /\ pc' = [pc EXCEPT ![p] = "open"]
    /\ mine' = [mine EXCEPT ![p] = Append(@, nextId)]
    /\ nextId' = nextId + 1
    /\ rows' = rows \cup {nextId}
    /\ pending' = pending \cup {nextId}
    /\ after' = [after EXCEPT ![nextId] = committed \cup SeqsOf(mine[p])]
    /\ UNCHANGED <<committed, cbefore, seqOf, laneNext>>
    /\ UNCHANGED copyVars
    /\ UNCHANGED <<claimVars, enqHolder>>

(* ROLLBACK TO SAVEPOINT around the last row: row and pending row go.     *)
Undo(p) ==
    /\ pc[p] = "open"
    /\ Len(mine[p]) > 0
    /\ LET last == mine[p][Len(mine[p])] IN
       /\ rows' = rows \ {last}
       /\ pending' = pending \ {last}
    /\ mine' = [mine EXCEPT ![p] = SubSeq(@, 1, Len(@) - 1)]
    /\ UNCHANGED <<pc, nextId, committed, after, cbefore, seqOf, laneNext>>
    /\ UNCHANGED copyVars
    /\ UNCHANGED <<claimVars, enqHolder>>

Commit(p) ==
    /\ pc[p] = "open"
    /\ pc' = [pc EXCEPT ![p] = "done"]
    /\ committed' = committed \cup SeqsOf(mine[p])
    /\ cbefore' = IF TrackCommitOrder
                     THEN [i \in Ids |-> IF i \in SeqsOf(mine[p]) THEN committed ELSE cbefore[i]]
                     ELSE cbefore
    /\ mine' = [mine EXCEPT ![p] = << >>]
    /\ UNCHANGED <<nextId, rows, pending, after, seqOf, laneNext>>
    /\ UNCHANGED copyVars
    /\ UNCHANGED <<claimVars, enqHolder>>

Rollback(p) ==
    /\ pc[p] = "open"
    /\ pc' = [pc EXCEPT ![p] = "done"]
    /\ rows' = rows \ SeqsOf(mine[p])
    /\ pending' = pending \ SeqsOf(mine[p])
    /\ mine' = [mine EXCEPT ![p] = << >>]
    /\ UNCHANGED <<nextId, committed, after, cbefore, seqOf, laneNext>>
    /\ UNCHANGED copyVars
    /\ UNCHANGED <<claimVars, enqHolder>>

---------------------------------------------------------------------------
(* The COPY producer: enqueue head locked from the reservation to commit. *)

(* Lock the enqueue head, sequence the pending rows it sees, reserve the *)
(* batch's numbers after them and write the batch (ids taken now).       *)
CopyReserve ==
    /\ copyPc = "idle"
    /\ CopyRows > 0
    /\ enqHolder = 0
    /\ LET S == CopySequenced
           k == Cardinality(S)
           first == FirstNumber(laneNext, k + CopyRows)
           batch == nextId .. (nextId + CopyRows - 1)
       IN /\ \E r \in Ranks(S) :
                copyNums' = [i \in Ids |-> IF i \in S THEN first + r[i]
                                           ELSE IF i \in batch THEN first + k + (i - nextId)
                                           ELSE 0]
          /\ copyNext' = laneNext + k + CopyRows
          /\ copyRows' = batch
          /\ rows' = rows \cup batch
          /\ after' = [i \in Ids |-> IF i \in batch THEN committed \cup {b \in batch : b < i}
                                     ELSE after[i]]
          /\ nextId' = nextId + CopyRows
    /\ copyPc' = "open"
    /\ enqHolder' = CopyHolder
    /\ UNCHANGED <<pc, mine, committed, cbefore, pending, seqOf, laneNext>>
    /\ UNCHANGED claimVars

CopyCommit ==
    /\ copyPc = "open"
    /\ committed' = committed \cup copyRows
    /\ cbefore' = IF TrackCommitOrder
                     THEN [i \in Ids |-> IF i \in copyRows THEN committed ELSE cbefore[i]]
                     ELSE cbefore
    /\ seqOf' = [i \in Ids |-> IF copyNums[i] # 0 THEN copyNums[i] ELSE seqOf[i]]
    /\ pending' = pending \ {i \in Ids : copyNums[i] # 0}
    /\ laneNext' = copyNext
    /\ enqHolder' = 0
    /\ copyPc' = "done"
    /\ copyRows' = {}
    /\ copyNums' = NoNums
    /\ copyNext' = 0
    /\ UNCHANGED <<pc, mine, nextId, rows, after>>
    /\ UNCHANGED claimVars

CopyRollback ==
    /\ copyPc = "open"
    /\ rows' = rows \ copyRows
    /\ enqHolder' = 0
    /\ copyPc' = "done"
    /\ copyRows' = {}
    /\ copyNums' = NoNums
    /\ copyNext' = 0
    /\ UNCHANGED <<pc, mine, nextId, committed, pending, after, cbefore, seqOf, laneNext>>
    /\ UNCHANGED claimVars

---------------------------------------------------------------------------
(* Claimers.                                                               *)

(* Lock the claim head (waiting while another claimer holds it), then try *)
(* the enqueue head without waiting: got it, read the pending rows the    *)
(* statement's snapshot sees; held by a COPY, skip sequencing.            *)
ClaimBegin(c) ==
    /\ cpc[c] = "idle"
    /\ claimHolder = 0
    /\ claimHolder' = c
    /\ IF enqHolder = 0
          THEN /\ enqHolder' = c
               /\ cpc' = [cpc EXCEPT ![c] = "seq"]
               /\ seen' = [seen EXCEPT ![c] = SeqVisible]
               /\ base' = [base EXCEPT ![c] = laneNext]
          ELSE /\ cpc' = [cpc EXCEPT ![c] = "take"]
               /\ UNCHANGED <<enqHolder, seen, base>>
    /\ UNCHANGED <<claimed, cursor>>
    /\ UNCHANGED <<prodVars, pending, seqOf, laneNext>>
    /\ UNCHANGED copyVars

(* Number the rows read in id order from the head, delete their pending  *)
(* rows, bump the head; in the claimer's transaction, which commits with *)
(* Take (no other session reads these while the claimer holds the locks). *)
Sequence(c) ==
    /\ cpc[c] = "seq"
    /\ LET S == seen[c]
           k == Cardinality(S)
           first == FirstNumber(base[c], k)
       IN /\ \E r \in Ranks(S) :
                seqOf' = [i \in Ids |-> IF i \in S THEN first + r[i] ELSE seqOf[i]]
          /\ pending' = pending \ S
          /\ laneNext' = base[c] + k
    /\ cpc' = [cpc EXCEPT ![c] = "take"]
    /\ seen' = [seen EXCEPT ![c] = {}]
    /\ base' = [base EXCEPT ![c] = 0]
    /\ UNCHANGED <<claimHolder, enqHolder, claimed, cursor>>
    /\ UNCHANGED prodVars
    /\ UNCHANGED copyVars

(* The claim as today: the first committed numbered row after claim_seq; *)
(* then commit, releasing the locks held.                                 *)
Take(c) ==
    /\ cpc[c] = "take"
    /\ LET v == {i \in committed : seqOf[i] > cursor} IN
       IF v = {} THEN UNCHANGED <<claimed, cursor>>
       ELSE LET i == CHOOSE j \in v : \A k \in v : seqOf[j] <= seqOf[k]
            IN /\ claimed' = claimed \cup {i}
               /\ cursor' = seqOf[i]
    /\ cpc' = [cpc EXCEPT ![c] = "idle"]
    /\ claimHolder' = IF claimHolder = c THEN 0 ELSE claimHolder
    /\ enqHolder' = IF enqHolder = c THEN 0 ELSE enqHolder
    /\ UNCHANGED <<seen, base>>
    /\ UNCHANGED <<prodVars, pending, seqOf, laneNext>>
    /\ UNCHANGED copyVars

Next ==
    \/ \E p \in Producers : Insert(p) \/ Undo(p) \/ Commit(p) \/ Rollback(p)
    \/ CopyReserve \/ CopyCommit \/ CopyRollback
    \/ \E c \in Claimers : ClaimBegin(c) \/ Sequence(c) \/ Take(c)

ClaimersFair == \A c \in Claimers : WF_vars(ClaimBegin(c) \/ Sequence(c) \/ Take(c))
ProducersEnd == \A p \in Producers : WF_vars(Commit(p) \/ Rollback(p))
CopyEnds == WF_vars(CopyCommit \/ CopyRollback)

(* Every transaction ends; claimers keep claiming.                         *)
Spec == Init /\ [][Next]_vars /\ ClaimersFair /\ ProducersEnd /\ CopyEnds

(* A single-insert transaction may stay open for ever.                     *)
SpecLongTransactions == Init /\ [][Next]_vars /\ ClaimersFair /\ CopyEnds

(* The COPY may stay open for ever, holding the enqueue head.              *)
SpecLongCopy == Init /\ [][Next]_vars /\ ClaimersFair /\ ProducersEnd

---------------------------------------------------------------------------
(* Properties.                                                             *)

TypeOK ==
    /\ pc \in [Producers -> {"idle", "open", "done"}]
    /\ \A p \in Producers : SeqsOf(mine[p]) \subseteq Ids /\ Len(mine[p]) <= JobsPerTxn
    /\ nextId \in 1 .. (MaxId + 1)
    /\ rows \subseteq Ids /\ committed \subseteq rows /\ pending \subseteq Ids
    /\ after \in [Ids -> SUBSET Ids] /\ cbefore \in [Ids -> SUBSET Ids]
    /\ seqOf \in [Ids -> 0 .. MaxSeq]
    /\ laneNext \in 1 .. (MaxSeq + 1)
    /\ copyPc \in {"idle", "open", "done"}
    /\ copyRows \subseteq Ids
    /\ copyNums \in [Ids -> 0 .. MaxSeq]
    /\ copyNext \in 0 .. (MaxSeq + 1)
    /\ cpc \in [Claimers -> {"idle", "seq", "take"}]
    /\ seen \in [Claimers -> SUBSET Ids]
    /\ base \in [Claimers -> 0 .. (MaxSeq + 1)]
    /\ claimHolder \in 0 .. NumClaimers
    /\ enqHolder \in 0 .. CopyHolder
    /\ claimed \subseteq Ids
    /\ cursor \in 0 .. MaxSeq

(* Every committed numbered row at or below the cursor has been handed   *)
(* out; no rolled-back row is ever numbered or handed out.                *)
NoCommittedJobSkipped ==
    /\ \A i \in committed : seqOf[i] # 0 /\ seqOf[i] <= cursor => i \in claimed
    /\ Numbered \subseteq rows
    /\ claimed \subseteq committed

(* Row a is handed out before row b when a's transaction committed before *)
(* b was inserted, or a and b are rows of one transaction and a was       *)
(* inserted first (the ghost after of b).                                  *)
PerKeyFifo ==
    \A s \in claimed : \A a \in after[s] : a \in committed => a \in claimed

(* The committed numbers are exactly 1 .. next_seq - 1, one row each, and *)
(* the numbers handed out are exactly 1 .. claim_seq.                     *)
NumbersDense ==
    /\ \A n \in 1 .. (laneNext - 1) : Cardinality({i \in Ids : seqOf[i] = n}) = 1
    /\ \A i \in Numbered : seqOf[i] < laneNext
    /\ {seqOf[i] : i \in claimed} = 1 .. cursor

(* ADR 0023's order, which this design does NOT keep: a row is handed out *)
(* after every row whose transaction committed before the row's own.      *)
KeysCommitOrdered ==
    \A s \in claimed : \A a \in cbefore[s] : a \in claimed

EveryCommittedJobClaimed == \A i \in Ids : (i \in committed) ~> (i \in claimed)

=============================================================================
