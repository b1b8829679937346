-------------------------------- MODULE CronBroken --------------------------------
(***************************************************************************)
(* A broken catch-up, swapped into Cron by a cfg definition override      *)
(* ("Last <- NextAfterLast").                                              *)
(***************************************************************************)
EXTENDS Cron

(* The resume point is read as the next tick to fire (the last recorded   *)
(* one plus one) but kept as the cursor, the last tick fired: the loop    *)
(* then fires the tick after it, one tick is skipped, and once the last   *)
(* tick is recorded a new leader's cursor is past every tick.  Kills      *)
(* TypeOK (cursor past MaxTick).                                           *)
NextAfterLast ==
    IF recorded = {} THEN 1
    ELSE (CHOOSE t \in recorded : \A u \in recorded : u <= t) + 1

=============================================================================
