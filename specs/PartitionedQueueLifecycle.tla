------------------------ MODULE PartitionedQueueLifecycle ------------------------
(***************************************************************************)
(* Job lifecycle over the lanes of a partitioned queue.                    *)
(*                                                                         *)
(* A lane is one (partition, enqueue shard) pair of a single priority.     *)
(* Each lane hands out increasing lane sequence numbers to the ready rows  *)
(* appended to it and keeps a claim head: the highest lane sequence number *)
(* claimed so far.  Workers claim the row just after the head, run it      *)
(* under a run lease, heartbeat, and finish it.  A guarded call matches    *)
(* (job, run_lease, state = running); a stale attempt matches nothing and  *)
(* the worker drops it.  Leases whose heartbeat went stale are rescued.    *)
(* A failed or rescued attempt goes back to the tail of its own lane with  *)
(* its ordering key unchanged, until MaxAttempts is used up.               *)
(*                                                                         *)
(* Two switches describe broken designs:                                   *)
(*   GuardedFinalize = FALSE -- complete/fail match on (job, running) only, *)
(*                              ignoring the run lease (pre-ADR-013).      *)
(*   CursorClaim     = FALSE -- a claim may take any ready row of a lane,  *)
(*                              not the one just after the claim head.     *)
(* More broken designs live in PartitionedQueueLifecycleBroken.tla and are *)
(* swapped in by a cfg definition override (CanClaim, Requeue,             *)
(* FinalizeMatches).                                                       *)
(*                                                                         *)
(* Python mirror: verification/mirrors/lifecycle.py (see specs/MAPPING.md).          *)
(***************************************************************************)
EXTENDS Integers, FiniteSets

CONSTANTS
    NumJobs,          \* job ids 1..NumJobs are handed out in enqueue order
    NumPartitions,    \* physical queues
    NumShards,        \* enqueue shards per physical queue
    NumKeys,          \* ordering keys 1..NumKeys (0 means "no key")
    NumWorkers,       \* concurrent workers
    MaxAttempts,      \* attempts before a failing job is discarded
    GuardedFinalize,  \* TRUE: finalisation checks the run lease
    CursorClaim       \* TRUE: claims follow the lane claim head

ASSUME /\ NumJobs \in Nat \ {0}
       /\ NumPartitions \in Nat \ {0}
       /\ NumShards \in Nat \ {0}
       /\ NumKeys \in Nat
       /\ NumWorkers \in Nat \ {0}
       /\ MaxAttempts \in Nat \ {0}
       /\ GuardedFinalize \in BOOLEAN
       /\ CursorClaim \in BOOLEAN

Jobs     == 1 .. NumJobs
Workers  == 1 .. NumWorkers
Keys     == 1 .. NumKeys
Lanes    == (0 .. (NumPartitions - 1)) \X (0 .. (NumShards - 1))
NoLane   == <<-1, -1>>
Idle     == <<0, 0>>          \* a worker holding no attempt
Terminal == {"completed", "failed"}
States   == {"unborn", "ready", "running"} \cup Terminal

(* Keyed routing is fixed per key (the routing spec checks how).           *)
KeyLane(k) == << (k - 1) % NumPartitions,
                 ((k - 1) \div NumPartitions) % NumShards >>

VARIABLES
    nextId,     \* id the next enqueue receives
    status,     \* [Jobs -> States]
    key,        \* [Jobs -> 0..NumKeys]; 0 = enqueued without a key
    lane,       \* [Jobs -> Lanes \cup {NoLane}]; fixed at enqueue
    seq,        \* [Jobs -> Nat]: lane sequence number of the latest ready row
    lease,      \* [Jobs -> Nat]: run lease, bumped by every claim
    fresh,      \* [Jobs -> BOOLEAN]: running and heartbeat deadline not passed
    doneLease,  \* [Jobs -> Nat]: run lease written on the terminal row
    ended,      \* [Jobs -> Nat]: highest run lease whose attempt has ended
                \* (history variable: completed, failed or rescued)
    laneNext,   \* [Lanes -> Nat]: next lane sequence number to hand out
    claimHead,  \* [Lanes -> Nat]: highest lane sequence number claimed
    holding     \* [Workers -> (Jobs \X Nat) \cup {Idle}]: attempt in hand

