"""Mutation check of the implementation: every seeded defect must be killed.

``make mutants`` (and ``make verify-deep``) runs this. Each mutant is one
realistic defect, applied by exact text substitution to a *temporary copy*
of the tree (the worktree is never modified); the copy's tests then run
against the copy's package and SQL, on one PostgreSQL server shared by all
mutants (each pytest run migrates its own template database). The tests of a
mutant run in order, state machines first, and stop at the first failure:
that test killed the mutant. A mutant that no listed test kills SURVIVED,
and the exit status is 1.

    python -m scripts.mutants                 # every mutant, 2 at a time
    python -m scripts.mutants --jobs 1 -k heartbeat
    python -m scripts.mutants --list

A substitution that no longer matches its file fails loudly (exit 2): the
mutant must be updated with the code it breaks.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = "awa/storage/sql/migrations/0001_baseline"
COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", ".hypothesis", ".pytest_cache", "__pycache__", ".verify",
                                     "bench", "*.egg-info", ".bench-venv*")
M = "tests/machines"


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str
    edits: tuple[tuple[str, str, str], ...]  # (file, old, new): old must occur exactly once
    tests: tuple[str, ...]  # pytest node ids, machines first


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "repartition-naive-switch", "a width change sets the new width without fences (ADR 0024's BrokenNaive)",
        ((f"{BASE}/16_repartition.sql", "WHERE EXISTS (SELECT 1 FROM generate_series(0, v_old - 1) AS s(part)",
          "WHERE false AND EXISTS (SELECT 1 FROM generate_series(0, v_old - 1) AS s(part)"),),
        (f"{M}/test_repartition_machine.py::test_repartition_machine", "tests/test_repartition.py"),
    ),
    Mutant(
        "repartition-early-lift", "a fence lifts once its sources handed out their mark - 1 (BrokenOneEarly)",
        ((f"{BASE}/16_repartition.sql", "AND (coalesce(c.claim_seq, 0) < m.mark\n",
          "AND (coalesce(c.claim_seq, 0) < m.mark - 1\n"),),
        (f"{M}/test_repartition_machine.py::test_repartition_machine", "tests/test_repartition.py"),
    ),
    Mutant(
        "repartition-brief-lift", "a fence lifts on its sources' marks only, not their earlier fences (BriefLift)",
        ((f"{BASE}/16_repartition.sql", "OR EXISTS (SELECT 1 FROM __schema__.lane_fences AS g",
          "OR false AND EXISTS (SELECT 1 FROM __schema__.lane_fences AS g"),),
        (f"{M}/test_repartition_machine.py::test_repartition_machine", "tests/test_repartition.py"),
    ),
    Mutant(
        "repartition-cyclic-fence", "a fence also waits on its sources' fences of the same change (CyclicFence)",
        ((f"{BASE}/16_repartition.sql", "AND g.lifted_at IS NULL AND g.epoch < f.epoch",
          "AND g.lifted_at IS NULL AND g.epoch <= f.epoch"),),
        (f"{M}/test_repartition_machine.py::test_repartition_machine", "tests/test_repartition.py"),
    ),
    Mutant(
        "repartition-mark-next-seq", "a change marks each lane at next_seq, not next_seq - 1 (MarkAtNextSeq)",
        ((f"{BASE}/16_repartition.sql", "l.enqueue_shard, coalesce(h.next_seq - 1, 0)\n",
          "l.enqueue_shard, coalesce(h.next_seq, 0)\n"),
         (f"{BASE}/16_repartition.sql", "SELECT l.*, coalesce(h.next_seq - 1, 0) AS mark",
          "SELECT l.*, coalesce(h.next_seq, 0) AS mark")),
        (f"{M}/test_repartition_machine.py::test_repartition_machine", "tests/test_repartition.py"),
    ),
    Mutant(
        "repartition-rescue-keeps-seq", "a job made available again keeps the lane number it had (RescueKeepsSeq)",
        ((f"{BASE}/04_enqueue.sql", "SET state = 'available', lane_seq = numbered.seq,",
          "SET state = 'available', lane_seq = coalesce(j.lane_seq, numbered.seq),"),),
        (f"{M}/test_repartition_machine.py::test_repartition_machine", f"{M}/test_lifecycle_machine.py",
         "tests/test_repartition.py"),
    ),
    Mutant(
        "repartition-stale-producer", "a producer routes without taking the queue's key shared (StaleProducer)",
        ((f"{BASE}/16_repartition.sql",
          "    PERFORM __schema__.partition_key_lock(v_logical, false);\n    SELECT partitions, epoch INTO v_width",
          "    SELECT partitions, epoch INTO v_width"),),
        (f"{M}/test_repartition_machine.py::test_repartition_machine", "tests/test_repartition.py"),
    ),
    Mutant(
        "repartition-removed-not-served", "workers serve a shrink's new width only, not its removed partitions "
        "(RemovedNotServed)",
        (("awa/storage/sql/queries/partition_spans.sql", "SELECT max(greatest(e.old_width, e.new_width))",
          "SELECT max(e.new_width)"),),
        (f"{M}/test_repartition_machine.py::test_repartition_machine", "tests/test_repartition.py"),
    ),
    Mutant(
        "finish-lease-guard", "finish_attempt (fail/retry/snooze) ignores the run lease",
        ((f"{BASE}/06_lifecycle.sql", "WHERE id = p_id AND state = 'running' AND run_lease = p_lease\n",
          "WHERE id = p_id AND state = 'running'\n"),),
        (f"{M}/test_pinned_regressions.py::test_pinned_stale_replay_after_retry_changes_nothing",
         f"{M}/test_batch_lease_machine.py", "tests/test_client_lifecycle.py"),
    ),
    Mutant(
        "complete-many-lease-guard", "complete_many ignores the run lease",
        ((f"{BASE}/06_lifecycle.sql", "deadline_at = NULL\n        FROM (SELECT u.id, u.lease FROM unnest(p_ids, p_leases) AS u(id, lease) "
          "ORDER BY u.id) AS u\n        WHERE j.id = u.id AND j.state = 'running' AND j.run_lease = u.lease",
          "deadline_at = NULL\n        FROM (SELECT u.id, u.lease FROM unnest(p_ids, p_leases) AS u(id, lease) "
          "ORDER BY u.id) AS u\n        WHERE j.id = u.id AND j.state = 'running'"),),
        (f"{M}/test_batch_lease_machine.py", "tests/test_client_lifecycle.py", "tests/test_worker_runtime.py"),
    ),
    Mutant(
        "heartbeat-many-lease-guard", "heartbeat_many ignores the run lease",
        ((f"{BASE}/06_lifecycle.sql", "SET heartbeat_at = coalesce(p_now, now())\n        FROM (SELECT u.id, u.lease FROM "
          "unnest(p_ids, p_leases) AS u(id, lease) ORDER BY u.id) AS u\n        WHERE j.id = u.id AND j.state = 'running' "
          "AND j.run_lease = u.lease", "SET heartbeat_at = coalesce(p_now, now())\n        FROM (SELECT u.id, u.lease FROM "
          "unnest(p_ids, p_leases) AS u(id, lease) ORDER BY u.id) AS u\n        WHERE j.id = u.id AND j.state = 'running'"),),
        (f"{M}/test_batch_lease_machine.py", "tests/test_client_lifecycle.py", "tests/test_worker_runtime.py"),
    ),
    Mutant(
        "claim-lease-bump", "a claim does not bump the run lease (a rescued attempt's lease stays live)",
        ((f"{BASE}/05_claim.sql", "run_lease = j.run_lease + 1,", "run_lease = j.run_lease,"),),
        (f"{M}/test_pinned_regressions.py", f"{M}/test_batch_lease_machine.py", "tests/test_client_lifecycle.py"),
    ),
    Mutant(
        "claim-order", "a lane's window is claimed newest first",
        ((f"{BASE}/05_claim.sql", "ORDER BY j.id\n                        LIMIT v_remaining",
          "ORDER BY j.id DESC\n                        LIMIT v_remaining"),),
        (f"{M}/test_producers_machine.py::test_concurrent_producers_machine",
         f"{M}/test_pinned_regressions.py", f"{M}/test_concurrent_lanes.py", "tests/test_storage_lanes.py"),
    ),
    Mutant(
        "claim-cursor-skips", "the claim cursor moves to the lane head although the claim stopped early",
        ((f"{BASE}/05_claim.sql", "IF v_remaining > 0 AND NOT v_page_full THEN", "IF true THEN"),),
        (f"{M}/test_producers_machine.py::test_concurrent_producers_machine",
         f"{M}/test_pinned_regressions.py", f"{M}/test_concurrent_lanes.py", "tests/test_storage_lanes.py"),
    ),
    Mutant(
        "pool-enqueue-one-transaction", "insert_many_copy on the pool runs without a transaction",
        (("awa/client/api.py",
          "return guarded(self._drive, self._core.enqueue(batch, want_jobs, ckeys), conn, True, True, \"the batch\")\n",
          "return guarded(self._drive, self._core.enqueue(batch, want_jobs, ckeys), conn, not want_jobs, True, "
          "\"the batch\")\n"),),
        (f"{M}/test_unique_machine.py::test_unique_machine_holds_every_invariant",
         f"{M}/test_concurrent_lanes.py::test_concurrent_copy_keeps_lanes_commit_ordered", "tests/test_client_enqueue.py",
         "tests/test_storage_batch_routing.py", "tests/test_client_core.py"),
    ),
    Mutant(
        "routing-domain-python", "partition routing without the domain separation (Python)",
        (("awa/routing/hashes.py", "    v = h ^ PARTITION_HASH_DOMAIN\n", "    v = h\n"),
         ("awa/routing/hashes.py", "    v = hashes ^ np.uint64(PARTITION_HASH_DOMAIN)\n", "    v = hashes\n")),
        (f"{M}/test_routing_machine.py", "tests/test_routing_hashes.py", "tests/test_routing_sql_twins.py"),
    ),
    Mutant(
        "routing-domain-sql", "partition routing without the domain separation (the SQL twin)",
        ((f"{BASE}/01_routing.sql", "    v_hi := v_hi # 2639076143;\n    v_lo := v_lo # 1403456657;\n", ""),),
        (f"{M}/test_routing_machine.py", "tests/test_routing_sql_twins.py"),
    ),
    Mutant(
        "retry-max-attempts", "a retry ignores max_attempts",
        ((f"{BASE}/06_lifecycle.sql", "ELSIF p_mode = 'retry' AND v_job.attempt < v_job.max_attempts THEN",
          "ELSIF p_mode = 'retry' THEN"),),
        (f"{M}/test_lifecycle_machine.py::test_lifecycle_machine_with_backoff_and_terminal_failures",
         "tests/test_client_lifecycle.py"),
    ),
    Mutant(
        "opts-ordering-key-none", "a per-job opts ordering_key of None keeps the batch key",
        (("awa/storage/opts.py", '        if "ordering_key" in entry:\n',
          '        if entry.get("ordering_key") is not None:\n'),),
        ("tests/test_client_enqueue.py", "tests/test_storage_batch_routing.py"),
    ),
    Mutant(
        "capacity-cap", "a hard slot cap one too high",
        (("awa/worker/capacity.py", "granted = max(0, min(wanted, self.limit - self.in_use))",
          "granted = max(0, min(wanted, self.limit + 1 - self.in_use))"),
         ("awa/worker/runtime.py", "want = min(plan.claim_batch_size, queue.slots.limit - queue.slots.in_use)",
          "want = min(plan.claim_batch_size, queue.slots.limit + 1 - queue.slots.in_use)")),
        (f"{M}/test_capacity_machine.py", "tests/test_worker_runtime.py", "tests/test_worker_shared_slots.py"),
    ),
    Mutant(
        "capacity-cap-shared", "the same cap one too high, under shared slots (one slot set for all partitions)",
        (("awa/worker/capacity.py", "granted = max(0, min(wanted, self.limit - self.in_use))",
          "granted = max(0, min(wanted, self.limit + 1 - self.in_use))"),
         ("awa/worker/runtime.py", "want = min(plan.claim_batch_size, queue.slots.limit - queue.slots.in_use)",
          "want = min(plan.claim_batch_size, queue.slots.limit + 1 - queue.slots.in_use)")),
        (f"{M}/test_capacity_machine.py::test_running_stays_within_the_cap_and_no_slot_idles_beside_work[shared-slots]",),
    ),
    Mutant(
        "shared-slots-partition-0", "a shared-slots claim serves only the first partition",
        (("awa/worker/store.py", "return list(await self._run(self.core.claim(list(queue), limit,",
          "return list(await self._run(self.core.claim(list(queue)[:1], limit,"),),
        (f"{M}/test_capacity_machine.py", "tests/test_worker_shared_slots.py"),
    ),
    Mutant(
        "shared-slots-lane-order", "a claim walks equal-priority lanes by queue name, not at random (starves)",
        ((f"{BASE}/05_claim.sql", "            e.priority, random()\n", "            e.priority, e.queue, e.enqueue_shard\n"),),
        (f"{M}/test_capacity_machine.py::test_a_hot_partition_never_starves_a_cold_one_under_shared_slots",),
    ),
    Mutant(
        "lane-stats", "lane stats count one job too many per lane",
        (("awa/storage/sql/queries/lane_stats.sql",
          "e.next_seq - 1 - coalesce(c.claim_seq, 0) - coalesce(c.holes, 0)\n",
          "e.next_seq - coalesce(c.claim_seq, 0) - coalesce(c.holes, 0)\n"),),
        ("tests/test_storage_lanes.py", "tests/test_cli_basics.py"),
    ),
    Mutant(
        "migrate-advisory-lock", "migrations run without the advisory lock",
        (("awa/storage/migrate.py", 'Statement("SELECT pg_advisory_xact_lock(hashtext(%s))"',
          'Statement("SELECT hashtext(%s)"'),),
        ("tests/test_storage_migrate_drivers.py", "tests/test_storage_migrate_baseline.py",
         "tests/test_foundation_db.py"),
    ),
    Mutant(
        "leader-lease-never-expires", "a leader lease is never taken over once expired",
        ((f"{BASE}/11_leader_lease.sql", "WHERE l.holder = excluded.holder OR l.expires_at <= clock_timestamp()",
          "WHERE l.holder = excluded.holder"),),
        (f"{M}/test_leader_lease_machine.py", "tests/test_worker_leader_lease.py"),
    ),
    Mutant(
        "leader-lease-no-holder-guard", "the lease upsert takes over another holder's live lease",
        ((f"{BASE}/11_leader_lease.sql",
          "        WHERE l.holder = excluded.holder OR l.expires_at <= clock_timestamp()\n", ""),),
        (f"{M}/test_leader_lease_machine.py", f"{M}/test_leader_belief_machine.py",
         "tests/test_worker_leader_lease.py"),
    ),
    Mutant(
        "leader-belief-from-reply", "held() counts the lease from the reply, not from the statement's start",
        (("awa/worker/maintenance.py", "self._renewed_at = started if ok else None",
          "self._renewed_at = time.monotonic() if ok else None"),),
        (f"{M}/test_leader_belief_machine.py", "tests/test_worker_leader_lease.py"),
    ),
    Mutant(
        "poison-blocks-claim", "a claimed row that does not decode fails the whole claim",
        (("awa/storage/core.py", "            isolate=True,\n        )\n        return (yield from self._claimed(res))",
          "        )\n        return (yield from self._claimed(res))"),
         ("awa/storage/core.py", "                isolate=True,\n            )\n            return (yield from self._claimed(res))",
          "            )\n            return (yield from self._claimed(res))")),
        ("tests/test_worker_poison.py",),
    ),
    Mutant(
        "rescue-ignores-stale-heartbeat", "rescue takes only passed deadlines, not stale heartbeats",
        ((f"{BASE}/06_lifecycle.sql", "          AND (j.heartbeat_at < v_now - p_heartbeat_timeout\n",
          "          AND (false\n"),),
        ("tests/test_chaos.py",),  # kill9 and sigstop_leader: the victim's jobs stay running (stuck)
    ),
    Mutant(
        "key-park-uncounted", "the cursor passes parked jobs (they leave the lane counts: no claim comes back)",
        ((f"{BASE}/15_key_concurrency.sql",
          "new_cursor := greatest(coalesce(least(v_first - 1, v_frontier), v_frontier), p_cursor);",
          "new_cursor := greatest(v_frontier, p_cursor);"),),
        (f"{M}/test_key_concurrency_machine.py::test_key_concurrency_machine", "tests/test_key_concurrency.py"),
    ),
    Mutant(
        "key-park-out-of-order", "when a parked head is taken, the key's last parked job becomes its head",
        ((f"{BASE}/15_key_concurrency.sql",
          "          AND NOT (q.lane_seq = ANY (p_except))\n        ORDER BY q.lane_seq\n",
          "          AND NOT (q.lane_seq = ANY (p_except))\n        ORDER BY q.lane_seq DESC\n"),),
        (f"{M}/test_key_concurrency_machine.py::test_key_concurrency_machine", "tests/test_key_concurrency.py"),
    ),
    Mutant(
        "key-park-overtakes", "a new job of a key with parked jobs is taken past them when the key has room",
        ((f"{BASE}/15_key_concurrency.sql",
          "WHERE w.k IS NOT NULL AND NOT (w.k = ANY (v_behind))",
          "WHERE w.k IS NOT NULL"),),
        (f"{M}/test_key_concurrency_machine.py::test_parked_head_machine",
         "tests/test_key_concurrency.py::test_a_key_with_jobs_still_parked_holds_its_new_jobs_back",
         "tests/test_key_concurrency.py"),
    ),
    Mutant(
        "key-park-head-lost", "a key parked in a lane for the first time gets no head (its jobs are stranded)",
        ((f"{BASE}/15_key_concurrency.sql", "row_number() OVER (PARTITION BY u.k ORDER BY u.seq) = 1\n",
          "row_number() OVER (PARTITION BY u.k ORDER BY u.seq) = 0\n"),),
        (f"{M}/test_key_concurrency_machine.py::test_key_concurrency_machine", "tests/test_key_concurrency.py"),
    ),
    Mutant(
        "shard-rotor-keyed", "a single keyed insert takes the unkeyed rotor's shard",
        (("awa/storage/lanes.py", "            shard = shard_for_ordering_key(batch.key, shards)\n",
          "            shard = rotor(batch.queue, shards)\n"),),
        (f"{M}/test_producers_machine.py::test_concurrent_producers_machine",
         f"{M}/test_routing_machine.py::test_routing_machine_holds_every_spec_invariant", "tests/test_storage_lanes.py"),
    ),
    Mutant(
        "complete-any-state", "completion matches id and lease, not state: a rescued attempt's row is completed",
        ((f"{BASE}/06_lifecycle.sql",
          "heartbeat_at = NULL, deadline_at = NULL\n        FROM (SELECT u.id, u.lease FROM unnest(p_ids, p_leases) AS u(id, lease) ORDER BY u.id) AS u\n        WHERE j.id = u.id AND j.state = 'running' AND",
          "heartbeat_at = NULL, deadline_at = NULL\n        FROM (SELECT u.id, u.lease FROM unnest(p_ids, p_leases) AS u(id, lease) ORDER BY u.id) AS u\n        WHERE j.id = u.id AND"),),
        (f"{M}/test_lifecycle_machine.py", f"{M}/test_pinned_regressions.py", "tests/test_client_lifecycle.py"),
    ),
    Mutant(
        "retry-reuses-seq", "a job made available again takes the lane number before its own (off by one)",
        ((f"{BASE}/04_enqueue.sql", "               b.next_seq - l.n - 1\n", "               b.next_seq - l.n - 2\n"),),
        (f"{M}/test_lifecycle_machine.py", f"{M}/test_pinned_regressions.py", "tests/test_storage_lanes.py"),
    ),
    Mutant(
        "retry-rerouted", "a job made available again lands in shard 0, not its key's lane",
        ((f"{BASE}/04_enqueue.sql", "        SELECT id, queue, priority, enqueue_shard, run_at\n",
          "        SELECT id, queue, priority, 0::smallint AS enqueue_shard, run_at\n"),),
        (f"{M}/test_lifecycle_machine.py", f"{M}/test_pinned_regressions.py", "tests/test_client_lifecycle.py"),
    ),
    Mutant(
        "claim-head-unlocked", "a claim reads the lane's claim head without locking it (two claimers take one job)",
        ((f"{BASE}/05_claim.sql", "        FOR UPDATE SKIP LOCKED;\n        CONTINUE WHEN NOT FOUND;\n",
          "        ;\n        CONTINUE WHEN NOT FOUND;\n"),),
        (f"{M}/test_concurrent_lanes.py", "tests/test_storage_lanes.py"),
    ),
    Mutant(
        "enqueue-locks-unsorted", "a batch locks its lanes' enqueue heads in batch order (two batches deadlock)",
        (("awa/storage/lanes.py", "    for (q, s), rows in sorted(lanes.items()):\n", "    for (q, s), rows in lanes.items():\n"),
         (f"{BASE}/03_lanes.sql", "    ORDER BY l.queue, l.priority, l.enqueue_shard\n    ON CONFLICT", "    ON CONFLICT")),
        (f"{M}/test_concurrent_lanes.py::test_a_waiting_batch_already_holds_every_lane_before_the_one_it_waits_for",
         f"{M}/test_concurrent_lanes.py::test_concurrent_copy_keeps_lanes_commit_ordered"),
    ),
    Mutant(
        "key-no-serialisation", "key admission counts grants without holding the key's lock (check-then-claim)",
        ((f"{BASE}/15_key_concurrency.sql", "AND __schema__.key_try_lock(p_policy, r.k)), '{}')", "), '{}')"),
         (f"{BASE}/15_key_concurrency.sql", "AND __schema__.key_try_lock(p_policy, w.k)), '{}')", "), '{}')")),
        (f"{M}/test_key_concurrency_machine.py::test_key_concurrency_machine", "tests/test_key_concurrency.py"),
    ),
    Mutant(
        "key-claim-forgets-own", "a claim's later lanes do not count the keys its earlier lanes took (one key twice)",
        ((f"{BASE}/15_key_concurrency.sql",
          "                   + cardinality(array_positions(p_mine, c.k))\n",
          "                   + 0\n"),),
        ("tests/test_key_concurrency.py::test_one_key_one_at_a_time_across_partitions_and_lanes",
         f"{M}/test_key_concurrency_machine.py::test_key_concurrency_machine"),
    ),
    Mutant(
        "key-admit-forgets-earlier", "the admission does not count a key's earlier candidates (two of one key at once)",
        ((f"{BASE}/15_key_concurrency.sql",
          "                   + cardinality(array_positions(p_keys[1:c.ord - 1], c.k)) < p_cap)\n",
          "                   + 0 < p_cap)\n"),),
        (f"{M}/test_key_concurrency_machine.py::test_key_concurrency_machine", "tests/test_key_concurrency.py"),
    ),
    Mutant(
        "key-admit-limit-off-by-one", "the admission takes one job more than the claim has room for",
        ((f"{BASE}/15_key_concurrency.sql", "    SELECT coalesce((array_agg(t.id ORDER BY t.ord))[1:p_limit], '{}'),\n",
          "    SELECT coalesce((array_agg(t.id ORDER BY t.ord))[1:p_limit + 1], '{}'),\n"),),
        ("tests/test_key_concurrency.py::test_a_governed_claim_takes_no_more_than_its_limit",
         f"{M}/test_key_concurrency_machine.py::test_key_concurrency_machine"),
    ),
    Mutant(
        "key-claim-unmarked", "a claim that grants a key marks the job running without it (no grant is held)",
        ((f"{BASE}/05_claim.sql", "                granted_key = v_gkeys[array_position(v_gids, j.id)]\n",
          "                granted_key = NULL\n"),),
        (f"{M}/test_key_concurrency_machine.py::test_key_concurrency_machine", "tests/test_key_concurrency.py"),
    ),
    Mutant(
        "key-policy-unmarked", "a new policy does not grant the attempts already running (they go uncounted)",
        ((f"{BASE}/15_key_concurrency.sql",
          "        SET granted_key = __schema__.key_of(j.concurrency_key, j.ordering_key, v_old.from_ordering_key)\n",
          "        SET granted_key = j.granted_key\n"),),
        ("tests/test_key_concurrency.py::test_a_policy_created_while_jobs_run_counts_them",
         f"{M}/test_key_concurrency_machine.py::test_key_concurrency_machine"),
    ),
    Mutant(
        "key-completion-silent", "a completion statement ends governed attempts without waking or settling (ADR 0036)",
        ((f"{BASE}/06_lifecycle.sql", "                  CASE WHEN j.granted_key IS NOT NULL\n",
          "                  CASE WHEN false\n"),),
        ("tests/test_key_concurrency.py::test_the_end_of_a_governed_attempt_wakes_its_queue_once",),
    ),
    Mutant(
        "key-completion-unsettled", "a completion statement leaves a pending lower limit pending (ADR 0036)",
        ((f"{BASE}/06_lifecycle.sql", "            PERFORM __schema__.key_settle_pending();\n",
          "            NULL;\n"),),
        ("tests/test_key_concurrency.py::test_the_end_of_an_attempt_settles_a_pending_lower_limit",
         "tests/test_key_concurrency.py::test_a_batch_completion_settles_a_pending_lower_limit"),
    ),
    Mutant(
        "key-settle-locks-early", "a release takes the exclusive catalog lock while the pending limit is not ready",
        ((f"{BASE}/15_key_concurrency.sql",
          "    WHERE p.pending_max IS NOT NULL AND __schema__.key_most_grants(p.name) <= p.pending_max;\n",
          "    WHERE p.pending_max IS NOT NULL;\n"),),
        ("tests/test_key_concurrency.py::test_a_release_takes_the_catalog_lock_only_when_a_pending_limit_is_ready",),
    ),
    Mutant(
        "key-release-trigger-silent", "the release trigger leaves out every end, not only completions",
        ((f"{BASE}/15_key_concurrency.sql", "    PERFORM pg_notify(__schema__.jobs_channel(), OLD.queue);\n",
          "    RETURN NULL;\n"),),
        ("tests/test_key_concurrency.py::test_the_end_of_a_governed_attempt_wakes_its_queue_once",
         "tests/test_key_concurrency.py::test_the_end_of_an_attempt_settles_a_pending_lower_limit"),
    ),
    Mutant(
        "key-lower-without-drain", "a lower key limit applies at once while more jobs than it run",
        ((f"{BASE}/15_key_concurrency.sql",
          "        SET max_in_flight = greatest(max_in_flight, coalesce(p_max_in_flight, max_in_flight)),\n"
          "            pending_max = CASE WHEN p_max_in_flight IS NULL THEN pending_max\n"
          "                               WHEN p_max_in_flight < max_in_flight THEN p_max_in_flight END,\n",
          "        SET max_in_flight = coalesce(p_max_in_flight, max_in_flight),\n"
          "            pending_max = NULL,\n"),),
        (f"{M}/test_key_concurrency_machine.py::test_key_concurrency_machine", "tests/test_key_concurrency.py"),
    ),
    Mutant(
        "key-gone-still-behind", "a key whose parked jobs were all taken still holds its new jobs back",
        ((f"{BASE}/15_key_concurrency.sql",
          "        SELECT ARRAY(SELECT f.key FROM firsts AS f) INTO v_behind;\n",
          "        SELECT v_behind || ARRAY(SELECT f.key FROM firsts AS f) INTO v_behind;\n"),),
        ("tests/test_key_concurrency.py::test_a_key_whose_parked_jobs_were_all_taken_is_not_held_back",),
    ),
    Mutant(
        "key-cancel-stays-parked", "an admin cancel of a parked job leaves its row (the claims meet it again)",
        (("awa/storage/sql/migrations/0001_baseline/07_admin.sql",
          "                PERFORM __schema__.key_unpark_cancelled(v_job);\n", ""),),
        ("tests/test_key_concurrency.py::test_cancelling_a_parked_job_unparks_it",),
    ),
    Mutant(
        "key-drop-keeps-frontier", "dropping a policy keeps its lanes' key_frontier (a new policy skips the jobs parked before)",
        (("awa/storage/sql/queries/drop_key_policy.sql",
          "    WHERE key_frontier IS NOT NULL AND __schema__.logical_queue(queue) IN (SELECT name FROM gone)\n",
          "    WHERE false AND __schema__.logical_queue(queue) IN (SELECT name FROM gone)\n"),),
        ("tests/test_key_concurrency.py::test_a_policy_dropped_and_created_again_finds_the_jobs_it_had_parked",),
    ),
    Mutant(
        "key-parked-loses-key", "a parked job read again has no key (from_ordering_key) and runs beside a granted one",
        ((f"{BASE}/15_key_concurrency.sql",
          "               __schema__.key_of(j.concurrency_key, j.ordering_key, v_from_ok) AS k\n",
          "               j.concurrency_key AS k\n"),),
        (f"{M}/test_key_concurrency_machine.py::test_key_concurrency_machine", "tests/test_key_concurrency.py"),
    ),
    Mutant(
        "fast-insert-ignores-registry", "the one-statement single insert writes into a registered queue (unrouted)",
        ((f"{BASE}/17_insert_fast.sql", "      AND q.fast_inserts\n", ""),),
        ("tests/test_insert_fast_path.py::test_a_registered_logical_queue_is_routed_by_insert_job",),
    ),
    Mutant(
        "fast-insert-wakes-past-pending", "the one-statement single insert wakes claimers of a lane with pending jobs",
        ((f"{BASE}/17_insert_fast.sql",
          "                     AND NOT EXISTS (\n                         SELECT 1 FROM __schema__.lane_pending AS p\n",
          "                     AND true OR EXISTS (\n                         SELECT 1 FROM __schema__.lane_pending AS p\n"),),
        ("tests/test_insert_fast_path.py::test_the_fast_statement_writes_what_insert_job_writes",),
    ),
    Mutant(
        "fast-flag-survives-registration", "registering a logical queue leaves its queues on the fast statement",
        ((f"{BASE}/17_insert_fast.sql",
          "    WHERE q.fast_inserts AND __schema__.logical_queue(q.name) = NEW.logical_queue;\n", "    WHERE false;\n"),),
        ("tests/test_insert_fast_path.py::test_a_slow_insert_sets_the_flag_and_a_registration_clears_it",),
    ),
    Mutant(
        "fast-flag-without-key", "a slow insert marks its queue without the logical queue's key",
        ((f"{BASE}/17_insert_fast.sql",
          "       OR NOT __schema__.partition_key_try_shared(v_logical) THEN\n",
          "       THEN\n"),),
        ("tests/test_insert_fast_path.py::test_a_registration_in_flight_keeps_the_flag_off",),
    ),
    Mutant(
        "fast-flag-old-snapshot", "a slow insert marks its queue from a repeatable-read snapshot",
        ((f"{BASE}/17_insert_fast.sql", "current_setting('transaction_isolation') <> 'read committed'", "false"),),
        ("tests/test_insert_fast_path.py::test_a_repeatable_read_insert_sets_no_flag",),
    ),
    Mutant(
        "fast-flag-in-callers-transaction", "a single insert in a caller's transaction marks (locks) its queue row",
        (("awa/client/api.py",
          "        return target.autocommit and target.info.transaction_status == pq.TransactionStatus.IDLE\n",
          "        return True\n"),),
        ("tests/test_insert_fast_path.py::test_an_insert_in_a_callers_transaction_locks_no_queue_row",),
    ),
    Mutant(
        "fast-insert-plans-on-sizes", "the single insert is planned for the table sizes it first sees (seq scans)",
        ((f"{BASE}/17_insert_fast.sql", "SET enable_seqscan = off                  -- ADR 0039\n", ""),),
        ("tests/test_hot_plans.py",),
    ),
    Mutant(
        "claim-plans-on-sizes", "the claim is planned for the table sizes it first sees (seq scans)",
        ((f"{BASE}/05_claim.sql", "SET plan_cache_mode = force_generic_plan\nSET enable_seqscan = off  -- ADR 0039\n",
          "SET plan_cache_mode = force_generic_plan\n"),),
        ("tests/test_hot_plans.py",),
    ),
    Mutant(
        "name-cache-ignores-partition-rule", "a queue name remembered as a partition passes the base-name check",
        (("awa/storage/validate.py",
          "    if allow_partition and value.__class__ is str and value in _known_queues:\n",
          "    if value.__class__ is str and value in _known_queues:\n"),),
        ("tests/test_bad_input.py::test_remembered_names_change_nothing_that_is_accepted",),
    ),
    Mutant(
        "new-job-fields-swapped", "the Job an insert returns swaps its priority and max_attempts",
        (("awa/storage/core.py",
          "        job_id, kind, queue, loads(batch.args_text[i]), batch.priority, 0, batch.max_attempts, 0, state, key,\n",
          "        job_id, kind, queue, loads(batch.args_text[i]), batch.max_attempts, 0, batch.priority, 0, state, key,\n"),),
        ("tests/test_client_enqueue.py::test_single_inserts_return_the_stored_rows",),
    ),
    Mutant(
        "shared-slots-most-work", "a claim walks equal-priority lanes with the most jobs first (starves)",
        ((f"{BASE}/05_claim.sql", "            e.priority, random()\n",
          "            e.priority, e.next_seq - coalesce(c.claim_seq, 0) DESC, random()\n"),),
        (f"{M}/test_capacity_machine.py::test_a_hot_partition_never_starves_a_cold_one_under_shared_slots",),
    ),
    Mutant(
        "cron-fire-unrecorded", "cron_fire does not refuse a tick already fired",
        ((f"{BASE}/13_cron.sql",
          "       OR (v_cron.last_enqueued_at IS NOT NULL AND p_fire_at <= v_cron.last_enqueued_at) THEN\n", " THEN\n"),
         (f"{BASE}/13_cron.sql", "    ON CONFLICT (name, fire_at) DO NOTHING;\n    IF NOT FOUND THEN\n        RETURN;\n    END IF;\n",
          "    ON CONFLICT (name, fire_at) DO NOTHING;\n")),
        (f"{M}/test_cron_machine.py::test_cron_machine_fires_every_tick_exactly_once", "tests/test_cron_fire.py"),
    ),
    Mutant(
        "claim-groups-busy-sent", "the batcher sends a group again while its statement is in flight",
        (("awa/worker/claim_batcher.py", "            if waiting and (setting, g) not in self._in_flight:\n",
          "            if waiting:\n"),),
        ("tests/test_worker_claim_batcher.py::test_the_batcher_is_a_behaviour_of_the_claim_groups_spec",
         "tests/test_worker_claim_batcher.py"),
    ),
    Mutant(
        "claim-groups-gone-ready", "requests whose claimer is gone make a group ready",
        (("awa/worker/claim_batcher.py", "                waiting[:] = [r for r in waiting if not r[2].done()]\n", ""),),
        ("tests/test_worker_claim_batcher.py::test_the_batcher_is_a_behaviour_of_the_claim_groups_spec",
         "tests/test_worker_claim_batcher.py"),
    ),
    Mutant(
        "claim-groups-clears-unsent", "a dispatch from idle drops the requests of the groups it does not send",
        (("awa/worker/claim_batcher.py",
          "            ready = [min(ready, key=lambda g: (g - after - 1) % self._groups)]\n",
          "            ready = [min(ready, key=lambda g: (g - after - 1) % self._groups)]\n"
          "            for g in range(self._groups):\n"
          "                if g not in ready:\n"
          "                    self._waiting.pop((setting, g), None)\n"),),
        ("tests/test_worker_claim_batcher.py::test_the_batcher_is_a_behaviour_of_the_claim_groups_spec",),
    ),
    Mutant(
        "retry-past-max", "a retry is allowed at attempt == max_attempts (attempt <= max; BrokenRetryPastMax)",
        ((f"{BASE}/06_lifecycle.sql", "ELSIF p_mode = 'retry' AND v_job.attempt < v_job.max_attempts THEN",
          "ELSIF p_mode = 'retry' AND v_job.attempt <= v_job.max_attempts THEN"),),
        (f"{M}/test_lifecycle_machine.py::test_lifecycle_machine_with_backoff_and_terminal_failures",
         "tests/test_client_lifecycle.py"),
    ),
    Mutant(
        "routing-signed-mod", "the SQL partition is mod() of the signed bigint hash (BrokenSignedMod)",
        ((f"{BASE}/01_routing.sql", "ELSE mod(__schema__.partition_hash64(p_key), p_partitions)::integer END",
          "ELSE mod(__schema__.partition_hash64_i64(p_key), p_partitions)::integer END"),),
        (f"{M}/test_routing_machine.py", "tests/test_routing_sql_twins.py"),
    ),
    Mutant(
        "sequence-after-bump", "sequencing numbers pending rows from the head after the bump (BrokenAfterBump)",
        ((f"{BASE}/03_lanes.sql", "               h.next_seq - 1 + row_number() OVER",
          "               h.next_seq + row_number() OVER"),),
        (f"{M}/test_producers_machine.py::test_concurrent_producers_machine",
         f"{M}/test_lifecycle_machine.py::test_lifecycle_machine_matches_the_spec_mirror_step_by_step",
         f"{M}/test_unique_machine.py::test_unique_machine_holds_every_invariant", "tests/test_lazy_numbering.py"),
    ),
    Mutant(
        "sequence-by-job-id", "pending rows numbered in job-id order, not pending_id order (BrokenAnyOrder)",
        ((f"{BASE}/03_lanes.sql", "                                                   ORDER BY t.pending_id) AS seq",
          "                                                   ORDER BY t.job_id) AS seq"),),
        # The producers machine's random runs rarely put two sessions' pending
        # rows of one lane, ids out of time order, in one sequencing round:
        # that case is pinned through its rules.
        (f"{M}/test_producers_machine.py::test_pinned_session_id_blocks_out_of_time_order",
         "tests/test_lazy_numbering.py::test_pending_rows_are_numbered_in_insert_order_not_job_id_order"),
    ),
    Mutant(
        "copy-skips-pending", "a COPY reserves without numbering the lane's pending rows first (BrokenCopySkipsPending)",
        ((f"{BASE}/03_lanes.sql", "    PERFORM __schema__.sequence_lanes(p_queue, p_priority, p_shard);\n", ""),),
        (f"{M}/test_producers_machine.py::test_concurrent_producers_machine",
         "tests/test_lazy_numbering.py", "tests/test_storage_lanes.py"),
    ),
    Mutant(
        "claim-sequences-unlocked", "a claim numbers a lane without its enqueue head lock (BrokenUnlocked)",
        ((f"{BASE}/05_claim.sql", "              AND e.enqueue_shard = v_lane.enqueue_shard\n            FOR UPDATE SKIP LOCKED;\n",
          "              AND e.enqueue_shard = v_lane.enqueue_shard;\n"),),
        ("tests/test_lazy_numbering.py::test_a_claim_never_numbers_a_lane_whose_head_a_copy_holds",),
    ),
    Mutant(
        "claim-ignores-pending", "the claim's lane list skips lanes that hold only jobs not numbered yet",
        ((f"{BASE}/05_claim.sql", "               OR EXISTS (SELECT 1 FROM __schema__.lane_pending AS p\n",
          "               OR false AND EXISTS (SELECT 1 FROM __schema__.lane_pending AS p\n"),),
        (f"{M}/test_producers_machine.py::test_concurrent_producers_machine",
         f"{M}/test_lifecycle_machine.py::test_lifecycle_machine_matches_the_spec_mirror_step_by_step",
         "tests/test_lazy_numbering.py"),
    ),
    Mutant(
        "sequence-numbers-cancelled", "sequencing numbers a pending job that was cancelled (its number is an uncounted hole)",
        ((f"{BASE}/03_lanes.sql", "        WHERE j.id = ANY (v_jid) AND j.state = 'available' AND j.lane_seq IS NULL\n",
          "        WHERE j.id = ANY (v_jid)\n"),),
        ("tests/test_lazy_numbering.py::test_cancelling_a_pending_job_leaves_no_hole",),
    ),
    Mutant(
        "cancel-pending-hole", "cancelling a job not numbered yet counts a hole in its lane",
        ((f"{BASE}/07_admin.sql", "IF v_job.state = 'available' AND v_job.lane_seq IS NOT NULL THEN",
          "IF v_job.state = 'available' THEN"),),
        ("tests/test_lazy_numbering.py::test_cancelling_a_pending_job_leaves_no_hole",),
    ),
    Mutant(
        "repartition-marks-unsequenced", "a width change marks the lanes without numbering their pending jobs first",
        ((f"{BASE}/16_repartition.sql", "    HAVING count(*) > 0;\n", "    HAVING false;\n"),),
        ("tests/test_lazy_numbering.py::test_a_width_change_numbers_pending_jobs_before_it_marks",),
    ),
    Mutant(
        "enqueue-batch-seq-after-bump", "a batch numbers its rows from the head after the bump (BrokenReserveAfterBump)",
        ((f"{BASE}/04_enqueue.sql", "        SELECT l.*, b.next_seq - l.n AS start\n",
          "        SELECT l.*, b.next_seq - l.n + 1 AS start\n"),),
        (f"{M}/test_producers_machine.py::test_concurrent_producers_machine",
         f"{M}/test_concurrent_lanes.py::test_concurrent_copy_keeps_lanes_commit_ordered",
         f"{M}/test_lifecycle_machine.py::test_lifecycle_machine_matches_the_spec_mirror_step_by_step",
         "tests/test_client_enqueue.py"),
    ),
    Mutant(
        "leader-renew-from-expiry", "a renewal extends the lease from its old expiry, not from now (BrokenRenewFromExpiry)",
        ((f"{BASE}/11_leader_lease.sql", "            expires_at = excluded.expires_at,\n",
          "            expires_at = CASE WHEN l.holder = excluded.holder THEN l.expires_at + p_ttl\n"
          "                              ELSE excluded.expires_at END,\n"),),
        (f"{M}/test_leader_lease_machine.py", "tests/test_worker_leader_lease.py"),
    ),
    Mutant(
        "claim-no-batch-limit", "the claim loop asks for every free slot, not min(claim_batch_size, free) (BrokenNoBatchLimit)",
        (("awa/worker/runtime.py", "want = min(plan.claim_batch_size, queue.slots.limit - queue.slots.in_use)",
          "want = queue.slots.limit - queue.slots.in_use"),),
        (f"{M}/test_capacity_machine.py", "tests/test_worker_runtime.py"),
    ),
    Mutant(
        "claim-groups-unwrapped", "queues are dealt into groups without % groups (BrokenUnwrappedGroups)",
        (("awa/worker/claim_batcher.py",
          "group = self._group_of[queue] = (len(self._group_of) + self._offset) % self._groups",
          "group = self._group_of[queue] = len(self._group_of) + self._offset"),),
        ("tests/test_worker_claim_batcher.py::test_the_batcher_is_a_behaviour_of_the_claim_groups_spec",
         "tests/test_worker_claim_batcher.py"),
    ),
    Mutant(
        "cron-resume-past-next", "the resume point is taken as a tick to skip: iteration starts a minute after the "
        "last fired tick, so the tick after it is never fired (BrokenCursorOffByOne)",
        (("awa/worker/cron.py", "    for tick in CronSim(cron_expr, after.astimezone(tz)):\n",
          "    for tick in CronSim(cron_expr, after.astimezone(tz) + dt.timedelta(minutes=1)):\n"),),
        (f"{M}/test_cron_machine.py::test_cron_machine_fires_every_tick_exactly_once", "tests/test_cron_fire.py"),
    ),
    Mutant(
        "lost-commit-not-read-back", "a COMMIT whose answer is lost raises, though its transaction id is known",
        (("awa/storage/outcome.py", '            return "read" if can_connect else "unknown"\n',
          '            return "failed"\n'),),
        ("tests/test_commit_outcome.py::test_a_batch_whose_commit_answer_is_lost_is_read_back_as_committed",),
    ),
    Mutant(
        "answered-error-in-doubt", "an ERROR the server answered on a live connection is taken for a lost one",
        (("awa/storage/outcome.py", '    return exc.sqlstate is not None and severity not in ("FATAL", "PANIC")\n',
          '    return False\n'),),
        ("tests/test_commit_outcome.py::test_an_error_the_server_answers_is_raised_as_it_is",),
    ),
    Mutant(
        "lost-single-insert-plain-error", "a single insert cut in flight raises a plain error, as if nothing was written",
        (("awa/storage/outcome.py", '        return "failed" if writes is None else "unknown"\n', '        return "failed"\n'),),
        ("tests/test_commit_outcome.py::test_a_single_insert_whose_answer_is_lost_is_reported_unknown",),
    ),
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def apply(tree: Path, mutant: Mutant) -> None:
    for rel, old, new in mutant.edits:
        path = tree / rel
        text = path.read_text(encoding="utf-8")
        count = text.count(old)
        if count != 1:
            raise SystemExit(f"mutant {mutant.name}: expected one match in {rel}, found {count}: {old!r}")
        path.write_text(text.replace(old, new), encoding="utf-8")


FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def run_one(mutant: Mutant, env: dict[str, str], timeout: float, python: str) -> tuple[str, float, str]:
    """(killed-by test id or SURVIVED or TIMEOUT, seconds, log tail)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"awa-mutant-{mutant.name}-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(ROOT, tree, ignore=COPY_IGNORE)
        apply(tree, mutant)
        child_env = {**env, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
        check = subprocess.run([python, "-c", "import awa; print(awa.__file__)"], cwd=tree, env=child_env,
                               capture_output=True, text=True)
        if not check.stdout.strip().startswith(str(tree)):
            raise SystemExit(f"mutant {mutant.name}: the copy imports awa from {check.stdout.strip()!r}")
        for test in mutant.tests:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                return "TIMEOUT", time.monotonic() - started, ""
            cmd = [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-n", "0", test]
            try:
                proc = subprocess.run(cmd, cwd=tree, env=child_env, capture_output=True, text=True, timeout=left)
            except subprocess.TimeoutExpired:
                return "TIMEOUT", time.monotonic() - started, f"{test} timed out"
            out = proc.stdout + proc.stderr
            if proc.returncode in (3, 4):  # internal or usage error: not a kill
                raise SystemExit(f"mutant {mutant.name}: pytest {test} could not run (exit {proc.returncode}):\n{out[-3000:]}")
            if proc.returncode not in (0, 5):
                hit = FAILED.search(out)
                return (hit.group(1) if hit else f"{test} (exit {proc.returncode})"), time.monotonic() - started, out[-2000:]
    return "SURVIVED", time.monotonic() - started, ""


def table(mutants: list[Mutant], results: dict[str, tuple[str, float, str]]) -> str:
    """mutant | what | killed by | seconds, one row per mutant."""
    rows = [("mutant", "what", "killed by", "seconds")]
    rows += [(m.name, m.what, results[m.name][0], f"{results[m.name][1]:.0f}") for m in mutants]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3].rjust(7))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 7)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant (default 600)")
    parser.add_argument("-k", dest="select", default=None,
                        help="only mutants whose name contains this (several: comma-separated)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the output of the killing run")
    args = parser.parse_args(argv)
    wanted = None if args.select is None else [w for w in args.select.split(",") if w]
    mutants = [m for m in MUTANTS if wanted is None or any(w in m.name for w in wanted)]
    if args.list:
        for m in mutants:
            print(f"{m.name:<30} {m.what}")
        return 0
    for m in mutants:  # every substitution must still match before anything runs
        for rel, old, _ in m.edits:
            if (ROOT / rel).read_text(encoding="utf-8").count(old) != 1:
                print(f"mutant {m.name}: the text to replace is not (exactly once) in {rel}", file=sys.stderr)
                return 2
        for test in m.tests:
            if not (ROOT / test.split("::")[0]).is_file():
                print(f"mutant {m.name}: no test file {test}", file=sys.stderr)
                return 2
    env = dict(os.environ)
    env.setdefault("HYPOTHESIS_PROFILE", "ci")
    env["AWA_MACHINES_NO_SHRINK"] = "1"  # a kill needs a failure, not its smallest form
    embedded = None
    if not env.get("DATABASE_URL"):
        from awa.db.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres().start()
        env["DATABASE_URL"] = embedded.url
    log(f"{len(mutants)} mutants, {args.jobs} at a time, {args.timeout:.0f}s each at most")
    results: dict[str, tuple[str, float, str]] = {}

    def task(m: Mutant) -> None:
        log(f"start  {m.name}")
        results[m.name] = verdict = run_one(m, env, args.timeout, sys.executable)
        log(f"done   {m.name}: {verdict[0]} ({verdict[1]:.0f}s)")
        if args.verbose and verdict[2]:
            print(verdict[2], flush=True)

    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(task, mutants))
    finally:
        if embedded is not None:
            embedded.stop()
    print()
    print(table(mutants, results))
    alive = [m.name for m in mutants if results[m.name][0] in ("SURVIVED", "TIMEOUT")]
    print(f"\n{len(mutants) - len(alive)} of {len(mutants)} mutants killed" + (f"; alive: {', '.join(alive)}" if alive else ""))
    return 1 if alive else 0


if __name__ == "__main__":
    sys.exit(main())
