------------------------------ MODULE ClaimGroups ------------------------------
(***************************************************************************)
(* The worker's claim batcher (ADR 0013): claim requests of many queues,  *)
(* batched into statements and pipelined in claim groups.                 *)
(*                                                                         *)
(* Every claimer asks for jobs of one queue.  Queues are dealt into        *)
(* NumGroups groups; each group has at most one statement in flight, so a *)
(* queue is never in two statements at once (two statements of one queue  *)
(* would only meet at its lanes' claim heads).  Requests wait in their    *)
(* group's list; a dispatch sends every ready group that has no statement  *)
(* in flight, except from idle, when only one group goes (the one after   *)
(* the group started last): the others follow when it comes back, which  *)
(* staggers the groups into a two-stage pipeline.  When a statement comes  *)
(* back (rows or an error), its group is free and a dispatch runs at once, *)
(* before the rows are handed out.  A claimer may be cancelled at any time; *)
(* its request then needs nothing more.  (Rows claimed for a request whose *)
(* claimer is gone are marked running with no holder: the lifecycle spec's *)
(* Crash case, which Rescue recovers.  The runtime never cancels its own   *)
(* claimers mid-claim.)                                                    *)
(*                                                                         *)
(* Two switches describe broken designs:                                   *)
(*   DropGoneFirst     = FALSE -- cancelled requests are dropped only when *)
(*                      their group's statement is built, so a group of    *)
(*                      cancelled requests can be the one chosen from idle: *)
(*                      nothing is sent and the other groups wait for ever *)
(*                      (the defect fixed in commit 83b56ad).              *)
(*   OneStatementPerGroup = FALSE -- a ready group is sent even while its  *)
(*                      previous statement is in flight.                   *)
(* ClaimGroupsBroken.tla holds one more, swapped in by a cfg override.     *)
(*                                                                         *)
(* Python mirror: verification/mirrors/claim_groups.py (see specs/MAPPING.md).       *)
(***************************************************************************)
EXTENDS Integers, FiniteSets

CONSTANTS
    NumQueues,             \* queues 1..NumQueues
    NumGroups,             \* claim groups 0..NumGroups-1
    NumRequests,           \* claim requests 1..NumRequests, asked in order
    DropGoneFirst,         \* TRUE: cancelled requests never make a group ready
    OneStatementPerGroup   \* TRUE: a group with a statement in flight waits

ASSUME /\ NumQueues \in Nat \ {0}
       /\ NumGroups \in Nat \ {0}
       /\ NumRequests \in Nat \ {0}
       /\ DropGoneFirst \in BOOLEAN
       /\ OneStatementPerGroup \in BOOLEAN

Queues   == 1 .. NumQueues
Groups   == 0 .. (NumGroups - 1)
Requests == 1 .. NumRequests

(* Queues are dealt round robin in the order they are first seen; here in *)
(* id order (which group a queue lands in does not matter, only that the  *)
(* dealing is fixed).                                                      *)
GroupOf(q) == q % NumGroups

Statements == [group : Groups, reqs : SUBSET Requests]

VARIABLES
    nextReq,          \* id of the next request to be asked
    queueOf,          \* [Requests -> 0..NumQueues]; 0 = not asked yet
    waiting,          \* [Groups -> SUBSET Requests]: the group's waiting list
    flight,           \* SUBSET Statements: statements on the server
    answered,         \* requests that got their rows (or the error)
    gone,             \* requests whose claimer was cancelled
    lastStarted,      \* group of the statement sent last
    dispatchPending   \* a dispatch is scheduled for the next loop turn

vars == <<nextReq, queueOf, waiting, flight, answered, gone, lastStarted,
          dispatchPending>>

Init ==
    /\ nextReq = 1
    /\ queueOf = [r \in Requests |-> 0]
    /\ waiting = [g \in Groups |-> {}]
    /\ flight = {}
    /\ answered = {}
    /\ gone = {}
    /\ lastStarted = NumGroups - 1   \* so that group 0 goes first
    /\ dispatchPending = FALSE

---------------------------------------------------------------------------
(* Helpers.  A dispatch is computed against the statements that stay in  *)
(* flight: all of them for a scheduled dispatch, all but the one that came *)
(* back when a statement returns.                                          *)

QueuesOf(rs) == {queueOf[r] : r \in rs}

Busy(fl) == {s.group : s \in fl}

(* The requests of group g that still need a statement.                    *)
Live(g) == waiting[g] \ gone

(* Groups that may be sent now.                                            *)
Ready(fl) ==
    {g \in Groups :
        /\ OneStatementPerGroup => g \notin Busy(fl)
        /\ IF DropGoneFirst THEN Live(g) # {} ELSE waiting[g] # {}}

(* From idle: the ready group that comes first after lastStarted.          *)
Distance(g) == (g - lastStarted - 1 + NumGroups) % NumGroups
NextFromIdle(ready) == CHOOSE g \in ready : \A h \in ready : Distance(g) <= Distance(h)

Chosen(fl) ==
    IF Ready(fl) = {} THEN {}
    ELSE IF fl = {} THEN {NextFromIdle(Ready(fl))}
    ELSE Ready(fl)

(* The chosen groups that get a statement: one whose requests are all gone *)
(* sends nothing.                                                          *)
Sent(fl) == {g \in Chosen(fl) : Live(g) # {}}

Max(S) == CHOOSE x \in S : \A y \in S : y <= x

(* The groups whose waiting list a dispatch empties: the chosen ones.     *)
Cleared(fl) == Chosen(fl)

(* One dispatch, as ClaimBatcher._dispatch does it, with fl the statements *)
(* in flight.  With DropGoneFirst every free group's list first loses its  *)
(* cancelled requests.                                                     *)
DispatchFrom(fl) ==
    /\ waiting' = [g \in Groups |->
                     IF g \in Cleared(fl) THEN {}
                     ELSE IF DropGoneFirst /\ g \notin Busy(fl) THEN Live(g)
                     ELSE waiting[g]]
    /\ flight' = fl \cup {[group |-> g, reqs |-> Live(g)] : g \in Sent(fl)}
    /\ lastStarted' = IF Sent(fl) = {} THEN lastStarted ELSE Max(Sent(fl))

---------------------------------------------------------------------------
(* Actions.                                                                *)

(* A claimer holding free slots asks for jobs of queue q; the first ask of *)
(* a loop turn schedules a dispatch for the next turn.                     *)
Ask(q) ==
    /\ nextReq <= NumRequests
    /\ queueOf' = [queueOf EXCEPT ![nextReq] = q]
    /\ waiting' = [waiting EXCEPT ![GroupOf(q)] = @ \cup {nextReq}]
    /\ nextReq' = nextReq + 1
    /\ dispatchPending' = TRUE
    /\ UNCHANGED <<flight, answered, gone, lastStarted>>

(* The claimer of request r is cancelled (its future is done).             *)
Cancel(r) ==
    /\ queueOf[r] # 0
    /\ r \notin answered \cup gone
    /\ gone' = gone \cup {r}
    /\ UNCHANGED <<nextReq, queueOf, waiting, flight, answered, lastStarted,
                   dispatchPending>>

(* The scheduled dispatch runs.                                            *)
DispatchSoon ==
    /\ dispatchPending
    /\ dispatchPending' = FALSE
    /\ DispatchFrom(flight)
    /\ UNCHANGED <<nextReq, queueOf, answered, gone>>

(* Statement s comes back (rows or an error).  Its group is free again and *)
(* a dispatch runs at once, before the rows are handed out; requests whose *)
(* claimer is gone get nothing.                                            *)
Answer(s) ==
    /\ s \in flight
    /\ answered' = answered \cup (s.reqs \ gone)
    /\ DispatchFrom(flight \ {s})
    /\ UNCHANGED <<nextReq, queueOf, gone, dispatchPending>>

Next ==
    \/ \E q \in Queues : Ask(q)
    \/ \E r \in Requests : Cancel(r)
    \/ DispatchSoon
    \/ \E s \in flight : Answer(s)

(* The event loop runs what it scheduled, and the server answers every    *)
(* statement it was sent.  Asking and cancelling are the environment's.    *)
Spec ==
    /\ Init
    /\ [][Next]_vars
    /\ WF_vars(DispatchSoon)
    /\ WF_vars(\E s \in flight : Answer(s))

---------------------------------------------------------------------------
(* Invariants.                                                             *)

TypeOK ==
    /\ nextReq \in 1 .. (NumRequests + 1)
    /\ queueOf \in [Requests -> 0 .. NumQueues]
    /\ waiting \in [Groups -> SUBSET Requests]
    /\ flight \subseteq Statements
    /\ answered \subseteq Requests
    /\ gone \subseteq Requests
    /\ lastStarted \in Groups
    /\ dispatchPending \in BOOLEAN

(* Each group has at most one statement on the server, so there are never *)
(* more statements in flight than groups.                                  *)
OneStatementPerGroupInFlight ==
    \A s, t \in flight : s.group = t.group => s = t

(* What the database needs: no queue is in two statements at once.        *)
QueueInOneStatement ==
    \A s, t \in flight : s # t => QueuesOf(s.reqs) \cap QueuesOf(t.reqs) = {}

(* Requests wait and travel only with their own queue's group.  True by   *)
(* construction here (GroupOf is fixed), so no cfg checks it; the batcher  *)
(* test checks it on the implementation (tests/test_worker_claim_batcher). *)
RequestsStayInTheirGroup ==
    /\ \A g \in Groups : \A r \in waiting[g] : GroupOf(queueOf[r]) = g
    /\ \A s \in flight : \A r \in s.reqs : GroupOf(queueOf[r]) = s.group

(* A live request is in exactly one place: its group's list, one          *)
(* statement, or answered.                                                 *)
NoRequestLost ==
    \A r \in Requests :
        (queueOf[r] # 0 /\ r \notin gone) =>
            LET places == (IF r \in waiting[GroupOf(queueOf[r])] THEN 1 ELSE 0)
                          + Cardinality({s \in flight : r \in s.reqs})
                          + (IF r \in answered THEN 1 ELSE 0)
            IN places = 1

(* Liveness: every request asked ends, answered or cancelled.              *)
EveryRequestEnds ==
    \A r \in Requests : (queueOf[r] # 0) ~> (r \in answered \cup gone)

=============================================================================
