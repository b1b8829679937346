SELECT role, holder, expires_at, acquired_at, term, expires_at > clock_timestamp() AS live
FROM __schema__.leader_leases ORDER BY role
