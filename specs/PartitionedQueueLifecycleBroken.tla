---------------------- MODULE PartitionedQueueLifecycleBroken ----------------------
(***************************************************************************)
(* Broken designs of the lifecycle, one operator each.  A cfg swaps one in *)
(* with a definition override, e.g. "CanClaim <- CanClaimRunning", and    *)
(* checks that the invariant it targets fails.                             *)
(***************************************************************************)
EXTENDS PartitionedQueueLifecycle

(* The claim also takes a row that is still running (no state guard): two *)
(* workers run one job at once.  Kills NoTwoLiveLeases.                    *)
CanClaimRunning(j) ==
    \/ status[j] = "running"
    \/ /\ status[j] = "ready"
       /\ CursorClaim => seq[j] = claimHead[lane[j]] + 1

(* A retry takes the lane's next number but does not advance the counter: *)
(* the next row of the lane gets the same number.  Kills NoJobLost.        *)
RequeueNoBump(j) ==
    /\ status' = [status EXCEPT ![j] = "ready"]
    /\ seq' = [seq EXCEPT ![j] = laneNext[lane[j]]]
    /\ UNCHANGED <<laneNext, lane>>

(* A retry is routed again like an unkeyed job: it lands in the next       *)
(* partition's lane.  Kills KeyedJobsStayInKeyLane.                        *)
OtherLane(l) == << (l[1] + 1) % NumPartitions, l[2] >>
RequeueRerouted(j) ==
    /\ status' = [status EXCEPT ![j] = "ready"]
    /\ lane' = [lane EXCEPT ![j] = OtherLane(lane[j])]
    /\ seq' = [seq EXCEPT ![j] = laneNext[OtherLane(lane[j])]]
    /\ laneNext' = [laneNext EXCEPT ![OtherLane(lane[j])] = @ + 1]

(* complete/fail match on the job id alone (no state, no lease): a late   *)
(* call rewrites a terminal row.  Kills TerminalIsFinal.                   *)
FinalizeMatchesAnyRow(j, r) == TRUE

(* The retry check is off by one (attempt <= max_attempts, not <): the    *)
(* last attempt's failure is retried once more and the next claim takes an *)
(* attempt number past MaxAttempts.  Kills TypeOK.                         *)
EndAttemptFailedPastMax(j, r) ==
    IF lease[j] <= MaxAttempts
        THEN /\ Requeue(j)
             /\ UNCHANGED doneLease
        ELSE /\ status' = [status EXCEPT ![j] = "failed"]
             /\ doneLease' = [doneLease EXCEPT ![j] = r]
             /\ UNCHANGED <<seq, laneNext, lane>>

=============================================================================