vars == <<nextId, status, key, lane, seq, lease, fresh, doneLease, ended,
          laneNext, claimHead, holding>>

Init ==
    /\ nextId = 1
    /\ status = [j \in Jobs |-> "unborn"]
    /\ key = [j \in Jobs |-> 0]
    /\ lane = [j \in Jobs |-> NoLane]
    /\ seq = [j \in Jobs |-> 0]
    /\ lease = [j \in Jobs |-> 0]
    /\ fresh = [j \in Jobs |-> FALSE]
    /\ doneLease = [j \in Jobs |-> 0]
    /\ ended = [j \in Jobs |-> 0]
    /\ laneNext = [l \in Lanes |-> 1]
    /\ claimHead = [l \in Lanes |-> 0]
    /\ holding = [w \in Workers |-> Idle]

---------------------------------------------------------------------------
(* Helpers.                                                                *)

(* The run-lease guard: (j, r) names the attempt that is running now.      *)
Current(j, r) == status[j] = "running" /\ lease[j] = r

(* What a finalising UPDATE matches on.                                    *)
FinalizeMatches(j, r) ==
    IF GuardedFinalize THEN Current(j, r) ELSE status[j] = "running"

(* Put job j back at the tail of its own lane (retry or rescue).           *)
Requeue(j) ==
    /\ status' = [status EXCEPT ![j] = "ready"]
    /\ seq' = [seq EXCEPT ![j] = laneNext[lane[j]]]
    /\ laneNext' = [laneNext EXCEPT ![lane[j]] = @ + 1]
    /\ UNCHANGED lane

(* Which ready row a claim may take: with the cursor, only the row right  *)
(* after the claim head of its lane.                                       *)
CanClaim(j) ==
    /\ status[j] = "ready"
    /\ CursorClaim => seq[j] = claimHead[lane[j]] + 1

(* The attempt with run lease r of job j has ended.                        *)
EndLease(j, r) == ended' = [ended EXCEPT ![j] = IF r > @ THEN r ELSE @]

(* The attempt of job j that holds run lease r has failed (by its worker  *)
(* or by rescue): retry while attempts remain, else discard.               *)
EndAttemptFailed(j, r) ==
    IF lease[j] < MaxAttempts
        THEN /\ Requeue(j)
             /\ UNCHANGED doneLease
        ELSE /\ status' = [status EXCEPT ![j] = "failed"]
             /\ doneLease' = [doneLease EXCEPT ![j] = r]
             /\ UNCHANGED <<seq, laneNext, lane>>

---------------------------------------------------------------------------
(* Actions.                                                                *)

AppendJob(k, l) ==
    /\ nextId <= NumJobs
    /\ status' = [status EXCEPT ![nextId] = "ready"]
    /\ key' = [key EXCEPT ![nextId] = k]
    /\ lane' = [lane EXCEPT ![nextId] = l]
    /\ seq' = [seq EXCEPT ![nextId] = laneNext[l]]
    /\ laneNext' = [laneNext EXCEPT ![l] = @ + 1]
    /\ nextId' = nextId + 1
    /\ UNCHANGED <<lease, fresh, doneLease, ended, claimHead, holding>>

(* Keyed enqueue: the key alone decides the lane.                          *)
EnqueueKeyed(k) ==
    /\ k \in Keys
    /\ AppendJob(k, KeyLane(k))

(* Unkeyed enqueue: the shard rotor may pick any lane.                     *)
EnqueueUnkeyed(l) ==
    /\ l \in Lanes
    /\ AppendJob(0, l)

(* Worker w claims ready job j (see CanClaim).                            *)
Claim(w, j) ==
    /\ holding[w] = Idle
    /\ CanClaim(j)
    /\ status' = [status EXCEPT ![j] = "running"]
    /\ lease' = [lease EXCEPT ![j] = @ + 1]
    /\ fresh' = [fresh EXCEPT ![j] = TRUE]
    /\ holding' = [holding EXCEPT ![w] = <<j, lease[j] + 1>>]
    /\ claimHead' = [claimHead EXCEPT ![lane[j]] =
                        IF seq[j] > @ THEN seq[j] ELSE @]
    /\ UNCHANGED <<nextId, key, lane, seq, doneLease, ended, laneNext>>

