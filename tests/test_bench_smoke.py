"""Smoke runs of the benchmark harness at tiny N against the test PostgreSQL.

No speed assertions (machines are shared and noisy): these check that the
harness runs, that its JSON has the documented shape and that index routing
lands exactly ``total / width`` jobs per partition.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import psycopg
import pytest

# bench/ is a top-level package of the repository, not of the installed ``awa``.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import producer  # noqa: E402
from bench.__main__ import paired_ratios, quartiles  # noqa: E402
from bench.harness import Progress, fmt_spread, median, percentile  # noqa: E402

BENCH_DIR = REPO_ROOT / "bench"


def test_producer_index_routing_is_exact_per_partition(database_url: str) -> None:
    scenario = producer.Scenario("w4 index", 4, "index")
    result = producer.run_ours(database_url, scenario, total=40, chunk=10)

    assert result["ok"] is True
    assert result["inserted"] == 40
    assert result["jobs_per_s"] > 0 and result["elapsed_s"] > 0
    queues = result["physical_queues"]
    assert len(queues) == 4
    # Exactly 10 per partition, read back from the database.
    assert result["distribution"] == {q: 10 for q in queues}
    ok, detail = producer.check_distribution(scenario, queues, result["distribution"], 40)
    assert ok, detail
    assert detail == "exact 10/10/10/10"


def test_producer_single_queue_and_keyed_routing(database_factory) -> None:
    single_url = database_factory()
    single = producer.run_ours(single_url, producer.Scenario("single", None, "none"), total=25, chunk=10)
    assert single["distribution"] == {"bench_single": 25}

    keyed_url = database_factory()
    scenario = producer.Scenario("w4 key", 4, "key")
    keyed = producer.run_ours(keyed_url, scenario, total=60, chunk=25)
    assert sum(keyed["distribution"].values()) == 60
    assert set(keyed["distribution"]) <= set(keyed["physical_queues"])
    # Every stored job sits in the partition its key routes to.
    from awa.routing import PartitionedQueue

    pq = PartitionedQueue(scenario.queue, 4)
    with psycopg.connect(keyed_url) as conn:
        rows = conn.execute("SELECT queue, ordering_key, args->>'seq' FROM awa.jobs").fetchall()
    assert len(rows) == 60
    for queue, key, seq in rows:
        assert bytes(key) == producer.key_for(int(seq)).encode()
        assert queue == pq.queue_for_key(producer.key_for(int(seq)))


def test_check_distribution_rejects_uneven_or_stray_rows() -> None:
    scenario = producer.Scenario("w2 index", 2, "index")
    assert producer.check_distribution(scenario, ["a", "b"], {"a": 5, "b": 5}, 10)[0] is True
    assert producer.check_distribution(scenario, ["a", "b"], {"a": 6, "b": 4}, 10)[0] is False
    assert producer.check_distribution(scenario, ["a", "b"], {"a": 5, "c": 5}, 10)[0] is False
    assert producer.check_distribution(scenario, ["a", "b"], {"a": 5, "b": 4}, 10)[0] is False
    assert producer.expected_index_distribution(["a", "b", "c"], 10) == {"a": 4, "b": 3, "c": 3}


def test_keyed_landing_matches_routing_functions(database_url: str) -> None:
    landing = producer.keyed_landing(database_url, width=4, shards=8, total=200, chunk=50)
    assert landing["matches_routing_functions"] is True
    assert len(landing["counts"]) == 4 and all(len(row) == 8 for row in landing["counts"])
    assert sum(map(sum, landing["counts"])) == 200
    # More than one shard is used: the shard really comes from the key.
    assert sum(1 for row in landing["counts"] for n in row if n) > 4


def test_harness_quick_run_writes_documented_json(pg_server_url: str, tmp_path: Path, capsys) -> None:
    from bench.__main__ import main

    code = main(
        [
            "--quick", "--jobs", "40", "--chunk", "10", "--rounds", "1", "--only", "producer",
            "--no-awa-pg", "--no-plots", "--no-progress",
            "--database-url", pg_server_url, "--results-dir", str(tmp_path),
        ]
    )
    assert code == 0
    data = json.loads((tmp_path / "latest.json").read_text())
    assert set(data) >= {"meta", "config", "producer", "keyed_landing", "targets", "errors"}
    assert data["errors"] == []
    assert data["meta"]["server_version"] and data["meta"]["cpu_count"]
    assert "disabled" in data["meta"]["awa_pg_unavailable"]
    summary = data["producer"]["summary"]
    assert [s.name for s in producer.SCENARIOS] == list(summary)
    for name, row in summary.items():
        assert row["ours"]["rounds"] == 1 and row["ours"]["jobs_per_s"] > 0, name
        assert row["ours"]["distribution_ok"] is True, name
        assert row["awa_pg"]["jobs_per_s"] is None  # not run, and said so
    assert summary["w8 index"]["ours"]["distribution"] == "exact " + "/".join(["5"] * 8)
    assert summary["single"]["ours"]["vs_single"] == pytest.approx(1.0)
    # The control repeats "single" on the same queue; one round gives no quartiles.
    assert summary[producer.CONTROL]["ours"]["distribution"] == "40"
    assert summary[producer.CONTROL]["ours"]["vs_single_quartiles"] is None
    assert summary["w4 key"]["ours"]["vs_same_payload"] > 0  # against "w1 key", same round
    # The chunk-interleaved section: one round, every scenario, 40 jobs in 4 chunks each.
    interleaved = data["producer_interleaved"]
    assert data["config"]["interleaved_rounds"] == 1 and len(interleaved["rounds"]) == 1
    assert {name: len(chunks) for name, chunks in interleaved["rounds"][0].items()} == {
        s.name: 4 for s in producer.SCENARIOS
    }
    assert list(interleaved["summary"]) == [s.name for s in producer.SCENARIOS]
    assert interleaved["summary"]["single"]["vs_single"] == pytest.approx(1.0)
    names = [t["target"] for t in data["targets"]]
    assert "producer single queue: ours / awa-pg" in names
    assert any(name.startswith("control, single, again / single") for name in names)
    assert "producer w4 index / single (ours, chunk-interleaved)" in names
    printed = capsys.readouterr().out
    assert "| w4 index |" in printed and "awa-pg side not run" in printed
    assert "chunk-interleaved" in printed
    # The harness cleaned up after itself: none of its databases is left.
    # (Only this run's: another harness test may be running on the same server.)
    created = data["meta"]["databases"]
    assert any(name.startswith("bench_ours_") for name in created)
    with psycopg.connect(pg_server_url) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (created,)).fetchall()
    assert left == []


@pytest.mark.parametrize("slots", ["per-partition", "shared"])
def test_e2e_tiny_drain(database_url: str, slots: str) -> None:
    from bench import e2e

    result = e2e.run_ours(database_url, total=30, chunk=10, width=2, workers=4, probe_jobs=3, timeout_s=60, slots=slots)
    assert result["ok"] is True and result["stalled"] is False and result["slots"] == slots
    assert result["completed"] == 30 and result["jobs_per_s"] > 0
    assert result["probe_count"] == 3
    assert 0 <= result["pickup_p50_ms"] <= result["pickup_p99_ms"]


@pytest.mark.parametrize("slots", ["per-partition", "shared"])
def test_e2e_tiny_drain_in_two_worker_processes(database_url: str, slots: str) -> None:
    from bench import e2e

    result = e2e.run_ours(
        database_url, processes=2, total=40, chunk=10, width=2, workers=4, probe_jobs=4, timeout_s=60, slots=slots
    )
    assert result["ok"] is True and result["stalled"] is False, result
    assert result["processes"] == 2 and "worker_exit_codes" not in result  # both children exited cleanly
    assert result["completed"] == 40 and result["jobs_per_s"] > 0
    assert result["probe_count"] == 4
    with psycopg.connect(database_url) as conn:
        states = dict(conn.execute("SELECT state::text, count(*) FROM awa.jobs GROUP BY 1").fetchall())
    assert states == {"completed": 44}  # every job and probe ran once, nothing left running


def test_worker_processes_split_the_workers_and_stop_cleanly_when_never_started() -> None:
    from bench.e2e import per_partition_workers
    from bench.worker_processes import WorkerProcesses

    assert per_partition_workers(256, 4, 2) == 32 and per_partition_workers(256, 1, 1) == 256
    assert per_partition_workers(256, 3, 2) == 43  # rounded up: never fewer than asked for
    from awa.routing import PartitionedQueue
    from bench.e2e import worker_configs

    pq = PartitionedQueue("q", 4)
    assert worker_configs(pq, 256, 2, "shared") == [{"name": "q", "partitions": 4, "shared_slots": True, "max_workers": 128}]
    assert worker_configs(pq, 256, 2, "per-partition") == pq.queue_configs(32)
    with pytest.raises(ValueError, match="slots must be one of"):
        worker_configs(pq, 256, 2, "split")
    assert WorkerProcesses(print, (), 2, 0).stop(timeout_s=1) == []


def test_awa_pg_side_never_imports_this_repository() -> None:
    tree = ast.parse((BENCH_DIR / "awa_pg_side.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "bench" not in imported
    assert "awa" in imported  # awa-pg's package, from its own virtualenv (run with python -I)
    assert "psycopg" not in imported  # not installed in that virtualenv


def test_interleaved_run_takes_turns_and_stores_every_job(database_url: str) -> None:
    scenarios = (producer.SCENARIOS[0], producer.Scenario("w2 index", 2, "index"), producer.Scenario("w4 key", 4, "key"))
    result = producer.run_ours_interleaved(database_url, scenarios, total=30, chunk=10, shift=1)
    assert result["ok"] is True, result
    assert {name: len(chunks) for name, chunks in result["chunk_s"].items()} == {s.name: 3 for s in scenarios}
    assert all(t > 0 for chunks in result["chunk_s"].values() for t in chunks)
    # Key strings and the routing call are timed apart: none for single, a routing
    # call for every routed chunk, key strings only where jobs are keyed.
    spent = result["opts_s"]
    assert spent["single"] == {"keys": [0.0] * 3, "route": [0.0] * 3}
    assert spent["w2 index"]["keys"] == [0.0] * 3
    for s in scenarios[1:]:
        assert all(0 < r + k < c for r, k, c in zip(spent[s.name]["route"], spent[s.name]["keys"], result["chunk_s"][s.name]))
    assert all(k > 0 for k in spent["w4 key"]["keys"])
    stored = producer.stored_distribution(database_url)
    assert stored["bench_single"] == 30 and stored["bench_w2_index"] == 15 and stored["bench_w2_index__p1"] == 15
    assert sum(n for q, n in stored.items() if q.startswith("bench_w4_key")) == 30


def test_summarise_interleaved_compares_median_chunks_round_by_round() -> None:
    from bench.__main__ import summarise_interleaved

    # Round 1: w4 index takes twice single's steady chunk time; round 2: the same
    # except for one slow chunk of its own, which the median chunk leaves out.
    rounds = [
        {"single": [0.03, 0.01, 0.01], "w4 index": [0.05, 0.02, 0.02], "w4 key": [0.04, 0.02, 0.02], "w1 key": [0.02, 0.01, 0.01]},
        {"single": [0.03, 0.01, 0.01], "w4 index": [0.02, 0.02, 0.09], "w4 key": [0.04, 0.02, 0.02], "w1 key": [0.02, 0.02, 0.02]},
    ]
    summary = summarise_interleaved(rounds, total=30)
    assert list(summary) == ["single", "w4 index", "w4 key", "w1 key"]  # the scenarios' order
    assert summary["w4 index"]["vs_single"] == pytest.approx(0.5)
    assert summary["w4 index"]["jobs_per_s"] == pytest.approx(median([30 / 0.09, 30 / 0.13]))
    assert summary["w4 key"]["vs_same_payload"] == pytest.approx(median([0.5, 1.0]))
    assert "vs_same_payload" not in summary["w4 index"]
    assert "ceiling" not in summary["w4 index"]  # no opts timings given


def test_summarise_interleaved_splits_the_ratio_into_opts_and_the_rest() -> None:
    from bench.__main__ import summarise_interleaved

    # single: 10 ms chunks; w4 key: 14 ms chunks, of which 1.5 ms build the key
    # strings and 0.5 ms route them.
    rounds = [{"single": [0.010, 0.010, 0.010], "w4 key": [0.014, 0.014, 0.014]}] * 3
    none = {"keys": [0.0] * 3, "route": [0.0] * 3}
    opts = [{"single": none, "w4 key": {"keys": [0.0015] * 3, "route": [0.0005] * 3}}] * 3
    row = summarise_interleaved(rounds, total=30, opts_rounds=opts)["w4 key"]
    assert row["vs_single"] == pytest.approx(10 / 14)
    assert row["ceiling"] == pytest.approx(10 / 12)  # what keys and routing alone leave
    assert row["ceiling_keys_only"] == pytest.approx(10 / 11.5)
    assert row["vs_single_without_opts"] == pytest.approx(10 / 12)  # the rest: 12 ms against 10
    assert row["keys_ms"] == pytest.approx(1.5) and row["route_ms"] == pytest.approx(0.5)
    assert row["chunk_ms"] == pytest.approx(14.0)
    assert summarise_interleaved(rounds, total=30, opts_rounds=opts)["single"]["ceiling"] == pytest.approx(1.0)


def test_small_helpers() -> None:
    assert median([3.0, None, 1.0, 2.0]) == 2.0 and median([None]) is None
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0 and percentile([], 99) is None
    assert paired_ratios({1: 2.0, 2: 3.0, 3: 1.0}, {1: 1.0, 2: 0.0}) == [2.0]  # round 2 failed, 3 unpaired
    assert quartiles([1.0, 2.0, 3.0]) is None
    assert quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == [2.0, 4.0]
    assert fmt_spread(0.934, [0.881, 0.99]) == "0.93 (0.88–0.99)" and fmt_spread(0.934, None) == "0.93"
    bar = Progress(2, enabled=False)
    bar.step("a")
    bar.step("b")
    bar.step("c")
    assert bar.done == 2


def test_harness_quick_e2e_reports_each_process_count(pg_server_url: str, tmp_path: Path, capsys) -> None:
    from bench.__main__ import main

    code = main(
        [
            "--quick", "--jobs", "30", "--chunk", "10", "--rounds", "1", "--only", "e2e", "--widths", "1,2",
            "--worker-processes", "1,2", "--workers", "4", "--probe-jobs", "2",
            "--no-awa-pg", "--no-plots", "--no-progress",
            "--database-url", pg_server_url, "--results-dir", str(tmp_path),
        ]
    )
    assert code == 0
    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["errors"] == []
    summary = data["e2e"]["summary"]
    assert set(summary) == {"1", "2"} and all(set(table) == {"1", "2"} for table in summary.values())
    for table in summary.values():
        assert table["1"]["ours"]["vs_width_1"] == pytest.approx(1.0)
        assert table["2"]["ours"]["jobs_per_s"] > 0
        assert "ours_shared" not in table["1"]  # at width 1 shared slots are the plain queue
        assert table["2"]["ours_shared"]["jobs_per_s"] > 0 and table["2"]["shared_vs_per_partition"] > 0
    names = [t["target"] for t in data["targets"]]
    assert "end to end width 2, 2 worker processes: ours / awa-pg" in names
    printed = capsys.readouterr().out
    assert "### End to end, 1 worker process " in printed and "### End to end, 2 worker processes " in printed


def test_single_inserts_land_where_they_are_routed(database_url: str) -> None:
    from awa.routing import PartitionedQueue
    from bench import single, single_common

    cfg = single.Config("async", 4, 4, True)
    res = single.run_ours(database_url, cfg, duration_s=0.3, warmup_s=0.1)
    assert res["errors"] == 0 and res["measured"] > 0 and res["jobs_per_s"] > 0
    assert 0 < res["p50_ms"] <= res["p99_ms"]
    pq = PartitionedQueue(single.QUEUE, 4)
    with psycopg.connect(database_url) as conn:
        # numbered, or waiting in lane_pending for the next claim (ADR 0028)
        rows = conn.execute(
            "SELECT j.queue, j.ordering_key, (j.args->>'seq')::int, coalesce(j.lane_seq, p.pending_id) FROM awa.jobs AS j"
            " LEFT JOIN awa.lane_pending AS p ON p.job_id = j.id AND p.queue = j.queue").fetchall()
    assert len(rows) >= res["measured"]
    for queue, key, seq, lane_seq in rows:
        assert bytes(key).decode() == single_common.key_for(seq) and queue == pq.queue_for_key(bytes(key))
        assert lane_seq is not None
    threads = single.run_ours(database_url, single.Config("threads", 3, 2, False), duration_s=0.2, warmup_s=0.05)
    assert threads["errors"] == 0 and threads["measured"] > 0


def test_single_plain_baselines_insert_rows(database_url: str) -> None:
    from bench import single

    for notify in (False, True):
        res = single.run_plain(database_url, single.Config("threads", 2, 1, False), notify, duration_s=0.2, warmup_s=0.05)
        assert res["errors"] == 0 and res["measured"] > 0, res
        with psycopg.connect(database_url) as conn:
            stored = conn.execute(f"SELECT count(*) FROM {single.PLAIN_SCHEMA}.jobs").fetchone()[0]
        assert stored >= res["measured"]


def test_single_common_percentile_and_window() -> None:
    from bench import single_common

    assert single_common.percentile([5.0, 1.0, 3.0], 50) == 3.0
    out = single_common.figures([0.001, 0.002, 0.004], 0.5, 1, "boom")
    assert out["jobs_per_s"] == 6.0 and out["p99_ms"] == 4.0 and out["errors"] == 1
    assert single_common.figures([], 0.5, 0, None)["jobs_per_s"] is None


def test_harness_quick_single_section(pg_server_url: str, tmp_path: Path, capsys) -> None:
    from bench.__main__ import main
    from bench import single

    code = main(
        [
            "--quick", "--only", "single", "--single-duration", "0.2", "--single-warmup", "0.05",
            "--no-awa-pg", "--no-plots", "--no-progress",
            "--database-url", pg_server_url, "--results-dir", str(tmp_path),
        ]
    )
    assert code == 0
    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["errors"] == []
    section = data["single"]
    cfgs = single.configs(full=False, quick=True)
    assert section["configs"] == [c.name for c in cfgs]
    # Per round: two plain baselines per (mode, producers) group, ours per config.
    groups = {(c.mode, c.producers) for c in cfgs}
    assert len(section["runs"]) == 2 * len(groups) + len(cfgs)
    for name, row in section["summary"]["configs"].items():
        assert row["ours"]["jobs_per_s"] > 0 and row["ours"]["rounds"] == 1, name
        assert row["awa_pg"]["jobs_per_s"] is None  # not run
        assert row["ours_vs_plain"] > 0 and row["ours_p99_vs_plain_p99"] > 0
    assert section["summary"]["configs"]["async p8 w8 key"]["ours_vs_width_1"] > 0
    ours_runs = [r for r in section["runs"] if r["side"] == "ours"]
    assert all(r["result"]["waits"]["samples"] > 0 for r in ours_runs)
    printed = capsys.readouterr().out
    assert "### Single inserts" in printed and "| async p8 w8 key |" in printed
    assert all(full.producers in (8, 32, 64) for full in single.configs(full=True, quick=False))
    assert len(single.configs(full=True, quick=False)) == 2 * 3 * 5 * 2


@pytest.mark.parametrize("durable", [True, False])
def test_bench_server_is_durable_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch, durable: bool) -> None:
    # The benchmarks measure what users run: PostgreSQL's durable defaults
    # (the test suite's embedded server has them off), and the report says so.
    from bench.harness import durability_label, open_server

    monkeypatch.delenv("DATABASE_URL", raising=False)
    with open_server(durable=durable) as server:
        meta = server.describe()
    flags = {name: meta[name] for name in ("fsync", "synchronous_commit", "full_page_writes")}
    assert flags == {name: "on" if durable else "off" for name in flags}
    assert meta["durable"] is durable
    label = durability_label(meta)
    assert label.startswith("durable (fsync=on") if durable else "DURABILITY OFF" in label


def test_single_widths_filter_the_matrix() -> None:
    from bench import single

    every = single.configs(False, False)
    some = single.configs(False, False, (1, 8))
    assert {c.width for c in every} == {1, 2, 4, 8, 16}
    assert {c.width for c in some} == {1, 8}
    assert some == [c for c in every if c.width in (1, 8)]


def test_repartition_bench_quick_run(pg_server_url: str, tmp_path: Path, capsys) -> None:
    from bench.__main__ import main

    code = main(["--quick", "--only", "repartition", "--database-url", pg_server_url,
                 "--results-dir", str(tmp_path)])
    assert code == 0  # nothing lost or duplicated, no FIFO violation
    runs = json.loads((tmp_path / "latest.json").read_text())["repartition"]["runs"]
    assert [(r["old"], r["new"]) for r in runs] == [(4, 8), (8, 4)]
    assert all(r["enqueued"] > 0 and r["lost"] == 0 and r["fifo_violations"] == 0 for r in runs)
    # Paced producers: the offered rate is the set one (quick: 200 jobs/s), half of it to unmoved keys.
    assert all(abs(r["offered_per_s_before"] - 200) < 20 and r["unmoved_ratio"] is not None for r in runs)
    assert all(abs(r["unmoved_offered_per_s_before"] - 100) < 10 for r in runs)
    out = capsys.readouterr().out
    assert "| 4 -> 8 | 1 |" in out and "8 -> 4: median unmoved ratio" in out


def test_cpu_probe_runs_both_parts_and_does_each_job_once(database_url: str) -> None:
    from bench import cpu_probe

    with psycopg.connect(database_url) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        if not Path(f"/proc/{pid}/schedstat").exists():
            pytest.skip("the server's backends are not on this machine")
    keys = cpu_probe.probe_keys(database_url, rounds=2, chunk=16, width=2, batch=4)
    for side in ("unkeyed", "keyed"):
        assert keys[side]["server_us_per_job"] > 0 and keys[side]["client_us_per_job"] > 0
    assert keys["keyed_vs_unkeyed_total"]["median"] > 0
    single = cpu_probe.probe_single(database_url, rounds=2, chunk=10)
    assert single["ours"]["server_us_per_job"] > 0 and single["ours_vs_plain_total"]["median"] > 0
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT awa.logical_queue(queue), state::text, count(*) FROM awa.jobs GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    # keys: 48 jobs a side, 4 to warm up and 2 x 16 measured, each claimed and completed once;
    # single: 2 to warm up and 2 x 10 measured inserts
    assert rows == [("probe_keyed", "available", 12), ("probe_keyed", "completed", 36),
                    ("probe_single", "available", 22),
                    ("probe_unkeyed", "available", 12), ("probe_unkeyed", "completed", 36)]


def test_keys_sampler_reads_the_running_jobs_and_counts_keys_above_their_limit(database_url: str) -> None:
    from awa import Client
    from bench import keys as keys_bench

    with Client(database_url) as client, psycopg.connect(database_url, autocommit=True) as conn:
        client.migrate()
        conn.execute(keys_bench.SAMPLER_SETTINGS)
        client.insert_many_copy([{"n": i} for i in range(6)], kind="k", queue="plain",
                                opts=[{"ordering_key": f"k{i % 2}"} for i in range(6)])
        assert len(client.claim(["plain"], 6)) == 6
        # No policy: the running jobs are still read (the same load as a keyed drain), no violation.
        assert keys_bench.violations_now(conn) == (6, 0)
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + keys_bench.VIOLATIONS))
        assert "Seq Scan on jobs" not in plan, plan
        # Two running jobs of one key under a limit of 1 (a policy created while they run takes the
        # higher count as its limit and lowers it later: set the row as a broken claim would leave it).
        client.create_key_policy("plain", 1, from_ordering_key=True)
        conn.execute("UPDATE awa.key_policies SET max_in_flight = 1, pending_max = NULL WHERE name = 'plain'")
        assert keys_bench.violations_now(conn) == (6, 2)
