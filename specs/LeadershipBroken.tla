---------------------------- MODULE LeadershipBroken ----------------------------
(***************************************************************************)
(* A broken lease renewal, swapped into Leadership by a cfg definition    *)
(* override ("Acquire <- AcquireExtendsExpiry").                           *)
(***************************************************************************)
EXTENDS Leadership

(* The upsert sets expires_at = expires_at + ttl (the old expiry, not     *)
(* clock_timestamp()): every renewal of a live row adds a whole lease to  *)
(* what is left, and the row outlives its holder's belief by more than a  *)
(* lease.  Kills TypeOK (left past Lease).                                 *)
AcquireExtendsExpiry(w) ==
    /\ Live(w)
    /\ pc[w] = "idle"
    /\ RenewDue(w)
    /\ IF Grants(w)
         THEN /\ holder' = w
              /\ left' = left + Lease
              /\ pc' = [pc EXCEPT ![w] = "granted"]
              /\ started' = [started EXCEPT ![w] = 0]
              /\ waited' = IF holder = w THEN waited ELSE 0
              /\ UNCHANGED since
         ELSE /\ since' = [since EXCEPT ![w] = NoBelief]
              /\ UNCHANGED <<holder, left, pc, started, waited>>
    /\ UNCHANGED <<mode, status, owner>>

=============================================================================
