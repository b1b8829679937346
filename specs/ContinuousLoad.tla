------------------------------ MODULE ContinuousLoad ------------------------------
(***************************************************************************)
(* Worker capacity under continuous load (issue 19, items 4 and 6).        *)
(*                                                                         *)
(* Producers never stop: every partition's lane takes new jobs whenever it *)
(* has room (HotRoom jobs waiting for the hot partition 0, ColdRoom for    *)
(* the others), so the behaviours are infinite while the state space stays *)
(* finite.  One lane per partition (one shard, one priority): a lane is    *)
(* FIFO, so a job is claimed once the claims took every job ahead of it.   *)
(*                                                                         *)
(* Slots (awa/worker/capacity.py HardSlots): per-partition slots           *)
(* (Shared = FALSE) give every partition its own Cap and its own claim     *)
(* loops; shared slots (ADR 0014) give all partitions one Cap and claim    *)
(* loops whose claim is ONE statement across the partitions               *)
(* (claim_jobs_limited: the lanes with work, in random order at equal     *)
(* priority, each lane taking what the statement may still take).  A claim *)
(* loop first takes slots (Acquire: min(claim_batch_size, cap - in use)),  *)
(* then claims at most that many jobs (Claim) and gives the rest back.     *)
(*                                                                         *)
(* Which job a producer adds may be the watched one: watch[p] is the       *)
(* position of the watched job among p's available jobs (0: none).  Since  *)
(* any job may be the watched one, "the watched job is eventually claimed" *)
(* is "every job of every partition is eventually claimed".               *)
(*                                                                         *)
(* Switches that describe broken designs:                                  *)
(*   LaneOrder = "index"    -- the shared claim walks the lanes by queue    *)
(*                             name (ORDER BY queue instead of random()):  *)
(*                             a hot partition 0 starves the others.       *)
(*   LaneOrder = "mostwork" -- lanes with most jobs waiting first: the     *)
(*                             same starvation.                            *)
(*   CapSlack = 1           -- try_acquire grants one slot above the cap.  *)
(*                                                                         *)
(* Python mirror: verification/mirrors/continuous_load.py (specs/MAPPING.md). *)
(***************************************************************************)
EXTENDS Integers, FiniteSets, Sequences

CONSTANTS
    NumPartitions,  \* partitions 0..NumPartitions-1; partition 0 is the hot one
    HotRoom,        \* jobs waiting in the hot partition, at most
    ColdRoom,       \* jobs waiting in any other partition, at most
    Cap,            \* slots: of each partition, or of all of them (Shared)
    Batch,          \* claim_batch_size: slots one claim loop takes at once, at most
    NumClaimers,    \* claim loops per set of slots (claimers)
    Shared,         \* TRUE: shared slots, one claim statement across the partitions
    CapSlack,       \* 0; 1 is the off-by-one cap (broken)
    LaneOrder       \* "random" (the implementation), "index" or "mostwork" (broken)

ASSUME /\ NumPartitions \in Nat \ {0}
       /\ HotRoom \in Nat \ {0}
       /\ ColdRoom \in Nat \ {0}
       /\ Cap \in Nat \ {0}
       /\ Batch \in Nat \ {0}
       /\ NumClaimers \in Nat \ {0}
       /\ Shared \in BOOLEAN
       /\ CapSlack \in {0, 1}
       /\ LaneOrder \in {"random", "index", "mostwork"}

Partitions == 0 .. NumPartitions - 1
Hot        == 0
Room(p)    == IF p = Hot THEN HotRoom ELSE ColdRoom
MaxRoom    == IF HotRoom > ColdRoom THEN HotRoom ELSE ColdRoom
\* A set of slots with its claim loops: the shared entry, or one partition.
Units      == IF Shared THEN {0} ELSE Partitions
LanesOf(u) == IF Shared THEN Partitions ELSE {u}
Claimers   == Units \X (1 .. NumClaimers)
Limit      == Cap + CapSlack
Min(a, b)  == IF a < b THEN a ELSE b

VARIABLES
    avail,    \* [Partitions -> Nat]: jobs available in the partition's lane
    running,  \* [Partitions -> Nat]: handlers executing (each holds a slot)
    held,     \* [Claimers -> 0..Batch]: slots taken by a claim loop for its claim in flight
    watch     \* [Partitions -> Nat]: position of the watched job among avail (0: none)

vars == <<avail, running, held, watch>>

SumP(f) == LET s[i \in 0 .. NumPartitions] == IF i = 0 THEN 0 ELSE s[i - 1] + f[i - 1]
           IN s[NumPartitions]

Running(u) == IF Shared THEN SumP(running) ELSE running[u]
Held(u)    == LET s[k \in 0 .. NumClaimers] == IF k = 0 THEN 0 ELSE s[k - 1] + held[<<u, k>>]
              IN s[NumClaimers]
InUse(u)   == Running(u) + Held(u)

Init ==
    /\ avail = [p \in Partitions |-> 0]
    /\ running = [p \in Partitions |-> 0]
    /\ held = [c \in Claimers |-> 0]
    /\ watch = [p \in Partitions |-> 0]

(* A producer adds a job at the end of p's lane; it may be the watched one. *)
Enqueue(p) ==
    /\ avail[p] < Room(p)
    /\ avail' = [avail EXCEPT ![p] = @ + 1]
    /\ \/ watch' = watch
       \/ /\ watch[p] = 0
          /\ watch' = [watch EXCEPT ![p] = avail[p] + 1]
    /\ UNCHANGED <<running, held>>

(* The claim loop takes slots before it claims: want = min(claim_batch_size, *)
(* limit - in_use), granted = min(want, limit - in_use).                    *)
Acquire(c) ==
    LET g == Min(Batch, Limit - InUse(c[1])) IN
    /\ held[c] = 0
    /\ g > 0
    /\ held' = [held EXCEPT ![c] = g]
    /\ UNCHANGED <<avail, running, watch>>

Waiting(u) == {p \in LanesOf(u) : avail[p] > 0}

Perms(S) == {o \in [1 .. Cardinality(S) -> S] :
                \A i, j \in 1 .. Cardinality(S) : i # j => o[i] # o[j]}

(* The order the claim statement walks the lanes with work in.             *)
Ordered(o) ==
    CASE LaneOrder = "random"   -> TRUE
      [] LaneOrder = "index"    -> \A i \in 1 .. Len(o) - 1 : o[i] < o[i + 1]
      [] LaneOrder = "mostwork" -> \A i \in 1 .. Len(o) - 1 : avail[o[i]] >= avail[o[i + 1]]

LaneOrders(u) == {o \in Perms(Waiting(u)) : Ordered(o)}

(* What a walk in order o takes from each lane with g slots: every lane    *)
(* what the statement may still take, at most its jobs.                    *)
Walk(o, g) ==
    LET t[i \in 0 .. Len(o)] ==
            IF i = 0 THEN [p \in Partitions |-> 0]
            ELSE [t[i - 1] EXCEPT ![o[i]] = Min(avail[o[i]], g - SumP(t[i - 1]))]
    IN t[Len(o)]

(* One claim statement in lane order o; the unused slots go back.          *)
ClaimWith(c, o) ==
    LET taken == Walk(o, held[c]) IN
    /\ held[c] > 0
    /\ avail' = [p \in Partitions |-> avail[p] - taken[p]]
    /\ running' = [p \in Partitions |-> running[p] + taken[p]]
    /\ held' = [held EXCEPT ![c] = 0]
    /\ watch' = [p \in Partitions |-> IF watch[p] <= taken[p] THEN 0 ELSE watch[p] - taken[p]]

Claim(c) == \E o \in LaneOrders(c[1]) : ClaimWith(c, o)

(* A claim whose walk starts with p's lane.                                *)
ClaimFirst(c, p) == \E o \in LaneOrders(c[1]) : Len(o) > 0 /\ o[1] = p /\ ClaimWith(c, o)

(* A handler of p returns: its slot is free.                               *)
Finish(p) ==
    /\ running[p] > 0
    /\ running' = [running EXCEPT ![p] = @ - 1]
    /\ UNCHANGED <<avail, held, watch>>

Next ==
    \/ \E p \in Partitions : Enqueue(p)
    \/ \E c \in Claimers : Acquire(c)
    \/ \E c \in Claimers : Claim(c)
    \/ \E p \in Partitions : Finish(p)

(* Every handler returns (WF per partition), every claim loop takes free   *)
(* slots and every claim statement is answered (WF per claim loop).        *)
(* Producing needs no fairness.                                            *)
LoopFairness ==
    /\ \A p \in Partitions : WF_vars(Finish(p))
    /\ \A c \in Claimers : WF_vars(Acquire(c)) /\ WF_vars(Claim(c))

(* The implementation: random() orders lanes of equal priority afresh in    *)
(* every statement, so each lane with work comes first with probability at  *)
(* least 1/NumPartitions.  Strong fairness per claim loop and lane is that  *)
(* choice without probabilities: a claim that could start with p's lane     *)
(* infinitely often does so infinitely often.  (Weak fairness is not        *)
(* enough: with every slot busy no claim is enabled, so "claim p first" is  *)
(* enabled only now and then.)                                              *)
Spec ==
    /\ Init
    /\ [][Next]_vars
    /\ LoopFairness
    /\ \A c \in Claimers, p \in Partitions : SF_vars(ClaimFirst(c, p))

(* Only the claim loops' fairness: enough for per-partition slots, where a  *)
(* claim has one lane; not for shared slots (a broken model shows it).      *)
SpecWeak ==
    /\ Init
    /\ [][Next]_vars
    /\ LoopFairness

---------------------------------------------------------------------------
(* Invariants and properties.                                              *)

TypeOK ==
    /\ avail \in [Partitions -> 0 .. MaxRoom]
    /\ running \in [Partitions -> 0 .. Limit]
    /\ held \in [Claimers -> 0 .. Batch]
    /\ watch \in [Partitions -> 0 .. MaxRoom]
    /\ \A p \in Partitions : watch[p] <= avail[p]

(* Per-partition slots: no partition runs more handlers than its cap.      *)
PartitionCap == ~Shared => \A p \in Partitions : running[p] <= Cap

(* Shared slots: the partitions together run at most the cap.              *)
SharedCap == Shared => SumP(running) <= Cap

(* Per-partition fairness under continuous load: every job of every        *)
(* partition is eventually claimed.                                        *)
EveryJobClaimed == \A p \in Partitions : (watch[p] > 0) ~> (watch[p] = 0)
================================================================================
