---------------------------- MODULE ConcurrentProducers ----------------------------
(***************************************************************************)
(* Concurrent producers numbering the rows of lanes (enqueue_reserve).     *)
(*                                                                         *)
(* A producer's transaction enqueues one batch that may span several      *)
(* lanes.  For each lane, in the transaction's lock order, it takes the   *)
(* lane's enqueue-head lock and reserves the next lane number (Reserve);  *)
(* then it writes its rows (Write, the COPY); then it commits or rolls    *)
(* back.  The design holds every head lock until the commit, so a rollback *)
(* also returns the numbers it reserved, and numbers of a lane are         *)
(* committed in increasing order.  Locks are taken in sorted lane order.  *)
(* A claimer of each lane takes the committed rows after its claim head in *)
(* number order (rows that are not committed yet are invisible to it).    *)
(*                                                                         *)
(* Broken designs (ConcurrentProducersBroken.tla, swapped in by a cfg     *)
(* definition override):                                                   *)
(*   HeadLockHeldToCommit <- EarlyRelease: the reservation is committed on *)
(*     its own and the lock released before the rows commit;               *)
(*   LockOrders <- AnyLockOrder: lanes are locked in batch order, unsorted. *)
(*                                                                         *)
(* Python mirror: verification/mirrors/producers.py (see specs/MAPPING.md). *)
(***************************************************************************)
EXTENDS Integers, FiniteSets, Sequences

CONSTANTS
    NumProducers,   \* concurrent producer transactions at a time
    NumLanes,       \* lanes 1..NumLanes
    Rounds          \* transactions each producer runs

ASSUME /\ NumProducers \in Nat \ {0}
       /\ NumLanes \in Nat \ {0}
       /\ Rounds \in Nat \ {0}

Producers == 1 .. NumProducers
Lanes     == 1 .. NumLanes
MaxSeq    == NumProducers * Rounds

VARIABLES
    pc,         \* [Producers -> {"idle", "locking", "written"}]
    rounds,     \* [Producers -> 0..Rounds]: transactions begun
    order,      \* [Producers -> Seq(Lanes)]: lock order of the open batch
    held,       \* [Producers -> SUBSET Lanes]: head locks held
    resv,       \* [Producers -> [Lanes -> Nat]]: numbers reserved, 0 = none
    laneNext,   \* [Lanes -> Nat]: the lane's next number
    committed,  \* [Lanes -> SUBSET Nat]: numbers of committed rows
    claimed,    \* [Lanes -> SUBSET Nat]: numbers of claimed rows
    claimHead   \* [Lanes -> Nat]: highest number claimed

vars == <<pc, rounds, order, held, resv, laneNext, committed, claimed, claimHead>>

(* The design switch and the lock orders a batch may use.                  *)
HeadLockHeldToCommit == TRUE

Perms(B) == {s \in [1 .. Cardinality(B) -> B] :
                \A i, k \in 1 .. Cardinality(B) : i # k => s[i] # s[k]}
Sorted(B) == CHOOSE s \in Perms(B) : \A i \in 1 .. (Len(s) - 1) : s[i] < s[i + 1]
LockOrders(B) == {Sorted(B)}

NoResv == [l \in Lanes |-> 0]

Init ==
    /\ pc = [p \in Producers |-> "idle"]
    /\ rounds = [p \in Producers |-> 0]
    /\ order = [p \in Producers |-> << >>]
    /\ held = [p \in Producers |-> {}]
    /\ resv = [p \in Producers |-> NoResv]
    /\ laneNext = [l \in Lanes |-> 1]
    /\ committed = [l \in Lanes |-> {}]
    /\ claimed = [l \in Lanes |-> {}]
    /\ claimHead = [l \in Lanes |-> 0]

---------------------------------------------------------------------------
(* Helpers.                                                                *)

BatchOf(p) == {order[p][i] : i \in DOMAIN order[p]}
Reserved(p) == {l \in Lanes : resv[p][l] # 0}
NextLane(p) == order[p][Cardinality(Reserved(p)) + 1]
HeldByOther(p, l) == \E q \in Producers \ {p} : l \in held[q]

(* p waits for a head lock another transaction holds.                      *)
Blocked(p) ==
    /\ pc[p] = "locking"
    /\ Cardinality(Reserved(p)) < Len(order[p])
    /\ HeldByOther(p, NextLane(p))

(* A set of transactions each waiting for a lock held inside the set.     *)
Deadlocked ==
    \E S \in SUBSET Producers :
        /\ S # {}
        /\ \A p \in S : Blocked(p) /\ \E q \in S : NextLane(p) \in held[q]

---------------------------------------------------------------------------
(* Actions.                                                                *)

Begin(p, B) ==
    /\ pc[p] = "idle"
    /\ rounds[p] < Rounds
    /\ B # {}
    /\ \E s \in LockOrders(B) : order' = [order EXCEPT ![p] = s]
    /\ pc' = [pc EXCEPT ![p] = "locking"]
    /\ rounds' = [rounds EXCEPT ![p] = @ + 1]
    /\ UNCHANGED <<held, resv, laneNext, committed, claimed, claimHead>>

(* Take the next lane's head lock and reserve its next number.             *)
Reserve(p) ==
    /\ pc[p] = "locking"
    /\ Cardinality(Reserved(p)) < Len(order[p])
    /\ LET l == NextLane(p) IN
       /\ ~HeldByOther(p, l)
       /\ held' = [held EXCEPT ![p] = @ \cup {l}]
       /\ resv' = [resv EXCEPT ![p][l] = laneNext[l]]
       /\ laneNext' = [laneNext EXCEPT ![l] = @ + 1]
    /\ UNCHANGED <<pc, rounds, order, committed, claimed, claimHead>>

(* Write the rows (COPY).  With EarlyRelease the locks go here.            *)
Write(p) ==
    /\ pc[p] = "locking"
    /\ Cardinality(Reserved(p)) = Len(order[p])
    /\ pc' = [pc EXCEPT ![p] = "written"]
    /\ held' = IF HeadLockHeldToCommit THEN held ELSE [held EXCEPT ![p] = {}]
    /\ UNCHANGED <<rounds, order, resv, laneNext, committed, claimed, claimHead>>

Finish(p) ==
    /\ pc' = [pc EXCEPT ![p] = "idle"]
    /\ held' = [held EXCEPT ![p] = {}]
    /\ resv' = [resv EXCEPT ![p] = NoResv]
    /\ order' = [order EXCEPT ![p] = << >>]

Commit(p) ==
    /\ pc[p] = "written"
    /\ committed' = [l \in Lanes |->
                       IF resv[p][l] # 0 THEN committed[l] \cup {resv[p][l]}
                       ELSE committed[l]]
    /\ Finish(p)
    /\ UNCHANGED <<rounds, laneNext, claimed, claimHead>>

(* Roll back (an error, or the client gives up) before or after writing. *)
(* Holding the lock, the counter update rolls back with the rows; with    *)
(* EarlyRelease the reservation was committed on its own and stays.       *)
Rollback(p) ==
    /\ pc[p] \in {"locking", "written"}
    /\ laneNext' = IF HeadLockHeldToCommit
                       THEN [l \in Lanes |-> IF resv[p][l] # 0 THEN resv[p][l]
                                             ELSE laneNext[l]]
                       ELSE laneNext
    /\ Finish(p)
    /\ UNCHANGED <<rounds, committed, claimed, claimHead>>

(* The claimer of lane l takes the first committed row after its head.    *)
Claim(l) ==
    /\ \E n \in committed[l] : n > claimHead[l]
    /\ LET n == CHOOSE m \in committed[l] :
                    /\ m > claimHead[l]
                    /\ \A k \in committed[l] : k > claimHead[l] => m <= k
       IN /\ claimHead' = [claimHead EXCEPT ![l] = n]
          /\ claimed' = [claimed EXCEPT ![l] = @ \cup {n}]
    /\ UNCHANGED <<pc, rounds, order, held, resv, laneNext, committed>>

Next ==
    \/ \E p \in Producers, B \in SUBSET Lanes : Begin(p, B)
    \/ \E p \in Producers : Reserve(p) \/ Write(p) \/ Commit(p) \/ Rollback(p)
    \/ \E l \in Lanes : Claim(l)

Spec == Init /\ [][Next]_vars

---------------------------------------------------------------------------
(* Invariants.                                                             *)

TypeOK ==
    /\ pc \in [Producers -> {"idle", "locking", "written"}]
    /\ rounds \in [Producers -> 0 .. Rounds]
    /\ \A p \in Producers : BatchOf(p) \subseteq Lanes
    /\ held \in [Producers -> SUBSET Lanes]
    /\ resv \in [Producers -> [Lanes -> 0 .. MaxSeq]]
    /\ laneNext \in [Lanes -> 1 .. (MaxSeq + 1)]
    /\ committed \in [Lanes -> SUBSET (1 .. MaxSeq)]
    /\ claimed \in [Lanes -> SUBSET (1 .. MaxSeq)]
    /\ claimHead \in [Lanes -> 0 .. MaxSeq]

(* No committed job is ever skipped by the claim cursor: every committed  *)
(* row at or below a lane's claim head has been claimed.                   *)
NoCommittedJobSkipped ==
    \A l \in Lanes : \A n \in committed[l] : n <= claimHead[l] => n \in claimed[l]

(* Lane numbers are commit-ordered: a number reserved by an open           *)
(* transaction is above every number already committed in its lane.      *)
LaneNumbersCommitOrdered ==
    \A p \in Producers : \A l \in Reserved(p) :
        \A n \in committed[l] : n < resv[p][l]

(* The lock order is deadlock-free: no set of transactions waits in a     *)
(* cycle for each other's head locks.                                      *)
LockOrderDeadlockFree == ~Deadlocked

=============================================================================
