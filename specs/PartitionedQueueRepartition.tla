------------------------ MODULE PartitionedQueueRepartition ------------------------
(***************************************************************************)
(* Online repartitioning that keeps per-key FIFO (issue 23, ADR 0024).     *)
(*                                                                         *)
(* One logical queue, one priority, one shard: a lane is a partition       *)
(* 0..MaxWidth-1.  A key keeps its shard and a job its priority across    *)
(* changes, and the design's source set takes every priority and shard of *)
(* a source partition: more lanes per partition only add lift conditions  *)
(* on marks and on fences of earlier changes, so they add neither a FIFO  *)
(* hole nor a cycle.  This model is the case where ordering can break.    *)
(* A key is its abstract hash KeyHash[k]; under width W it lives in        *)
(* partition KeyHash[k] % W (standing in for the finalised partition hash  *)
(* modulo the width).  The width runs through Widths[1], Widths[2], ...:   *)
(* epoch e has width Widths[e].                                            *)
(*                                                                         *)
(* Producer: Begin takes the queue's advisory key shared and reads the     *)
(* width; Insert routes one keyed job with that width, takes the lane's    *)
(* next seq, commits and releases the key.  Change holds the key           *)
(* exclusively (so it waits for producers between Begin and Insert) and,  *)
(* in one step, bumps the epoch, records mark[e][l] = nextSeq[l] - 1 for  *)
(* every lane and puts a fence on every lane of the new width that has a  *)
(* source: an old partition p # l with p = l (mod gcd(old, new)).  A lane  *)
(* hands out its next seq only up to its smallest unlifted fence.          *)
(* LiftFence(e, l): every source s has handed out its mark (claimSeq[s] >= *)
(* mark[e][s]) and carries no unlifted fence of an earlier change.  The    *)
(* last clause is not in the brief: without it a key that moved twice     *)
(* (4 -> 2 -> 1, hash 3: lanes 3, 1, 0) passes its fence while its oldest *)
(* job still waits two lanes back (ChainedLift <- NoChain below).          *)
(* Workers: Claim hands out a lane's next seq (any lane, also above the    *)
(* current width: removed partitions are served until drained); the job  *)
(* completes, or its worker crashes and Rescue makes it available again,   *)
(* routed with the current width at the tail of that lane.  The history    *)
(* outs records first hand-outs only; re-hand-outs do not count.          *)
(*                                                                         *)
(* Broken designs (PartitionedQueueRepartitionBroken.tla, swapped in by a *)
(* cfg definition override):                                               *)
(*   UseFences <- NoFences           naive switch, no fences;              *)
(*   LiftSlack <- OneEarly           lift at claimSeq >= mark - 1;         *)
(*   ExcludesProducers <- NotExcluded  Change ignores the shared key: a    *)
(*                                   producer routes with a stale width;   *)
(*   ChainedLift <- NoChain          the brief's lift rule (sources only); *)
(*   EarlierChange <- SameOrEarlier  sources also wait for fences of the   *)
(*                                   same change: a cycle, nothing lifts;  *)
(*   ServedLane <- CurrentWidthOnly  removed partitions are not served;    *)
(*   RescueNewSeq <- KeepSeq         rescue puts a job back at its old seq. *)
(*                                                                         *)
(* Python mirror: verification/mirrors/repartition.py (specs/MAPPING.md).  *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets

CONSTANTS
    Width1, Width2, Width3,  \* the widths, in the order the changes apply
    KeyHash1, KeyHash2,      \* the abstract hashes of keys 1 and 2
    MaxJobs,                 \* jobs enqueued in all
    MaxCrashes               \* worker crashes in all

Widths  == <<Width1, Width2, Width3>>
KeyHash == <<KeyHash1, KeyHash2>>

ASSUME /\ \A e \in 1 .. 3 : Widths[e] \in Nat \ {0}
       /\ \A k \in 1 .. 2 : KeyHash[k] \in Nat
       /\ MaxJobs \in Nat \ {0}
       /\ MaxCrashes \in Nat

Epochs   == 1 .. Len(Widths)
Changes  == 2 .. Len(Widths)
Keys     == 1 .. Len(KeyHash)
Jobs     == 1 .. MaxJobs
MaxWidth == CHOOSE w \in {Widths[e] : e \in Epochs} : \A e \in Epochs : Widths[e] <= w
Lanes    == 0 .. (MaxWidth - 1)
MaxSeq   == MaxJobs + MaxCrashes
NoLimit  == MaxSeq + 1   \* above every seq: a lane without an unlifted fence
NoJob    == 0
Statuses == {"none", "ready", "running", "crashed", "done"}

Max2(a, b) == IF a >= b THEN a ELSE b
GCD(a, b) == CHOOSE d \in 1 .. Max2(a, b) :
                /\ a % d = 0 /\ b % d = 0
                /\ \A c \in 1 .. Max2(a, b) : (a % c = 0 /\ b % c = 0) => c <= d

LaneOf(k, e) == KeyHash[k] % Widths[e]

(* The source partitions of lane l at the change into epoch e.             *)
Sources(e, l) ==
    IF l >= Widths[e] THEN {}
    ELSE {p \in 0 .. (Widths[e - 1] - 1) :
            p # l /\ p % GCD(Widths[e - 1], Widths[e]) = l % GCD(Widths[e - 1], Widths[e])}

VARIABLES
    epoch,      \* the registry's epoch; its width is Widths[epoch]
    pc,         \* the producer: "idle" or "locked" (holds the key shared)
    readEpoch,  \* the epoch the producer read under the key (0: idle)
    nextSeq,    \* [Lanes -> Nat]: the lane's next seq
    claimSeq,   \* [Lanes -> Nat]: the last seq the lane handed out
    enqueued,   \* jobs 1..enqueued exist, numbered in commit order
    status,     \* [Jobs -> Statuses]
    key,        \* [Jobs -> Keys \cup {0}]
    lane,       \* [Jobs -> Lanes]
    seq,        \* [Jobs -> Nat]: the job's seq in its lane (0: none)
    crashes,    \* crashes so far
    mark,       \* [Changes -> [Lanes -> Nat]]: nextSeq - 1 at the change
    fence,      \* [Changes -> [Lanes -> {"none", "up", "lifted"}]]
    outs        \* Seq(Jobs): first hand-outs, in order (history)

vars == <<epoch, pc, readEpoch, nextSeq, claimSeq, enqueued, status, key, lane,
          seq, crashes, mark, fence, outs>>

(* Design switches; the broken module offers replacements.                 *)
UseFences == TRUE
LiftSlack == 0
ExcludesProducers == TRUE
ChainedLift == TRUE
EarlierChange(f, e) == f < e
ServedLane(l) == TRUE
RescueNewSeq == TRUE

Handed == {outs[i] : i \in DOMAIN outs}
Pos(j) == CHOOSE i \in DOMAIN outs : outs[i] = j

(* The lane's limit: its smallest unlifted fence.                          *)
Limit(l) ==
    LET up == {mark[e][l] : e \in {f \in Changes : fence[f][l] = "up"}}
    IN IF up = {} THEN NoLimit
       ELSE CHOOSE m \in up : \A n \in up : m <= n

(* Source s of a fence of change e has handed out everything enqueued     *)
(* before that change.                                                     *)
SourceDone(e, s) ==
    /\ claimSeq[s] >= mark[e][s] - LiftSlack
    /\ ChainedLift => \A f \in Changes : EarlierChange(f, e) => fence[f][s] # "up"

JobAt(l, n) == CHOOSE j \in Jobs : status[j] = "ready" /\ lane[j] = l /\ seq[j] = n

Init ==
    /\ epoch = 1
    /\ pc = "idle"
    /\ readEpoch = 0
    /\ nextSeq = [l \in Lanes |-> 1]
    /\ claimSeq = [l \in Lanes |-> 0]
    /\ enqueued = 0
    /\ status = [j \in Jobs |-> "none"]
    /\ key = [j \in Jobs |-> 0]
    /\ lane = [j \in Jobs |-> 0]
    /\ seq = [j \in Jobs |-> 0]
    /\ crashes = 0
    /\ mark = [e \in Changes |-> [l \in Lanes |-> 0]]
    /\ fence = [e \in Changes |-> [l \in Lanes |-> "none"]]
    /\ outs = << >>

---------------------------------------------------------------------------
(* Actions.                                                                *)

(* The producer takes the advisory key shared and reads the width.         *)
Begin ==
    /\ pc = "idle"
    /\ enqueued < MaxJobs
    /\ pc' = "locked"
    /\ readEpoch' = epoch
    /\ UNCHANGED <<epoch, nextSeq, claimSeq, enqueued, status, key, lane, seq,
                   crashes, mark, fence, outs>>

(* It routes a job of key k with the width it read, takes the lane's next *)
(* seq, commits and releases the key.                                      *)
Insert(k) ==
    /\ pc = "locked"
    /\ LET j == enqueued + 1
           l == LaneOf(k, readEpoch)
       IN /\ enqueued' = j
          /\ status' = [status EXCEPT ![j] = "ready"]
          /\ key' = [key EXCEPT ![j] = k]
          /\ lane' = [lane EXCEPT ![j] = l]
          /\ seq' = [seq EXCEPT ![j] = nextSeq[l]]
          /\ nextSeq' = [nextSeq EXCEPT ![l] = @ + 1]
    /\ pc' = "idle"
    /\ readEpoch' = 0
    /\ UNCHANGED <<epoch, claimSeq, crashes, mark, fence, outs>>

(* The change transaction, under the key held exclusively.                 *)
Change ==
    /\ epoch < Len(Widths)
    /\ ExcludesProducers => pc = "idle"
    /\ LET e == epoch + 1 IN
       /\ epoch' = e
       /\ mark' = [mark EXCEPT ![e] = [l \in Lanes |-> nextSeq[l] - 1]]
       /\ fence' = [fence EXCEPT ![e] =
                      [l \in Lanes |-> IF UseFences /\ Sources(e, l) # {}
                                       THEN "up" ELSE "none"]]
    /\ UNCHANGED <<pc, readEpoch, nextSeq, claimSeq, enqueued, status, key, lane,
                   seq, crashes, outs>>

(* The lift step: the fence of change e on lane l comes down.              *)
LiftFence(e, l) ==
    /\ fence[e][l] = "up"
    /\ \A s \in Sources(e, l) : SourceDone(e, s)
    /\ fence' = [fence EXCEPT ![e][l] = "lifted"]
    /\ UNCHANGED <<epoch, pc, readEpoch, nextSeq, claimSeq, enqueued, status, key,
                   lane, seq, crashes, mark, outs>>

(* A worker claims lane l's next seq, if no fence holds it back.           *)
Claim(l) ==
    /\ ServedLane(l)
    /\ claimSeq[l] + 1 < nextSeq[l]
    /\ claimSeq[l] + 1 <= Limit(l)
    /\ LET j == JobAt(l, claimSeq[l] + 1) IN
       /\ status' = [status EXCEPT ![j] = "running"]
       /\ outs' = IF j \in Handed THEN outs ELSE Append(outs, j)
    /\ claimSeq' = [claimSeq EXCEPT ![l] = @ + 1]
    /\ UNCHANGED <<epoch, pc, readEpoch, nextSeq, enqueued, key, lane, seq,
                   crashes, mark, fence>>

Complete(j) ==
    /\ status[j] = "running"
    /\ status' = [status EXCEPT ![j] = "done"]
    /\ UNCHANGED <<epoch, pc, readEpoch, nextSeq, claimSeq, enqueued, key, lane,
                   seq, crashes, mark, fence, outs>>

(* The worker dies; its attempt is left for rescue.                        *)
Crash(j) ==
    /\ status[j] = "running"
    /\ crashes < MaxCrashes
    /\ status' = [status EXCEPT ![j] = "crashed"]
    /\ crashes' = crashes + 1
    /\ UNCHANGED <<epoch, pc, readEpoch, nextSeq, claimSeq, enqueued, key, lane,
                   seq, mark, fence, outs>>

(* Rescue makes the job available again: routed with the current width,   *)
(* at the tail of that lane (it takes the key shared, like a producer).   *)
Rescue(j) ==
    /\ status[j] = "crashed"
    /\ status' = [status EXCEPT ![j] = "ready"]
    /\ IF RescueNewSeq
          THEN LET l == LaneOf(key[j], epoch) IN
               /\ lane' = [lane EXCEPT ![j] = l]
               /\ seq' = [seq EXCEPT ![j] = nextSeq[l]]
               /\ nextSeq' = [nextSeq EXCEPT ![l] = @ + 1]
          ELSE UNCHANGED <<lane, seq, nextSeq>>
    /\ UNCHANGED <<epoch, pc, readEpoch, claimSeq, enqueued, key, crashes, mark,
                   fence, outs>>

Next ==
    \/ Begin
    \/ \E k \in Keys : Insert(k)
    \/ Change
    \/ \E e \in Changes, l \in Lanes : LiftFence(e, l)
    \/ \E l \in Lanes : Claim(l)
    \/ \E j \in Jobs : Complete(j) \/ Crash(j) \/ Rescue(j)

(* Fairness per lane and per fence: every lane whose next seq is within   *)
(* its limit is served, and every fence whose sources are done lifts      *)
(* (the maintenance leader's periodic lift step).  Producers, changes,    *)
(* completions and rescues need no fairness for the hand-out property.    *)
Fairness ==
    /\ \A l \in Lanes : WF_vars(Claim(l))
    /\ \A e \in Changes, l \in Lanes : WF_vars(LiftFence(e, l))

Spec == Init /\ [][Next]_vars /\ Fairness

---------------------------------------------------------------------------
(* Properties.                                                             *)

TypeOK ==
    /\ epoch \in Epochs
    /\ pc \in {"idle", "locked"}
    /\ readEpoch \in 0 .. Len(Widths)
    /\ nextSeq \in [Lanes -> 1 .. (MaxSeq + 1)]
    /\ claimSeq \in [Lanes -> 0 .. MaxSeq]
    /\ enqueued \in 0 .. MaxJobs
    /\ status \in [Jobs -> Statuses]
    /\ key \in [Jobs -> Keys \cup {0}]
    /\ lane \in [Jobs -> Lanes]
    /\ seq \in [Jobs -> 0 .. MaxSeq]
    /\ crashes \in 0 .. MaxCrashes
    /\ \A e \in Changes, l \in Lanes : mark[e][l] \in 0 .. MaxSeq
    /\ \A e \in Changes, l \in Lanes : fence[e][l] \in {"none", "up", "lifted"}
    /\ \A i \in DOMAIN outs : outs[i] \in Jobs

(* Per-key FIFO across width changes: for every key, first hand-outs       *)
(* follow enqueue (commit) order; a job is handed out only after every    *)
(* earlier job of its key.                                                 *)
PerKeyFIFO ==
    \A a, b \in Jobs :
        (a < b /\ b \in Handed /\ key[a] = key[b]) =>
            a \in Handed /\ Pos(a) < Pos(b)

(* No job is lost: an enqueued job is held by an attempt, done, or ready  *)
(* at a seq its lane has not handed out yet; and none is handed out first *)
(* twice.                                                                  *)
NoJobLost ==
    /\ \A j \in 1 .. enqueued :
          status[j] = "ready" => seq[j] > claimSeq[lane[j]]
    /\ \A j \in 1 .. enqueued : status[j] \in {"running", "crashed", "done"} => j \in Handed
    /\ Cardinality(Handed) = Len(outs)

(* Every enqueued job is eventually handed out.                            *)
EveryJobHandedOut == \A j \in Jobs : (j <= enqueued) ~> (j \in Handed)

=============================================================================
