------------------------------- MODULE Leadership -------------------------------
(***************************************************************************)
(* Maintenance leadership as a lease row (ADR 0019): several workers       *)
(* compete for one row (holder, expiry); the one that believes it holds    *)
(* the row rescues running jobs whose worker stopped heartbeating and      *)
(* promotes due jobs.  Workers may freeze (SIGSTOP, a stuck event loop)    *)
(* and later resume, or never resume (a crash).                            *)
(*                                                                         *)
(* Time is discrete and kept relative, so the state space stays finite:    *)
(* `left` is the number of ticks until the row's expires_at (0: expired,   *)
(* by the database's clock_timestamp()); `since[w]` is the age of the      *)
(* start of w's last successful acquire (the code's _renewed_at, read with *)
(* the monotonic clock), capped at Lease.  Both clocks run at one rate.    *)
(* One tick is also the election and the rescue interval: what a live     *)
(* worker must do (answer a reply, take an expired lease, run a due        *)
(* maintenance round) happens before time passes again (Tick waits for it).*)
(*                                                                         *)
(* acquire_leader_lease is one statement.  Its start (the worker's         *)
(* `started`) and its execution are one step: the database runs it at the *)
(* earliest moment, the case where the worker's belief ends exactly when   *)
(* the row expires (a later execution only moves the expiry later).  The  *)
(* reply is a separate step, and a worker may freeze before reading it.    *)
(* Maintenance is a check of held() followed by a separate statement:      *)
(* a worker may freeze between the two and run the statement late; the    *)
(* statement itself only touches rows that are stale when it runs.         *)
(*                                                                         *)
(* Switches that describe broken designs:                                  *)
(*   LeaseExpires = FALSE -- session-lock style: a frozen holder's lease   *)
(*                  does not run out (an idle connection stays valid);     *)
(*                  nothing is rescued while it is frozen.                 *)
(*   HolderGuard = FALSE -- the upsert has no WHERE: anyone takes over a   *)
(*                  live lease, and two workers believe they lead.         *)
(*   BeliefFromStart = FALSE -- held() counts from the reply, not from     *)
(*                  the statement's start: a worker frozen before reading  *)
(*                  the reply believes in an expired lease.                *)
(*                                                                         *)
(* Python mirror: verification/mirrors/leadership.py (see specs/MAPPING.md)*)
(***************************************************************************)
EXTENDS Integers, FiniteSets

CONSTANTS
    NumWorkers,       \* workers 1..NumWorkers
    NumJobs,          \* jobs 1..NumJobs
    Lease,            \* leader_lease_ms in ticks
    LeaseExpires,     \* TRUE: the row expires by the database's clock
    HolderGuard,      \* TRUE: take over only an own or an expired row
    BeliefFromStart   \* TRUE: held() counts from the statement's start

ASSUME /\ NumWorkers \in Nat /\ NumWorkers >= 2
       /\ NumJobs \in Nat \ {0}
       /\ Lease \in Nat /\ Lease >= 2
       /\ LeaseExpires \in BOOLEAN
       /\ HolderGuard \in BOOLEAN
       /\ BeliefFromStart \in BOOLEAN

Workers  == 1 .. NumWorkers
Jobs     == 1 .. NumJobs
NoOne    == 0
NoBelief == -1
Ages     == 0 .. Lease
Modes    == {"live", "frozen", "resumed"}
Pcs      == {"idle", "granted", "maint"}
Statuses == {"due", "available", "running", "done"}

VARIABLES
    mode,     \* [Workers -> Modes]: a worker freezes at most once
    since,    \* [Workers -> {NoBelief} \cup Ages]: age of the last successful acquire's start
    pc,       \* [Workers -> Pcs]: "granted" = a granted acquire not yet read; "maint" = checked held(), statement not yet run
    started,  \* [Workers -> Ages]: age of the start of the granted acquire (0 unless pc = "granted")
    holder,   \* the row's holder, or NoOne before the first acquire
    left,     \* ticks until the row expires (0: expired)
    status,   \* [Jobs -> Statuses]: "due" = scheduled/retryable and due, waiting for promotion
    owner,    \* [Jobs -> Workers \cup {NoOne}]: the worker running the job
    waited    \* observer: ticks for which maintenance work has been pending in this term, capped at Lease + 1

vars == <<mode, since, pc, started, holder, left, status, owner, waited>>

Min(a, b) == IF a < b THEN a ELSE b

Live(w)   == mode[w] # "frozen"
Held(w)   == since[w] # NoBelief /\ since[w] < Lease        \* LeaderLease.held()
RenewDue(w) == since[w] = NoBelief \/ since[w] >= 1          \* LeaderLease.renewal_due(), at most once a tick
\* What acquire_leader_lease's ON CONFLICT ... WHERE lets through.
Grants(w) == ~HolderGuard \/ holder \in {NoOne, w} \/ left = 0

\* A running job whose worker is frozen has a stale heartbeat (staleness is
\* abstracted to zero: it only shifts every bound by a constant).
Stale(j)  == status[j] = "running" /\ mode[owner[j]] = "frozen"
Work      == \E j \in Jobs : Stale(j) \/ status[j] = "due"

\* Observer for MaintenanceWithinLease, updated by every non-tick step.
Observe   == waited' = IF \E j \in Jobs : (status'[j] = "running" /\ mode'[owner'[j]] = "frozen")
                                          \/ status'[j] = "due"
                       THEN waited ELSE 0

Init ==
    /\ mode = [w \in Workers |-> "live"]
    /\ since = [w \in Workers |-> NoBelief]
    /\ pc = [w \in Workers |-> "idle"]
    /\ started = [w \in Workers |-> 0]
    /\ holder = NoOne
    /\ left = 0
    /\ status = [j \in Jobs |-> "due"]
    /\ owner = [j \in Jobs |-> NoOne]
    /\ waited = 0

(* What a live worker cannot leave for later: read a reply, run a checked  *)
(* maintenance statement, take a lease the database would grant, run a    *)
(* maintenance round while it leads and work is pending.                   *)
Urgent(w) ==
    /\ Live(w)
    /\ \/ pc[w] # "idle"
       \/ ~Held(w) /\ Grants(w)
       \/ Held(w) /\ Work

Age(a) == IF a = NoBelief THEN NoBelief ELSE Min(a + 1, Lease)

Tick ==
    /\ \A w \in Workers : ~Urgent(w)
    /\ since' = [w \in Workers |-> Age(since[w])]
    /\ started' = [w \in Workers |-> IF pc[w] = "granted" THEN Min(started[w] + 1, Lease) ELSE 0]
    /\ left' = IF ~LeaseExpires /\ holder # NoOne /\ mode[holder] = "frozen"
                 THEN left
                 ELSE IF left > 0 THEN left - 1 ELSE 0
    /\ waited' = IF Work THEN Min(waited + 1, Lease + 1) ELSE 0
    /\ UNCHANGED <<mode, pc, holder, status, owner>>

(* acquire_leader_lease: insert, renew an own row, or take over an expired *)
(* one.  A refused worker forgets its belief at once (_renewed_at = None). *)
Acquire(w) ==
    /\ Live(w)
    /\ pc[w] = "idle"
    /\ RenewDue(w)
    /\ IF Grants(w)
         THEN /\ holder' = w
              /\ left' = Lease
              /\ pc' = [pc EXCEPT ![w] = "granted"]
              /\ started' = [started EXCEPT ![w] = 0]
              /\ waited' = IF holder = w THEN waited ELSE 0   \* a new term
              /\ UNCHANGED since
         ELSE /\ since' = [since EXCEPT ![w] = NoBelief]
              /\ UNCHANGED <<holder, left, pc, started, waited>>
    /\ UNCHANGED <<mode, status, owner>>

(* The worker reads the granted reply: _renewed_at = started.              *)
Reply(w) ==
    /\ Live(w)
    /\ pc[w] = "granted"
    /\ since' = [since EXCEPT ![w] = IF BeliefFromStart THEN started[w] ELSE 0]
    /\ pc' = [pc EXCEPT ![w] = "idle"]
    /\ started' = [started EXCEPT ![w] = 0]
    /\ UNCHANGED <<mode, holder, left, status, owner, waited>>

(* The leader checks held() before a maintenance round.                    *)
StartMaintenance(w) ==
    /\ Live(w)
    /\ pc[w] = "idle"
    /\ Held(w)
    /\ Work
    /\ pc' = [pc EXCEPT ![w] = "maint"]
    /\ UNCHANGED <<mode, since, started, holder, left, status, owner, waited>>

(* The round's statements run, perhaps after the lease has lapsed: rescue  *)
(* hands stale attempts back to retry (due, with their backoff), promotion *)
(* makes the jobs that were due available.  Both decide by the rows as     *)
(* they are when the statements run, not by the leader's belief.           *)
Maintain(w) ==
    /\ Live(w)
    /\ pc[w] = "maint"
    /\ status' = [j \in Jobs |->
                    IF Stale(j) THEN "due"
                    ELSE IF status[j] = "due" THEN "available"
                    ELSE status[j]]
    /\ owner' = [j \in Jobs |-> IF Stale(j) THEN NoOne ELSE owner[j]]
    /\ pc' = [pc EXCEPT ![w] = "idle"]
    /\ UNCHANGED <<mode, since, started, holder, left>>
    /\ Observe

Claim(w, j) ==
    /\ Live(w)
    /\ status[j] = "available"
    /\ status' = [status EXCEPT ![j] = "running"]
    /\ owner' = [owner EXCEPT ![j] = w]
    /\ UNCHANGED <<mode, since, pc, started, holder, left, waited>>

(* Only the worker running the attempt completes it (the run-lease guard   *)
(* of PartitionedQueueLifecycle); a rescued attempt is no longer its own.  *)
Complete(w, j) ==
    /\ Live(w)
    /\ status[j] = "running"
    /\ owner[j] = w
    /\ status' = [status EXCEPT ![j] = "done"]
    /\ owner' = [owner EXCEPT ![j] = NoOne]
    /\ UNCHANGED <<mode, since, pc, started, holder, left>>
    /\ Observe

(* The environment: at most NumWorkers - 1 workers are frozen at once, and *)
(* each worker freezes once; one that never resumes has crashed.           *)
Freeze(w) ==
    /\ mode[w] = "live"
    /\ Cardinality({v \in Workers : mode[v] = "frozen"}) < NumWorkers - 1
    /\ mode' = [mode EXCEPT ![w] = "frozen"]
    /\ UNCHANGED <<since, pc, started, holder, left, status, owner>>
    /\ Observe

Resume(w) ==
    /\ mode[w] = "frozen"
    /\ mode' = [mode EXCEPT ![w] = "resumed"]
    /\ UNCHANGED <<since, pc, started, holder, left, status, owner>>
    /\ Observe

Next ==
    \/ Tick
    \/ \E w \in Workers : Acquire(w)
    \/ \E w \in Workers : Reply(w)
    \/ \E w \in Workers : StartMaintenance(w)
    \/ \E w \in Workers : Maintain(w)
    \/ \E w \in Workers, j \in Jobs : Claim(w, j)
    \/ \E w \in Workers, j \in Jobs : Complete(w, j)
    \/ \E w \in Workers : Freeze(w)
    \/ \E w \in Workers : Resume(w)

(* Time passes, live workers run their loops and handlers.  Freezing and   *)
(* resuming are the environment's: a frozen worker may stay frozen.        *)
Spec ==
    /\ Init
    /\ [][Next]_vars
    /\ WF_vars(Tick)
    /\ WF_vars(\E w \in Workers : Acquire(w))
    /\ WF_vars(\E w \in Workers : Reply(w))
    /\ WF_vars(\E w \in Workers : StartMaintenance(w))
    /\ WF_vars(\E w \in Workers : Maintain(w))
    /\ WF_vars(\E w \in Workers, j \in Jobs : Claim(w, j))
    /\ WF_vars(\E w \in Workers, j \in Jobs : Complete(w, j))

---------------------------------------------------------------------------
(* Invariants and properties.                                              *)

TypeOK ==
    /\ mode \in [Workers -> Modes]
    /\ since \in [Workers -> {NoBelief} \cup Ages]
    /\ pc \in [Workers -> Pcs]
    /\ started \in [Workers -> Ages]
    /\ holder \in Workers \cup {NoOne}
    /\ left \in Ages
    /\ status \in [Jobs -> Statuses]
    /\ owner \in [Jobs -> Workers \cup {NoOne}]
    /\ waited \in 0 .. Lease + 1

(* At any moment at most one worker's held() is true: belief windows of    *)
(* different holders never overlap.  (A maintenance statement is checked   *)
(* inside a window but may run after it: that is not excluded.)            *)
OneBeliever == \A v, w \in Workers : Held(v) /\ Held(w) => v = w

(* Whoever believes it leads holds the row, and the row is live.           *)
BelieverHoldsLiveLease == \A w \in Workers : Held(w) => holder = w /\ left > 0

(* A frozen leader delays rescue and promotion by at most one lease:       *)
(* within one term (between two changes of holder) pending work waits at   *)
(* most Lease ticks.  Each leader that freezes costs at most one lease.    *)
MaintenanceWithinLease == waited <= Lease

(* Every job completes: rescued from frozen or crashed workers, promoted,  *)
(* claimed again by a live one.                                            *)
EveryJobTerminates == \A j \in Jobs : TRUE ~> (status[j] = "done")
================================================================================
