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
(* Parking (ADR 0025): the available jobs sit in lane order (lane; a      *)
(* rescued job goes to the tail).  A claim that finds no room parks the    *)
(* job it checked; the first parked job is the key's head, and a claim     *)
(* re-reads the head, or else the first job not parked.  A job of a key    *)
(* with a head is parked behind it, never taken past it.                   *)
(*                                                                         *)
(* Five switches describe broken designs:                                  *)
(*   Serialised     = FALSE -- Check takes no per-key lock: two claimers   *)
(*                    both see 0 in flight and both take the key.          *)
(*   RescueKeepsKey = FALSE -- a rescued job comes back without its key    *)
(*                    and later runs without a grant.                      *)
(*   LowerDrains    = FALSE -- a lower limit applies at once, while more   *)
(*                    jobs than it still run.                              *)
(*   ParkBehind     = FALSE -- a job of a key with parked jobs is taken    *)
(*                    when there is room, past the parked ones.            *)
(*   HeadKept       = FALSE -- parking a key's first job marks no head: no *)
(*                    claim reads it again (a lost wakeup).                *)
(*                                                                         *)
(* Python mirror: verification/mirrors/key_concurrency.py.                 *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets, Sequences

CONSTANTS
    NumJobs,         \* jobs 1..NumJobs, all of key k
    NumClaimers,     \* claimers 1..NumClaimers
    InitLimit,       \* max_in_flight at the start
    MaxLimit,        \* SetLimit chooses a value in 1..MaxLimit
    Serialised,
    RescueKeepsKey,
    LowerDrains,
    ParkBehind,
    HeadKept

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
    lock,     \* the claimer holding the per-key lock, or NoOne
    lane,     \* the available jobs in lane order (a sequence)
    parked,   \* the keyed jobs a claim left for want of room
    head,     \* the key's parked head, or NoJob
    overtaken \* a keyed job started while an earlier one of the key waited

vars == <<state, leased, keyed, grants, limit, pending, pc, pick, seen, lock, lane, parked, head, overtaken>>
pvars == <<lane, parked, head, overtaken>>

Admits == IF pending # 0 /\ pending < limit THEN pending ELSE limit
AllIdle == \A c \in Claimers : pc[c] = "idle"

Pos(j) == CHOOSE i \in 1..Len(lane) : lane[i] = j
\* The job of S earliest in the lane (S a non-empty set of lane jobs).
FirstOf(S) == lane[CHOOSE i \in 1..Len(lane) : lane[i] \in S /\ \A h \in 1..(i - 1) : lane[h] \notin S]
Waiting == {lane[i] : i \in 1..Len(lane)}
Unpicked == {j \in Waiting : \A d \in Claimers : pick[d] # j}
Fresh == {j \in Unpicked : keyed[j] /\ j \notin parked}
\* What a claim may check: unkeyed jobs, the head, the first job not parked.
Candidates ==
    {j \in Unpicked : ~keyed[j]}
    \cup ({head} \cap Unpicked)
    \cup (IF Fresh = {} THEN {} ELSE {FirstOf(Fresh)})
Without(s, j) == SelectSeq(s, LAMBDA x : x # j)

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
    /\ lane = [i \in 1..NumJobs |-> i]
    /\ parked = {}
    /\ head = NoJob
    /\ overtaken = FALSE

Check(c, j) ==
    /\ pc[c] = "idle"
    /\ j \in Candidates
    /\ IF keyed[j] /\ Serialised
         THEN lock = NoOne /\ lock' = c
         ELSE UNCHANGED lock
    /\ seen' = [seen EXCEPT ![c] = Cardinality(grants)]
    /\ pc' = [pc EXCEPT ![c] = "checked"]
    /\ pick' = [pick EXCEPT ![c] = j]
    /\ UNCHANGED <<state, leased, keyed, grants, limit, pending, pvars>>

\* Take admits j when it has no key, or its key has room and j is the head
\* or the key has none; else j is parked (and becomes the head of none).
Take(c) ==
    LET j == pick[c]
        rest == parked \ {j} IN
    /\ pc[c] = "checked"
    /\ IF ~keyed[j] \/ (seen[c] < Admits /\ (head \in {NoJob, j} \/ ~ParkBehind))
         THEN /\ state' = [state EXCEPT ![j] = "running"]
              /\ leased' = [leased EXCEPT ![j] = TRUE]
              /\ grants' = IF keyed[j] THEN grants \cup {j} ELSE grants
              /\ lane' = Without(lane, j)
              /\ parked' = rest
              /\ head' = IF head # j THEN head ELSE IF rest = {} THEN NoJob ELSE FirstOf(rest)
              /\ overtaken' = (overtaken \/
                    (keyed[j] /\ \E i \in Unpicked : keyed[i] /\ i # j /\ Pos(i) < Pos(j)))
         ELSE /\ parked' = parked \cup {j}
              /\ head' = IF head = NoJob /\ HeadKept THEN j ELSE head
              /\ UNCHANGED <<state, leased, grants, lane, overtaken>>
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
    /\ UNCHANGED <<keyed, limit, pending, pc, pick, seen, lock, pvars>>

Expire(j) ==
    /\ state[j] = "running" /\ leased[j]
    /\ leased' = [leased EXCEPT ![j] = FALSE]
    /\ UNCHANGED <<state, keyed, grants, limit, pending, pc, pick, seen, lock, pvars>>

Rescue(j) ==
    /\ state[j] = "running" /\ ~leased[j]
    /\ state' = [state EXCEPT ![j] = "avail"]
    /\ grants' = grants \ {j}
    /\ keyed' = IF RescueKeepsKey THEN keyed ELSE [keyed EXCEPT ![j] = FALSE]
    /\ lane' = Append(lane, j)
    /\ UNCHANGED <<leased, limit, pending, pc, pick, seen, lock, parked, head, overtaken>>

SetLimit(n) ==
    /\ AllIdle
    /\ n # limit
    /\ IF n > limit \/ ~LowerDrains
         THEN limit' = n /\ pending' = 0
         ELSE pending' = n /\ UNCHANGED limit
    /\ UNCHANGED <<state, leased, keyed, grants, pc, pick, seen, lock, pvars>>

Settle ==
    /\ AllIdle
    /\ pending # 0
    /\ Cardinality(grants) <= pending
    /\ limit' = pending
    /\ pending' = 0
    /\ UNCHANGED <<state, leased, keyed, grants, pc, pick, seen, lock, pvars>>

Next ==
    \/ \E c \in Claimers, j \in Jobs : Check(c, j)
    \/ \E c \in Claimers : Take(c)
    \/ \E j \in Jobs : Complete(j) \/ Expire(j) \/ Rescue(j)
    \/ \E n \in 1..MaxLimit : SetLimit(n)
    \/ Settle

Spec == Init /\ [][Next]_vars

\* The safety property of ADR 0020.
KeyLimit == Cardinality({j \in Jobs : state[j] = "running" /\ leased[j]}) <= limit

\* Per-key FIFO in the lane: no keyed job started while an earlier job of
\* the key waited unpicked (a history flag set by Take).
KeyLaneFifo == ~overtaken

\* Parking: the head is the key's first parked job, none when none is parked.
ParkedHeadIsFirst == head = IF parked = {} THEN NoJob ELSE FirstOf(parked)
=============================================================================
