---- MODULE KeyConcurrency_TTrace_1796184624 ----
EXTENDS Sequences, TLCExt, Toolbox, Naturals, TLC, KeyConcurrency

_expression ==
    LET KeyConcurrency_TEExpression == INSTANCE KeyConcurrency_TEExpression
    IN KeyConcurrency_TEExpression!expression
----

_trace ==
    LET KeyConcurrency_TETrace == INSTANCE KeyConcurrency_TETrace
    IN KeyConcurrency_TETrace!trace
----

_inv ==
    ~(
        TLCGet("level") = Len(_TETrace)
        /\
        grants = ({1, 2})
        /\
        leased = (<<TRUE, TRUE, FALSE>>)
        /\
        pc = (<<"idle", "idle">>)
        /\
        pick = (<<0, 0>>)
        /\
        pending = (0)
        /\
        limit = (1)
        /\
        lock = (0)
        /\
        state = (<<"running", "running", "avail">>)
        /\
        keyed = (<<TRUE, TRUE, TRUE>>)
        /\
        seen = (<<0, 0>>)
    )
----

_init ==
    /\ pending = _TETrace[1].pending
    /\ state = _TETrace[1].state
    /\ seen = _TETrace[1].seen
    /\ leased = _TETrace[1].leased
    /\ keyed = _TETrace[1].keyed
    /\ lock = _TETrace[1].lock
    /\ limit = _TETrace[1].limit
    /\ pc = _TETrace[1].pc
    /\ grants = _TETrace[1].grants
    /\ pick = _TETrace[1].pick
----

_next ==
    /\ \E i,j \in DOMAIN _TETrace:
        /\ \/ /\ j = i + 1
              /\ i = TLCGet("level")
        /\ pending  = _TETrace[i].pending
        /\ pending' = _TETrace[j].pending
        /\ state  = _TETrace[i].state
        /\ state' = _TETrace[j].state
        /\ seen  = _TETrace[i].seen
        /\ seen' = _TETrace[j].seen
        /\ leased  = _TETrace[i].leased
        /\ leased' = _TETrace[j].leased
        /\ keyed  = _TETrace[i].keyed
        /\ keyed' = _TETrace[j].keyed
        /\ lock  = _TETrace[i].lock
        /\ lock' = _TETrace[j].lock
        /\ limit  = _TETrace[i].limit
        /\ limit' = _TETrace[j].limit
        /\ pc  = _TETrace[i].pc
        /\ pc' = _TETrace[j].pc
        /\ grants  = _TETrace[i].grants
        /\ grants' = _TETrace[j].grants
        /\ pick  = _TETrace[i].pick
        /\ pick' = _TETrace[j].pick

\* Uncomment the ASSUME below to write the states of the error trace
\* to the given file in Json format. Note that you can pass any tuple
\* to `JsonSerialize`. For example, a sub-sequence of _TETrace.
    \* ASSUME
    \*     LET J == INSTANCE Json
    \*         IN J!JsonSerialize("KeyConcurrency_TTrace_1796184624.json", _TETrace)

=============================================================================

 Note that you can extract this module `KeyConcurrency_TEExpression`
  to a dedicated file to reuse `expression` (the module in the 
  dedicated `KeyConcurrency_TEExpression.tla` file takes precedence 
  over the module `KeyConcurrency_TEExpression` below).

---- MODULE KeyConcurrency_TEExpression ----
EXTENDS Sequences, TLCExt, Toolbox, Naturals, TLC, KeyConcurrency