(* Heartbeat of the current attempt pushes its deadline out again.         *)
Heartbeat(w) ==
    /\ holding[w] # Idle
    /\ Current(holding[w][1], holding[w][2])
    /\ ~fresh[holding[w][1]]
    /\ fresh' = [fresh EXCEPT ![holding[w][1]] = TRUE]
    /\ UNCHANGED <<nextId, status, key, lane, seq, lease, doneLease, ended,
                   laneNext, claimHead, holding>>

Complete(w) ==
    /\ holding[w] # Idle
    /\ LET j == holding[w][1]
           r == holding[w][2]
       IN /\ FinalizeMatches(j, r)
          /\ status' = [status EXCEPT ![j] = "completed"]
          /\ doneLease' = [doneLease EXCEPT ![j] = r]
          /\ EndLease(j, r)
          /\ fresh' = [fresh EXCEPT ![j] = FALSE]
          /\ holding' = [holding EXCEPT ![w] = Idle]
          /\ UNCHANGED <<nextId, key, lane, seq, lease, laneNext, claimHead>>

Fail(w) ==
    /\ holding[w] # Idle
    /\ LET j == holding[w][1]
           r == holding[w][2]
       IN /\ FinalizeMatches(j, r)
          /\ EndAttemptFailed(j, r)
          /\ EndLease(j, r)
          /\ fresh' = [fresh EXCEPT ![j] = FALSE]
          /\ holding' = [holding EXCEPT ![w] = Idle]
          /\ UNCHANGED <<nextId, key, lease, claimHead>>

(* A guarded call of a stale attempt matched zero rows: drop the attempt.  *)
DropStale(w) ==
    /\ holding[w] # Idle
    /\ ~FinalizeMatches(holding[w][1], holding[w][2])
    /\ holding' = [holding EXCEPT ![w] = Idle]
    /\ UNCHANGED <<nextId, status, key, lane, seq, lease, fresh, doneLease,
                   ended, laneNext, claimHead>>

(* The worker process dies and forgets its attempt; the database row stays *)
(* running until rescue finds its stale heartbeat.                         *)
Crash(w) ==
    /\ holding[w] # Idle
    /\ holding' = [holding EXCEPT ![w] = Idle]
    /\ UNCHANGED <<nextId, status, key, lane, seq, lease, fresh, doneLease,
                   ended, laneNext, claimHead>>

(* Time passes: the heartbeat deadline of running job j expires.           *)
Expire(j) ==
    /\ status[j] = "running"
    /\ fresh[j]
    /\ fresh' = [fresh EXCEPT ![j] = FALSE]
    /\ UNCHANGED <<nextId, status, key, lane, seq, lease, doneLease, ended,
                   laneNext, claimHead, holding>>

(* Maintenance rescues a running job whose deadline has passed; the       *)
(* attempt counts as failed.  The lease is left alone: the next claim bumps *)
(* it, which is what turns the old holder into a stale attempt.            *)
Rescue(j) ==
    /\ status[j] = "running"
    /\ ~fresh[j]
    /\ EndAttemptFailed(j, lease[j])
    /\ EndLease(j, lease[j])
    /\ UNCHANGED <<nextId, key, lease, fresh, claimHead, holding>>

Next ==
    \/ \E k \in Keys : EnqueueKeyed(k)
    \/ \E l \in Lanes : EnqueueUnkeyed(l)
    \/ \E w \in Workers, j \in Jobs : Claim(w, j)
    \/ \E w \in Workers :
          Heartbeat(w) \/ Complete(w) \/ Fail(w) \/ DropStale(w) \/ Crash(w)
    \/ \E j \in Jobs : Expire(j) \/ Rescue(j)

(* Fairness: idle workers keep claiming, workers holding an attempt        *)
(* eventually finish or drop it, and time keeps passing for running jobs.  *)
ClaimSomething  == \E w \in Workers, j \in Jobs : Claim(w, j)
FinishSomething == \E w \in Workers : Complete(w) \/ DropStale(w)
TimeoutSomething == \E j \in Jobs : Expire(j) \/ Rescue(j)

