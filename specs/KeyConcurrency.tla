---------------------------- MODULE KeyConcurrency ----------------------------
(***************************************************************************)
(* Per-key concurrency (ADR 0020): at no instant do more than the limit's  *)
(* jobs of one key hold an unexpired lease.                                *)
(*                                                                         *)
(* Every job carries one key k (the user's intent).  Claimers run claims   *)
(* concurrently, each in two steps like the claim transaction: Check       *)
(* (take the per-key lock, count the grants) and Take (insert a grant and  *)
(* mark the job running, or take nothing when the count had no room; then  *)
(* commit, which releases the lock).  Two claimers never pick one job      *)
(* (the lane's claim head), but jobs of one key sit in several lanes and   *)
(* partitions, so two claimers can check the same key at once.  A lease    *)
(* may expire (the zombie still runs, its lease no longer counts); rescue  *)
(* puts an expired job back and releases its grant; completion releases.   *)
(* A limit change and the promotion of a pending limit take the catalog    *)
(* lock, so no claim is between Check and Take meanwhile.                  *)
(*                                                                         *)
(* Three switches describe broken designs:                                 *)
(*   Serialised     = FALSE -- Check takes no per-key lock: two claimers   *)
(*                    both see 0 in flight and both take the key.          *)
(*   RescueKeepsKey = FALSE -- a rescued job comes back without its key    *)
(*                    and later runs without a grant.                      *)
(*   LowerDrains    = FALSE -- a lower limit applies at once, while more   *)
(*                    jobs than it still run.                              *)
(*                                                                         *)
(* Python mirror: verification/mirrors/key_concurrency.py.                 *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    NumJobs,         \* jobs 1..NumJobs, all of key k
    NumClaimers,     \* claimers 1..NumClaimers
    InitLimit,       \* max_in_flight at the start
    MaxLimit,        \* SetLimit chooses a value in 1..MaxLimit
    Serialised,
    RescueKeepsKey,
    LowerDrains

ASSUME InitLimit \in 1..MaxLimit

Jobs == 1..NumJobs
Claimers == 1..NumClaimers
NoJob == 0
NoOne == 0

VARIABLES
    state,    \* [Jobs -> {"avail", "running", "done"}]
    leased,   \* [Jobs -> BOOLEAN]: running with an unexpired lease
    keyed,    \* [Jobs -> BOOLEAN]: the stored job still carries key k
    grants,   \* the jobs holding a grant of key k
    limit,    \* the authoritative max_in_flight
    pending,  \* a lower limit waiting for the key to drain (0: none)
    pc,       \* [Claimers -> {"idle", "checked"}]
    pick,     \* [Claimers -> Jobs \cup {NoJob}]
    seen,     \* [Claimers -> Nat]: grants counted at Check
    lock      \* the claimer holding the per-key lock, or NoOne

vars == <<state, leased, keyed, grants, limit, pending, pc, pick, seen, lock>>

Admits == IF pending # 0 /\ pending < limit THEN pending ELSE limit
AllIdle == \A c \in Claimers : pc[c] = "idle"

Init ==
    /\ state = [j \in Jobs |-> "avail"]
    /\ leased = [j \in Jobs |-> FALSE]
    /\ keyed = [j \in Jobs |-> TRUE]
    /\ grants = {}
    /\ limit = InitLimit
    /\ pending = 0
    /\ pc = [c \in Claimers |-> "idle"]
    /\ pick = [c \in Claimers |-> NoJob]
    /\ seen = [c \in Claimers |-> 0]
    /\ lock = NoOne

Check(c, j) ==
    /\ pc[c] = "idle"
    /\ state[j] = "avail"
    /\ \A d \in Claimers : pick[d] # j
    /\ IF keyed[j] /\ Serialised
         THEN lock = NoOne /\ lock' = c
         ELSE UNCHANGED lock
    /\ seen' = [seen EXCEPT ![c] = Cardinality(grants)]
    /\ pc' = [pc EXCEPT ![c] = "checked"]
    /\ pick' = [pick EXCEPT ![c] = j]
    /\ UNCHANGED <<state, leased, keyed, grants, limit, pending>>

Take(c) ==
    LET j == pick[c] IN
    /\ pc[c] = "checked"
    /\ IF ~keyed[j] \/ seen[c] < Admits
         THEN /\ state' = [state EXCEPT ![j] = "running"]
              /\ leased' = [leased EXCEPT ![j] = TRUE]
              /\ grants' = IF keyed[j] THEN grants \cup {j} ELSE grants
         ELSE UNCHANGED <<state, leased, grants>>
    /\ lock' = IF lock = c THEN NoOne ELSE lock
    /\ pc' = [pc EXCEPT ![c] = "idle"]
    /\ pick' = [pick EXCEPT ![c] = NoJob]
    /\ seen' = [seen EXCEPT ![c] = 0]
    /\ UNCHANGED <<keyed, limit, pending>>

Complete(j) ==
    /\ state[j] = "running" /\ leased[j]
    /\ state' = [state EXCEPT ![j] = "done"]
    /\ leased' = [leased EXCEPT ![j] = FALSE]
    /\ grants' = grants \ {j}
    /\ UNCHANGED <<keyed, limit, pending, pc, pick, seen, lock>>

Expire(j) ==
    /\ state[j] = "running" /\ leased[j]
    /\ leased' = [leased EXCEPT ![j] = FALSE]
    /\ UNCHANGED <<state, keyed, grants, limit, pending, pc, pick, seen, lock>>

Rescue(j) ==
    /\ state[j] = "running" /\ ~leased[j]
    /\ state' = [state EXCEPT ![j] = "avail"]
    /\ grants' = grants \ {j}
    /\ keyed' = IF RescueKeepsKey THEN keyed ELSE [keyed EXCEPT ![j] = FALSE]
    /\ UNCHANGED <<leased, limit, pending, pc, pick, seen, lock>>

SetLimit(n) ==
    /\ AllIdle
    /\ n # limit
    /\ IF n > limit \/ ~LowerDrains
         THEN limit' = n /\ pending' = 0
         ELSE pending' = n /\ UNCHANGED limit
    /\ UNCHANGED <<state, leased, keyed, grants, pc, pick, seen, lock>>

Settle ==
    /\ AllIdle
    /\ pending # 0
    /\ Cardinality(grants) <= pending
    /\ limit' = pending
    /\ pending' = 0
    /\ UNCHANGED <<state, leased, keyed, grants, pc, pick, seen, lock>>

Next ==
    \/ \E c \in Claimers, j \in Jobs : Check(c, j)
    \/ \E c \in Claimers : Take(c)
    \/ \E j \in Jobs : Complete(j) \/ Expire(j) \/ Rescue(j)
    \/ \E n \in 1..MaxLimit : SetLimit(n)
    \/ Settle

Spec == Init /\ [][Next]_vars

\* The safety property of ADR 0020.
KeyLimit == Cardinality({j \in Jobs : state[j] = "running" /\ leased[j]}) <= limit
=============================================================================
