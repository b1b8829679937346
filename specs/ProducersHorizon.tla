------------------------------ MODULE ProducersHorizon ------------------------------
(***************************************************************************)
(* Producers without a lane lock: the visibility-horizon design (ADR 0027, *)
(* proposed, NOT implemented).                                             *)
(*                                                                         *)
(* One lane.  A producer's transaction begins without a transaction id;   *)
(* it gets one (xid8, pg_current_xact_id()) at its first write, which may *)
(* be before it takes a lane number (AssignXid, any earlier write) or at  *)
(* the insert itself.  Each row takes a number from a non-transactional   *)
(* sequence (NextSeq, nextval(): no lock, never rolled back) and is then  *)
(* written with (xid, seq) (Insert).  A savepoint rollback removes the     *)
(* last row and keeps the xid (Undo); the transaction commits or rolls    *)
(* back.  Several rows per transaction; all rows of the lane share the    *)
(* lane's order, so per-key FIFO is the lane's order restricted to a key. *)
(*                                                                         *)
(* The claimer takes a snapshot (Snap): the committed rows and its horizon *)
(* h = pg_snapshot_xmin(pg_current_snapshot()), the smallest xid still     *)
(* running (or the next xid if none).  Then (Take) it hands out the first  *)
(* row of the snapshot in (xid, seq) order with xid < h after its cursor,  *)
(* and moves the cursor to that row's (xid, seq).  Every transaction still *)
(* running or not yet begun has or will get an xid >= h, so no later       *)
(* commit lands at or below the cursor.                                     *)
(*                                                                         *)
(* Broken designs (ProducersHorizonBroken.tla, by cfg override):           *)
(*   Gate <- NoGate: no horizon, every committed row is claimable;         *)
(*   Key <- SeqKey: claim order (and cursor) by seq alone;                 *)
(*   TakeHorizon <- HorizonNow: the horizon is read after the rows (a      *)
(*     later snapshot than the one the rows come from).                    *)
(* SeqBeforeXid = FALSE forbids taking a number before the xid.           *)
(*                                                                         *)
(* Python mirror: verification/mirrors/producers_horizon.py.              *)
(***************************************************************************)
EXTENDS Integers, FiniteSets, Sequences

CONSTANTS
    NumProducers,   \* concurrent producer sessions
    Rounds,         \* transactions each producer runs
    JobsPerTxn,     \* rows a transaction holds at most at a time
    SeqBeforeXid    \* may a row take its number before the xid is assigned?

ASSUME /\ NumProducers \in Nat \ {0}
       /\ Rounds \in Nat \ {0}
       /\ JobsPerTxn \in Nat \ {0}
       /\ SeqBeforeXid \in BOOLEAN

Producers == 1 .. NumProducers
MaxXid    == NumProducers * Rounds
MaxSeq    == NumProducers * Rounds * JobsPerTxn
Seqs      == 1 .. MaxSeq

VARIABLES
    pc,         \* [Producers -> {"idle", "open"}]
    rounds,     \* [Producers -> 0..Rounds]: transactions begun
    xid,        \* [Producers -> 0..MaxXid]: the open transaction's xid, 0 = none yet
    pend,       \* [Producers -> 0..MaxSeq]: number taken, row not written yet, 0 = none
    mine,       \* [Producers -> Seq(Seqs)]: the open transaction's rows, in insert order
    before,     \* ghost [Producers -> SUBSET Seqs]: rows committed when the xid came
    nextXid,    \* the next xid the server hands out
    nextSeq,    \* the sequence's next value
    jobs,       \* rows written and not rolled back: [seq, xid, after]
    committed,  \* SUBSET Seqs: rows of committed transactions
    claimed,    \* SUBSET Seqs: rows handed out
    cursor,     \* <<xid, seq>> of the last row handed out
    snapH,      \* the claimer's snapshot horizon, 0 = no snapshot held
    snapRows    \* SUBSET Seqs: committed rows in the claimer's snapshot

vars == <<pc, rounds, xid, pend, mine, before, nextXid, nextSeq, jobs, committed,
          claimed, cursor, snapH, snapRows>>

(* The design: claim order, the horizon gate, when the horizon is read.   *)
Key(j) == <<j.xid, j.seq>>
Gate(j, h) == j.xid < h
TakeHorizon == snapH
(* The rows a claim's snapshot sees: the committed ones.                  *)
SnapRows == committed

Before(a, b) == a[1] < b[1] \/ (a[1] = b[1] /\ a[2] < b[2])
Min(S) == CHOOSE m \in S : \A k \in S : m <= k
Job(s) == CHOOSE j \in jobs : j.seq = s
SeqsOf(t) == {t[i] : i \in DOMAIN t}

(* pg_snapshot_xmin: the oldest xid still running, else the next xid.      *)
Horizon == Min(({xid[p] : p \in Producers} \ {0}) \cup {nextXid})

Init ==
    /\ pc = [p \in Producers |-> "idle"]
    /\ rounds = [p \in Producers |-> 0]
    /\ xid = [p \in Producers |-> 0]
    /\ pend = [p \in Producers |-> 0]
    /\ mine = [p \in Producers |-> << >>]
    /\ before = [p \in Producers |-> {}]
    /\ nextXid = 1
    /\ nextSeq = 1
    /\ jobs = {}
    /\ committed = {}
    /\ claimed = {}
    /\ cursor = <<0, 0>>
    /\ snapH = 0
    /\ snapRows = {}

---------------------------------------------------------------------------
(* Producers.                                                              *)

Begin(p) ==
    /\ pc[p] = "idle"
    /\ rounds[p] < Rounds
    /\ pc' = [pc EXCEPT ![p] = "open"]
    /\ rounds' = [rounds EXCEPT ![p] = @ + 1]
    /\ UNCHANGED <<xid, pend, mine, before, nextXid, nextSeq, jobs, committed,
                   claimed, cursor, snapH, snapRows>>

(* The first write of the transaction assigns its xid.                    *)
GetXid(p) ==
    /\ xid' = [xid EXCEPT ![p] = nextXid]
    /\ nextXid' = nextXid + 1
    /\ before' = [before EXCEPT ![p] = committed]

(* A write before the first row (or pg_current_xact_id() evaluated first). *)
AssignXid(p) ==
    /\ pc[p] = "open"
    /\ xid[p] = 0
    /\ GetXid(p)
    /\ UNCHANGED <<pc, rounds, pend, mine, nextSeq, jobs, committed, claimed, cursor,
                   snapH, snapRows>>

(* nextval(): a number for the next row, no lock, not transactional.     *)
NextSeq(p) ==
    /\ pc[p] = "open"
    /\ pend[p] = 0
    /\ Len(mine[p]) < JobsPerTxn
    /\ nextSeq <= MaxSeq
    /\ SeqBeforeXid \/ xid[p] # 0
    /\ pend' = [pend EXCEPT ![p] = nextSeq]
    /\ nextSeq' = nextSeq + 1
    /\ UNCHANGED <<pc, rounds, xid, mine, before, nextXid, jobs, committed, claimed,
                   cursor, snapH, snapRows>>

(* The INSERT of the row (xid, seq); it assigns the xid if none yet.  The *)
(* ghost field after holds the rows that must be handed out first: those  *)
(* committed when the xid came, and the transaction's own earlier rows.   *)
Insert(p) ==
    /\ pc[p] = "open"
    /\ pend[p] # 0
    /\ IF xid[p] = 0 THEN GetXid(p) ELSE UNCHANGED <<xid, nextXid, before>>
    /\ LET x == IF xid[p] = 0 THEN nextXid ELSE xid[p]
           a == (IF xid[p] = 0 THEN committed ELSE before[p]) \cup SeqsOf(mine[p])
       IN jobs' = jobs \cup {[seq |-> pend[p], xid |-> x, after |-> a]}
    /\ mine' = [mine EXCEPT ![p] = Append(@, pend[p])]
    /\ pend' = [pend EXCEPT ![p] = 0]
    /\ UNCHANGED <<pc, rounds, nextSeq, committed, claimed, cursor, snapH, snapRows>>

(* ROLLBACK TO SAVEPOINT around the last row: the row goes, its number is *)
(* a gap, the transaction keeps its xid.                                   *)
Undo(p) ==
    /\ pc[p] = "open"
    /\ Len(mine[p]) > 0
    /\ jobs' = jobs \ {Job(mine[p][Len(mine[p])])}
    /\ mine' = [mine EXCEPT ![p] = SubSeq(@, 1, Len(@) - 1)]
    /\ UNCHANGED <<pc, rounds, xid, pend, before, nextXid, nextSeq, committed, claimed,
                   cursor, snapH, snapRows>>

Finish(p) ==
    /\ pc' = [pc EXCEPT ![p] = "idle"]
    /\ xid' = [xid EXCEPT ![p] = 0]
    /\ pend' = [pend EXCEPT ![p] = 0]
    /\ mine' = [mine EXCEPT ![p] = << >>]
    /\ before' = [before EXCEPT ![p] = {}]

Commit(p) ==
    /\ pc[p] = "open"
    /\ committed' = committed \cup SeqsOf(mine[p])
    /\ Finish(p)
    /\ UNCHANGED <<rounds, nextXid, nextSeq, jobs, claimed, cursor, snapH, snapRows>>

Rollback(p) ==
    /\ pc[p] = "open"
    /\ jobs' = {j \in jobs : j.seq \notin SeqsOf(mine[p])}
    /\ Finish(p)
    /\ UNCHANGED <<rounds, nextXid, nextSeq, committed, claimed, cursor, snapH, snapRows>>

---------------------------------------------------------------------------
(* The claimer.                                                            *)

(* One statement's snapshot: the rows it sees and its xmin.               *)
Snap ==
    /\ snapH = 0
    /\ snapH' = Horizon
    /\ snapRows' = SnapRows
    /\ UNCHANGED <<pc, rounds, xid, pend, mine, before, nextXid, nextSeq, jobs,
                   committed, claimed, cursor>>

Claimable(h) == {s \in snapRows : Gate(Job(s), h) /\ Before(cursor, Key(Job(s)))}

(* Hand out the first claimable row of the snapshot, if any; drop it.     *)
Take ==
    /\ snapH # 0
    /\ LET c == Claimable(TakeHorizon) IN
       IF c = {} THEN UNCHANGED <<claimed, cursor>>
       ELSE LET s == CHOOSE n \in c : \A m \in c : m # n => Before(Key(Job(n)), Key(Job(m)))
            IN /\ claimed' = claimed \cup {s}
               /\ cursor' = Key(Job(s))
    /\ snapH' = 0
    /\ snapRows' = {}
    /\ UNCHANGED <<pc, rounds, xid, pend, mine, before, nextXid, nextSeq, jobs, committed>>

Next ==
    \/ \E p \in Producers :
        \/ Begin(p) \/ AssignXid(p) \/ NextSeq(p) \/ Insert(p) \/ Undo(p)
        \/ Commit(p) \/ Rollback(p)
    \/ Snap
    \/ Take

(* Transactions end; the claimer keeps claiming.                           *)
Spec ==
    /\ Init /\ [][Next]_vars
    /\ WF_vars(Snap \/ Take)
    /\ \A p \in Producers : WF_vars(Commit(p) \/ Rollback(p))

(* A transaction may stay open for ever (a long-running transaction).     *)
SpecLongTransactions == Init /\ [][Next]_vars /\ WF_vars(Snap \/ Take)

---------------------------------------------------------------------------
(* Properties.                                                             *)

TypeOK ==
    /\ pc \in [Producers -> {"idle", "open"}]
    /\ rounds \in [Producers -> 0 .. Rounds]
    /\ xid \in [Producers -> 0 .. MaxXid]
    /\ pend \in [Producers -> 0 .. MaxSeq]
    /\ \A p \in Producers : SeqsOf(mine[p]) \subseteq Seqs /\ Len(mine[p]) <= JobsPerTxn
    /\ before \in [Producers -> SUBSET Seqs]
    /\ nextXid \in 1 .. (MaxXid + 1)
    /\ nextSeq \in 1 .. (MaxSeq + 1)
    /\ jobs \subseteq [seq : Seqs, xid : 1 .. MaxXid, after : SUBSET Seqs]
    /\ committed \subseteq Seqs /\ claimed \subseteq committed
    /\ cursor \in (0 .. MaxXid) \X (0 .. MaxSeq)
    /\ snapH \in 0 .. (MaxXid + 1) /\ snapRows \subseteq committed

(* No committed row at or below the cursor (claim order) is left unclaimed. *)
NoCommittedJobSkipped ==
    \A s \in committed : ~Before(cursor, Key(Job(s))) => s \in claimed

(* The order a user can rely on: row a is handed out before row b when a's *)
(* transaction committed before b's transaction got its xid (its first    *)
(* write), or a and b are rows of one transaction and a was inserted      *)
(* first.  Per key, since a key's rows share a lane.                       *)
PerKeyFifo ==
    \A s \in claimed : \A a \in Job(s).after : a \in committed => a \in claimed

(* The current design's order (ADR 0023), which this design does NOT keep: *)
(* a row still open is after every committed row in claim order.          *)
KeysCommitOrdered ==
    \A j \in jobs : \A c \in committed :
        j.seq \notin committed => Before(Key(Job(c)), Key(j))

EveryCommittedJobClaimed == \A s \in Seqs : (s \in committed) ~> (s \in claimed)

=============================================================================