expression == 
    [
        \* To hide variables of the `KeyConcurrency` spec from the error trace,
        \* remove the variables below.  The trace will be written in the order
        \* of the fields of this record.
        pending |-> pending
        ,state |-> state
        ,seen |-> seen
        ,leased |-> leased
        ,keyed |-> keyed
        ,lock |-> lock
        ,limit |-> limit
        ,pc |-> pc
        ,grants |-> grants
        ,pick |-> pick
        
        \* Put additional constant-, state-, and action-level expressions here:
        \* ,_stateNumber |-> _TEPosition
        \* ,_pendingUnchanged |-> pending = pending'
        
        \* Format the `pending` variable as Json value.
        \* ,_pendingJson |->
        \*     LET J == INSTANCE Json
        \*     IN J!ToJson(pending)
        
        \* Lastly, you may build expressions over arbitrary sets of states by
        \* leveraging the _TETrace operator.  For example, this is how to
        \* count the number of times a spec variable changed up to the current
        \* state in the trace.
        \* ,_pendingModCount |->
        \*     LET F[s \in DOMAIN _TETrace] ==
        \*         IF s = 1 THEN 0
        \*         ELSE IF _TETrace[s].pending # _TETrace[s-1].pending
        \*             THEN 1 + F[s-1] ELSE F[s-1]
        \*     IN F[_TEPosition - 1]
    ]

=============================================================================



Parsing and semantic processing can take forever if the trace below is long.
 In this case, it is advised to uncomment the module below to deserialize the
 trace from a generated binary file.

\*
\*---- MODULE KeyConcurrency_TETrace ----
\*EXTENDS IOUtils, TLC, KeyConcurrency
\*
\*trace == IODeserialize("KeyConcurrency_TTrace_1796184624.bin", TRUE)
\*
\*=============================================================================
\*

---- MODULE KeyConcurrency_TETrace ----
EXTENDS TLC, KeyConcurrency

trace == 
    <<
    ([grants |-> {},leased |-> <<FALSE, FALSE, FALSE>>,pc |-> <<"idle", "idle">>,pick |-> <<0, 0>>,pending |-> 0,limit |-> 1,lock |-> 0,state |-> <<"avail", "avail", "avail">>,keyed |-> <<TRUE, TRUE, TRUE>>,seen |-> <<0, 0>>]),
    ([grants |-> {},leased |-> <<FALSE, FALSE, FALSE>>,pc |-> <<"checked", "idle">>,pick |-> <<1, 0>>,pending |-> 0,limit |-> 1,lock |-> 0,state |-> <<"avail", "avail", "avail">>,keyed |-> <<TRUE, TRUE, TRUE>>,seen |-> <<0, 0>>]),
    ([grants |-> {},leased |-> <<FALSE, FALSE, FALSE>>,pc |-> <<"checked", "checked">>,pick |-> <<1, 2>>,pending |-> 0,limit |-> 1,lock |-> 0,state |-> <<"avail", "avail", "avail">>,keyed |-> <<TRUE, TRUE, TRUE>>,seen |-> <<0, 0>>]),
    ([grants |-> {1},leased |-> <<TRUE, FALSE, FALSE>>,pc |-> <<"idle", "checked">>,pick |-> <<0, 2>>,pending |-> 0,limit |-> 1,lock |-> 0,state |-> <<"running", "avail", "avail">>,keyed |-> <<TRUE, TRUE, TRUE>>,seen |-> <<0, 0>>]),
    ([grants |-> {1, 2},leased |-> <<TRUE, TRUE, FALSE>>,pc |-> <<"idle", "idle">>,pick |-> <<0, 0>>,pending |-> 0,limit |-> 1,lock |-> 0,state |-> <<"running", "running", "avail">>,keyed |-> <<TRUE, TRUE, TRUE>>,seen |-> <<0, 0>>])
    >>
----


=============================================================================

---- CONFIG KeyConcurrency_TTrace_1796184624 ----
CONSTANTS
    NumJobs = 3
    NumClaimers = 2
    InitLimit = 1
    Limits = { 1 , 2 }
    Serialised = FALSE
    RescueKeepsKey = TRUE
    LowerDrains = TRUE

INVARIANT
    _inv

CHECK_DEADLOCK
    \* CHECK_DEADLOCK off because of PROPERTY or INVARIANT above.
    FALSE

INIT
    _init

NEXT
    _next

CONSTANT
    _TETrace <- _trace

ALIAS
    _expression
=============================================================================
\* Generated on Wed Dec 02 04:10:27 UTC 2026