Fairness ==
    /\ WF_vars(ClaimSomething)
    /\ WF_vars(FinishSomething)
    /\ WF_vars(TimeoutSomething)

Spec == Init /\ [][Next]_vars /\ Fairness

(* Broken on purpose: nothing forces expiry or rescue, so a job whose      *)
(* worker crashed may stay running for ever.                               *)
SpecWithoutRescueFairness ==
    Init /\ [][Next]_vars /\ WF_vars(ClaimSomething) /\ WF_vars(FinishSomething)

---------------------------------------------------------------------------
(* Invariants.                                                             *)

TypeOK ==
    /\ nextId \in 1 .. (NumJobs + 1)
    /\ status \in [Jobs -> States]
    /\ key \in [Jobs -> 0 .. NumKeys]
    /\ lane \in [Jobs -> Lanes \cup {NoLane}]
    /\ seq \in [Jobs -> Nat]
    /\ lease \in [Jobs -> 0 .. MaxAttempts]
    /\ fresh \in [Jobs -> BOOLEAN]
    /\ doneLease \in [Jobs -> 0 .. MaxAttempts]
    /\ ended \in [Jobs -> 0 .. MaxAttempts]
    /\ laneNext \in [Lanes -> Nat \ {0}]
    /\ claimHead \in [Lanes -> Nat]
    /\ holding \in [Workers -> (Jobs \X (1 .. MaxAttempts)) \cup {Idle}]

(* Every enqueued job is in exactly one place: a ready row that the claim *)
(* head can still reach, a running attempt, or a terminal row; ids are     *)
(* handed out without gaps; every unclaimed lane slot holds a ready job.   *)
NoJobLost ==
    /\ \A j \in Jobs : (j < nextId) <=> (status[j] # "unborn")
    /\ \A j \in Jobs : status[j] # "unborn" => lane[j] \in Lanes
    /\ \A l \in Lanes :
          \A n \in (claimHead[l] + 1) .. (laneNext[l] - 1) :
              \E j \in Jobs : /\ status[j] = "ready"
                              /\ lane[j] = l
                              /\ seq[j] = n
    /\ \A j, i \in Jobs :
          (i # j /\ status[i] = "ready" /\ status[j] = "ready"
                 /\ lane[i] = lane[j]) => seq[i] # seq[j]

(* A job has at most one live attempt: every run lease but the newest has *)
(* ended (by complete, fail or rescue) before the next claim handed out a  *)
(* new one.  A claim of a row that is still running leaves two attempts of *)
(* one job live at once (two workers run it): lease = ended + 2.           *)
NoTwoLiveLeases ==
    \A j \in Jobs : lease[j] <= ended[j] + 1

(* A terminal row is always written by the job's latest attempt.           *)
StaleAttemptNeverFinalizes ==
    \A j \in Jobs : status[j] \in Terminal => doneLease[j] = lease[j]

(* Claims of a lane happen in lane order: no ready row is left behind the *)
(* claim head.                                                              *)
ClaimOrderFifo ==
    \A j \in Jobs :
        status[j] = "ready" => seq[j] > claimHead[lane[j]]

(* Retries go back to the job's own lane, with the key it was born with:   *)
(* a retry or rescue never re-routes a keyed job (Requeue keeps the lane). *)
KeyedJobsStayInKeyLane ==
    \A j \in Jobs :
        (status[j] # "unborn" /\ key[j] # 0) => lane[j] = KeyLane(key[j])

---------------------------------------------------------------------------
(* Properties.                                                             *)

(* Terminal rows are final: neither state nor recorded lease changes.      *)
TerminalIsFinal ==
    [][\A j \in Jobs :
          status[j] \in Terminal =>
              /\ status'[j] = status[j]
              /\ doneLease'[j] = doneLease[j]]_vars

(* Under the fairness above every enqueued job reaches a terminal state.   *)
EveryJobTerminates ==
    \A j \in Jobs : (status[j] # "unborn") ~> (status[j] \in Terminal)

=============================================================================
