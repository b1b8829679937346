---------------------------------- MODULE Cron ----------------------------------
(***************************************************************************)
(* Periodic jobs (ADR 0021): several schedulers fire one schedule whose    *)
(* ticks are 1..MaxTick.  A scheduler that believes it leads fires the     *)
(* tick after its cursor (catch-up order) once the tick is due on its own  *)
(* clock, which may run Skew ticks ahead of the real one.  Schedulers      *)
(* crash (at most MaxCrashes times in all) and come back; a crashed        *)
(* holder's lease expires and another scheduler takes the lead.            *)
(*                                                                         *)
(* The correct design fires in ONE transaction keyed by (name, tick): it   *)
(* refuses a tick already recorded, and otherwise enqueues the job and     *)
(* records the tick together.  Leadership only saves work: a stale or a    *)
(* second leader is refused by the record.                                 *)
(*                                                                         *)
(* Switches that describe broken designs:                                  *)
(*   OneTransaction = FALSE -- the job is enqueued in one transaction and  *)
(*                    the tick recorded in the next; a crash in between    *)
(*                    leaves a job with no record, and the tick fires again. *)
(*   TickKeyed = FALSE, LeaseFenced = FALSE -- exactly-once rests on       *)
(*                    leadership (the leader trusts its own cursor), and a *)
(*                    scheduler takes the lead without the lease: two      *)
(*                    leaders fire the same tick.                          *)
(*   LeaseExpires = FALSE -- a crashed leader's lease is never released:   *)
(*                    ticks are lost while another scheduler is alive.     *)
(*                                                                         *)
(* Python mirror: verification/mirrors/cron.py (see specs/MAPPING.md).      *)
(***************************************************************************)
EXTENDS Integers, FiniteSets

CONSTANTS
    NumSchedulers,   \* schedulers 1..NumSchedulers
    MaxTick,         \* ticks 1..MaxTick
    MaxCrashes,      \* crashes in one behaviour, at most
    Skew,            \* a scheduler's clock runs up to Skew ticks ahead
    OneTransaction,  \* TRUE: enqueue and record in one transaction
    TickKeyed,       \* TRUE: the fire transaction refuses a recorded tick
    LeaseFenced,     \* TRUE: leading needs the lease
    LeaseExpires     \* TRUE: a crashed holder's lease is released

ASSUME /\ NumSchedulers \in Nat \ {0}
       /\ MaxTick \in Nat \ {0}
       /\ MaxCrashes \in Nat
       /\ Skew \in Nat
       /\ OneTransaction \in BOOLEAN
       /\ TickKeyed \in BOOLEAN
       /\ LeaseFenced \in BOOLEAN
       /\ LeaseExpires \in BOOLEAN

Schedulers == 1 .. NumSchedulers
Ticks      == 1 .. MaxTick
NoOne      == 0

VARIABLES
    now,       \* the real clock: ticks 1..now are due
    alive,     \* schedulers running
    crashes,   \* crashes so far
    lease,     \* the lease holder in the database, or NoOne
    leader,    \* [Schedulers -> BOOLEAN]: believes it leads
    cursor,    \* [Schedulers -> 0..MaxTick]: the last tick it knows fired
    pending,   \* [Schedulers -> 0..MaxTick]: enqueued, not yet recorded (two transactions)
    jobs,      \* [Ticks -> 0..2]: jobs enqueued per tick (2 = fired twice)
    recorded   \* ticks recorded in the database

vars == <<now, alive, crashes, lease, leader, cursor, pending, jobs, recorded>>

Last == IF recorded = {} THEN 0 ELSE CHOOSE t \in recorded : \A u \in recorded : u <= t

Init ==
    /\ now = 0
    /\ alive = Schedulers
    /\ crashes = 0
    /\ lease = NoOne
    /\ leader = [s \in Schedulers |-> FALSE]
    /\ cursor = [s \in Schedulers |-> 0]
    /\ pending = [s \in Schedulers |-> 0]
    /\ jobs = [t \in Ticks |-> 0]
    /\ recorded = {}

Tick ==
    /\ now < MaxTick
    /\ now' = now + 1
    /\ UNCHANGED <<alive, crashes, lease, leader, cursor, pending, jobs, recorded>>

(* Take the lead: with the lease only when nobody else holds it (a        *)
(* restarted scheduler renews its own); the cursor is read from the        *)
(* database.                                                               *)
Acquire(s) ==
    /\ s \in alive
    /\ ~leader[s]
    /\ LeaseFenced => lease \in {NoOne, s}
    /\ lease' = s
    /\ leader' = [leader EXCEPT ![s] = TRUE]
    /\ cursor' = [cursor EXCEPT ![s] = Last]
    /\ UNCHANGED <<now, alive, crashes, pending, jobs, recorded>>

(* The lease of a crashed holder runs out.                                  *)
Expire ==
    /\ LeaseExpires
    /\ lease # NoOne
    /\ lease \notin alive
    /\ lease' = NoOne
    /\ UNCHANGED <<now, alive, crashes, leader, cursor, pending, jobs, recorded>>

Enqueue(t) == jobs' = [jobs EXCEPT ![t] = @ + 1]

(* The fire transaction for the tick after the cursor, due on s's clock.   *)
Fire(s) ==
    LET t == cursor[s] + 1 IN
    /\ s \in alive
    /\ leader[s]
    /\ pending[s] = 0
    /\ t <= MaxTick
    /\ t <= now + Skew
    /\ IF TickKeyed /\ t \in recorded
         THEN /\ cursor' = [cursor EXCEPT ![s] = Last]   \* refused: catch up on the record
              /\ UNCHANGED <<jobs, recorded, pending>>
         ELSE /\ Enqueue(t)
              /\ IF OneTransaction
                   THEN /\ recorded' = recorded \cup {t}
                        /\ cursor' = [cursor EXCEPT ![s] = t]
                        /\ UNCHANGED pending
                   ELSE /\ pending' = [pending EXCEPT ![s] = t]
                        /\ UNCHANGED <<recorded, cursor>>
    /\ UNCHANGED <<now, alive, crashes, lease, leader>>

(* Two transactions only: the second one records the tick.                 *)
Record(s) ==
    /\ s \in alive
    /\ pending[s] # 0
    /\ recorded' = recorded \cup {pending[s]}
    /\ cursor' = [cursor EXCEPT ![s] = pending[s]]
    /\ pending' = [pending EXCEPT ![s] = 0]
    /\ UNCHANGED <<now, alive, crashes, lease, leader, jobs>>

(* A crash loses the scheduler's memory; an open transaction rolls back,   *)
(* a committed one stays.                                                  *)
Crash(s) ==
    /\ s \in alive
    /\ crashes < MaxCrashes
    /\ alive' = alive \ {s}
    /\ crashes' = crashes + 1
    /\ leader' = [leader EXCEPT ![s] = FALSE]
    /\ cursor' = [cursor EXCEPT ![s] = 0]
    /\ pending' = [pending EXCEPT ![s] = 0]
    /\ UNCHANGED <<now, lease, jobs, recorded>>

Recover(s) ==
    /\ s \notin alive
    /\ alive' = alive \cup {s}
    /\ UNCHANGED <<now, crashes, lease, leader, cursor, pending, jobs, recorded>>

Next ==
    \/ Tick
    \/ \E s \in Schedulers : Acquire(s)
    \/ Expire
    \/ \E s \in Schedulers : Fire(s)
    \/ \E s \in Schedulers : Record(s)
    \/ \E s \in Schedulers : Crash(s)
    \/ \E s \in Schedulers : Recover(s)

(* Time passes, leases of the dead run out, someone alive takes the lead,  *)
(* and a leader's scheduler loop runs.  Crashes and restarts are the       *)
(* environment's.                                                          *)
Spec ==
    /\ Init
    /\ [][Next]_vars
    /\ WF_vars(Tick)
    /\ WF_vars(Expire)
    /\ WF_vars(\E s \in Schedulers : Acquire(s))
    /\ WF_vars(\E s \in Schedulers : Fire(s))
    /\ WF_vars(\E s \in Schedulers : Record(s))

---------------------------------------------------------------------------
(* Invariants and properties.                                              *)

TypeOK ==
    /\ now \in 0 .. MaxTick
    /\ alive \subseteq Schedulers
    /\ crashes \in 0 .. MaxCrashes
    /\ lease \in Schedulers \cup {NoOne}
    /\ leader \in [Schedulers -> BOOLEAN]
    /\ cursor \in [Schedulers -> 0 .. MaxTick]
    /\ pending \in [Schedulers -> 0 .. MaxTick]
    /\ jobs \in [Ticks -> 0 .. 2]
    /\ recorded \subseteq Ticks

(* Exactly-once, the safety half: no tick is enqueued twice.                *)
NoTickFiredTwice == \A t \in Ticks : jobs[t] <= 1

(* The liveness half: a due tick is eventually fired while some scheduler  *)
(* is alive (MaxCrashes < NumSchedulers keeps one alive).                  *)
EveryDueTickFired == \A t \in Ticks : (now >= t) ~> (jobs[t] >= 1)
================================================================================
