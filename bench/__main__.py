"""``python -m bench`` (``make bench``): producer path, partition widths, end to end,
side by side with awa-pg on the same PostgreSQL server, interleaved round by round.

Prints a markdown table on stdout, writes JSON and PNG plots to bench/results/.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import e2e as e2e_bench
from bench import producer as producer_bench
from bench import single_section
from bench.harness import (
    REPO_ROOT,
    RESULTS_DIR,
    Progress,
    durability_label,
    Server,
    fmt_ms,
    fmt_rate,
    fmt_ratio,
    fmt_spread,
    machine_info,
    median,
    open_server,
    prepare_awa_pg,
    ratio,
    write_results,
)

SIDES = ("ours", "awa_pg")
# End to end only: ours with a partitioned queue's slots shared by its partitions
# (shared_queue_config, ADR 0014), at widths above 1 (at width 1 it is "ours").
SHARED = "ours_shared"
E2E_WIDTHS = (1, 2, 4, 8)
# Scenario -> the one-queue scenario with the same jobs and opts payload: their
# ratio is what partitioning itself costs (w1 is exactly a plain queue).
SAME_PAYLOAD = {"w4 index, dicts": "w1 index, dicts", "w4 key": "w1 key"}

# Targets from issue 8 (same run, same server).
TARGET_PRODUCER_VS_AWA_PG = 2.0
TARGET_PARTITIONED_VS_SINGLE = 0.95
TARGET_E2E_VS_AWA_PG = 1.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small N, one round: a smoke run (figures not meaningful)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per scenario (default 15 producer, 15 producer chunk-interleaved, 7 end to end, 3 repartition)")
    p.add_argument(
        "--only",
        action="append",
        choices=("producer", "e2e", "routing", "retention", "single", "keys", "repartition"),
        help="run only these parts (repeatable; default all)",
    )
    p.add_argument("--no-awa-pg", action="store_true", help="skip the awa-pg side")
    p.add_argument("--jobs", type=int, default=None, help="jobs per run (default 20000; quick 2000)")
    p.add_argument("--chunk", type=int, default=None, help="COPY chunk size (default 2000; quick 500)")
    p.add_argument("--workers", type=int, default=None, help="end-to-end workers in total, split over partitions (default 256)")
    p.add_argument("--widths", default=None, help="end-to-end widths, comma separated (default 1,2,4,8)")
    p.add_argument("--probe-jobs", type=int, default=None, help="pickup-latency probe jobs per e2e run (default 100)")
    p.add_argument(
        "--worker-processes",
        default=None,
        help="end-to-end worker processes, comma separated (default 1,2: one process, and one per core of a 2-core machine)",
    )
    p.add_argument("--stored", type=int, default=None, help="retention: finished rows stored for the reads (default 1000000)")
    p.add_argument("--backlog", type=int, default=None, help="retention: available jobs stored for the reads (default 20000)")
    p.add_argument("--retention-jobs", type=int, default=None, help="retention: jobs of the steady-state run (default 1000000)")
    p.add_argument("--retention-seconds", type=float, default=20.0, help="retention: completed retention in the steady-state run")
    p.add_argument("--sample-every", type=float, default=10.0, help="retention: seconds between table-size samples")
    p.add_argument("--pair-rounds", type=int, default=None, help="retention: paired with/without rounds (default 5)")
    p.add_argument("--round-jobs", type=int, default=None, help="retention: jobs per paired round (default 50000)")
    p.add_argument("--retention-parts", default="reads,steady,pairs", help="retention: comma-separated parts to run")
    p.add_argument("--single-duration", type=float, default=None, help="single: measured seconds per run (default 2; quick 0.5)")
    p.add_argument("--single-warmup", type=float, default=None, help="single: seconds before the measured window (default 0.5; quick 0.2)")
    p.add_argument("--single-rounds", type=int, default=None, help="single: rounds (default 3; quick 1)")
    p.add_argument("--single-full", action="store_true", help="single: every mode x producers x width x keyed")
    p.add_argument("--single-widths", default=None, help="single: only these widths, comma separated (default 1,2,4,8,16)")
    p.add_argument("--repartition-rate", type=float, default=None,
                   help="repartition: jobs/s offered in total on a fixed schedule (default 600; quick 200)")
    p.add_argument("--repartition-window", type=float, default=None,
                   help="repartition: seconds measured before and from the change (default 10; quick 1.5)")
    p.add_argument("--database-url", default=None, help="server to use (default DATABASE_URL, else embedded PostgreSQL 18)")
    p.add_argument(
        "--no-durability",
        action="store_true",
        help="embedded server with fsync, synchronous_commit and full_page_writes off (the test suite's "
        "settings); the report labels every figure DURABILITY OFF. Default: PostgreSQL's durable defaults",
    )
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    args.only = set(args.only or ("producer", "e2e", "routing", "single"))
    args.single_duration = args.single_duration or (0.5 if args.quick else 2.0)
    args.single_warmup = args.single_warmup if args.single_warmup is not None else (0.2 if args.quick else 0.5)
    args.single_rounds = args.single_rounds or args.rounds or (1 if args.quick else 3)
    args.single_widths = tuple(int(w) for w in args.single_widths.split(",")) if args.single_widths else None
    args.stored = args.stored or (20000 if args.quick else 1_000_000)
    args.backlog = args.backlog or (2000 if args.quick else 20_000)
    args.retention_jobs = args.retention_jobs or (20000 if args.quick else 1_000_000)
    args.pair_rounds = args.pair_rounds or (1 if args.quick else 5)
    args.round_jobs = args.round_jobs or (4000 if args.quick else 50_000)
    args.retention_parts = set(args.retention_parts.split(","))
    args.jobs = args.jobs or (2000 if args.quick else 20000)
    args.chunk = args.chunk or (500 if args.quick else 2000)
    args.workers = args.workers or (64 if args.quick else 256)
    args.probe_jobs = args.probe_jobs if args.probe_jobs is not None else (20 if args.quick else 100)
    args.widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else E2E_WIDTHS
    args.worker_processes = (
        tuple(int(n) for n in args.worker_processes.split(",")) if args.worker_processes else (1,) if args.quick else (1, 2)
    )
    # Single runs last 0.2-8 s on a shared machine and scatter by a third; odd
    # round counts give a true median. A producer run (0.3 s) scatters by
    # +-15 % independently of its neighbours, so only more rounds narrow the
    # median of its paired ratios (15 rounds cost about 2 minutes per side).
    args.producer_rounds = args.rounds or (1 if args.quick else 15)
    args.e2e_rounds = args.rounds or (1 if args.quick else 7)
    # Our scenarios taking turns chunk by chunk (producer.run_ours_interleaved):
    # a round of all of them costs about as much as one round of the other runs.
    args.interleaved_rounds = args.rounds or (1 if args.quick else 15)
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_bench_extra() -> bool:
    """matplotlib comes from the ``bench`` extra; install it into this interpreter once."""
    if importlib.util.find_spec("matplotlib") is not None:
        return True
    log("bench: installing the bench extra (matplotlib) into this environment")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{REPO_ROOT}[bench]"], capture_output=True, text=True
    )
    importlib.invalidate_caches()
    if proc.returncode != 0 or importlib.util.find_spec("matplotlib") is None:
        log(f"bench: could not install matplotlib, plots skipped: {proc.stderr.strip()[-300:]}")
        return False
    return True


# --- running one side of one measurement --------------------------------------


class Runner:
    """One database per side for the whole run, emptied before every measurement.

    Ours: TRUNCATE every table the migrations left empty (fast, no bloat carried
    over). awa-pg: ``install_queue_storage(reset=True)`` inside the side process,
    which is how awa's own benchmark resets. (A fresh ``CREATE DATABASE … TEMPLATE``
    per run costs 1-5 s on a busy 2-core machine; resetting costs well under one.)
    """

    def __init__(self, server: Server, awa_pg, args: argparse.Namespace) -> None:
        self.server = server
        self.awa_pg = awa_pg
        self.args = args
        self.urls: dict[str, str] = {}
        self._reset_sql: Any = None

    def prepare_databases(self) -> None:
        import psycopg
        from psycopg import sql

        from awa.storage.migrate import migrate

        url = self.server.create_database(self.server.name("bench_ours"))
        with psycopg.connect(url) as conn:
            migrate(conn, "awa")
            tables = conn.execute(
                "SELECT c.oid::regclass::text, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'awa' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            ).fetchall()
            empty = []
            for _, relname in tables:
                ident = sql.Identifier("awa", relname)
                if conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(ident)).fetchone()[0]:
                    empty.append(ident)
        # Tables holding seed rows (the migrations ledger, singletons) are kept.
        self._reset_sql = sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(empty))
        self.urls["ours"] = url
        if self.awa_pg.available:
            url = self.server.create_database(self.server.name("awa_pg_bench"))
            res = self.awa_pg.run({"op": "migrate", "database_url": url}, timeout_s=300)
            if res.get("ok"):
                self.urls["awa_pg"] = url
            else:
                self.awa_pg.python = None
                self.awa_pg.unavailable_reason = f"awa-pg migrate failed: {res.get('error')}"

    def available(self, side: str) -> bool:
        return side in self.urls

    def fresh(self, side: str) -> str:
        if side == "ours":
            import psycopg

            with psycopg.connect(self.urls["ours"], autocommit=True) as conn:
                conn.execute(self._reset_sql)
                conn.execute("VACUUM ANALYZE")
        return self.urls[side]

    def producer(self, side: str, scenario: producer_bench.Scenario) -> dict[str, Any]:
        url = self.fresh(side)
        if side == "ours":
            try:
                res = producer_bench.run_ours(url, scenario, self.args.jobs, self.args.chunk)
            except Exception as exc:
                res = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        else:
            res = self.awa_pg.run(
                {
                    "op": "producer",
                    "database_url": url,
                    "total": self.args.jobs,
                    "chunk": self.args.chunk,
                    "queue": scenario.queue,
                    "width": scenario.width,
                    "routing": scenario.routing,
                },
                timeout_s=300,
            )
        if res.get("ok"):
            ok, detail = producer_bench.check_distribution(
                scenario, res["physical_queues"], res["distribution"], self.args.jobs
            )
            res["distribution_ok"], res["distribution_detail"] = ok, detail
        return res

    def e2e(self, side: str, width: int, processes: int = 1) -> dict[str, Any]:
        slots = "shared" if side == SHARED else "per-partition"
        side = "ours" if side == SHARED else side
        url = self.fresh(side)
        timeout_s = max(30.0, self.args.jobs / 200)  # 20,000 jobs: 100 s, ~7x the slowest drain seen
        params = dict(
            total=self.args.jobs,
            chunk=self.args.chunk,
            width=width,
            workers=self.args.workers,
            probe_jobs=self.args.probe_jobs,
            probe_interval_ms=20,
            timeout_s=timeout_s,
            processes=processes,
        )
        if side == "ours":
            try:
                res = e2e_bench.run_ours(url, slots=slots, **params)
            except Exception as exc:
                res = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        else:
            # A pool big enough for one LISTEN connection per physical queue plus
            # the claimers (awa-pg stalls silently when its pool runs dry).
            res = self.awa_pg.run(
                {"op": "e2e", "database_url": url, "max_connections": 150, **params},
                timeout_s=timeout_s + 120,
            )
        return res


def interleaved(round_index: int) -> tuple[str, ...]:
    """Alternate which side goes first so drift and warm caches favour neither."""
    return SIDES if round_index % 2 == 0 else tuple(reversed(SIDES))


# --- summaries ----------------------------------------------------------------


def _by_round(runs: list[dict[str, Any]], **match: Any) -> dict[int, float]:
    """{round: jobs/s} of the successful runs matching ``match``."""
    out: dict[int, float] = {}
    for r in runs:
        if all(r.get(k) == v for k, v in match.items()):
            res = r["result"]
            if res.get("ok") and not res.get("stalled") and res.get("jobs_per_s"):
                out[r["round"]] = res["jobs_per_s"]
    return out


def paired_ratios(numerators: dict[int, float], denominators: dict[int, float]) -> list[float]:
    """The per-round ratios, for rounds where both runs succeeded."""
    return [numerators[r] / denominators[r] for r in numerators if denominators.get(r)]


def paired_ratio(numerators: dict[int, float], denominators: dict[int, float]) -> float | None:
    """Median over rounds of the per-round ratio. Runs of one round are seconds
    apart, so this cancels most of the slow drift a shared machine adds."""
    return median(paired_ratios(numerators, denominators))


def quartiles(values: list[float]) -> list[float] | None:
    """[first, third] quartile (inclusive method), or None with fewer than 4 values."""
    if len(values) < 4:
        return None
    q = statistics.quantiles(values, n=4, method="inclusive")
    return [q[0], q[2]]


def summarise_producer(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for scenario in producer_bench.SCENARIOS:
        row: dict[str, Any] = {"width": scenario.width, "routing": scenario.routing}
        for side in SIDES:
            mine = [r for r in runs if r["scenario"] == scenario.name and r["side"] == side]
            good = [r for r in mine if r["result"].get("ok")]
            row[side] = {
                "jobs_per_s": median([r["result"]["jobs_per_s"] for r in good]),
                "rounds": len(good),
                "failed": len(mine) - len(good),
                "errors": sorted({r["result"].get("error", "") for r in mine if not r["result"].get("ok")}),
                "distribution_ok": all(r["result"].get("distribution_ok") for r in good) if good else None,
                "distribution": good[0]["result"].get("distribution_detail") if good else None,
            }
        summary[scenario.name] = row
    for name, row in summary.items():
        for side in SIDES:
            per_round = paired_ratios(
                _by_round(runs, scenario=name, side=side), _by_round(runs, scenario="single", side=side)
            )
            row[side]["vs_single"] = median(per_round)
            row[side]["vs_single_quartiles"] = quartiles(per_round)
            row[side]["vs_single_of_medians"] = ratio(row[side]["jobs_per_s"], summary["single"][side]["jobs_per_s"])
        row["ours_vs_awa_pg"] = paired_ratio(
            _by_round(runs, scenario=name, side="ours"), _by_round(runs, scenario=name, side="awa_pg")
        )
        row["ours_vs_awa_pg_of_medians"] = ratio(row["ours"]["jobs_per_s"], row["awa_pg"]["jobs_per_s"])
    for name, base in SAME_PAYLOAD.items():
        if name in summary and base in summary:
            for side in SIDES:
                per_round = paired_ratios(
                    _by_round(runs, scenario=name, side=side), _by_round(runs, scenario=base, side=side)
                )
                summary[name][side]["vs_same_payload"] = median(per_round)
                summary[name][side]["vs_same_payload_quartiles"] = quartiles(per_round)
    return summary


def summarise_interleaved(
    rounds: list[dict[str, list[float]]],
    total: int,
    opts_rounds: list[dict[str, dict[str, list[float]]]] | None = None,
) -> dict[str, Any]:
    """Per scenario: jobs/s (median over rounds of ``total`` / its chunk seconds) and
    its ratio to ``single``: the median over rounds of single's median chunk time over
    its own. A median chunk is a steady one: it leaves out the first, cold chunk and
    the rare 50-70 ms chunk (a WAL segment being created, say) that otherwise decide
    much of a 20,000-job run's spread.

    With ``opts_rounds`` (per chunk, the seconds spent building the key strings,
    ``"keys"``, and in the routing call, ``"route"``), the ratio to ``single`` is
    also split into factors whose product is about the ratio itself:

    * ``ceiling``: single's chunk over single's chunk plus this scenario's keys
      and routing time, the ratio this scenario would read if ``enqueue_many_copy``
      cost exactly what it costs for ``single`` (``ceiling_keys_only``: the same
      with the key strings alone, the caller's own data, which no routing or
      enqueue code can make cheaper);
    * ``vs_single_without_opts``: single's chunk over this scenario's chunk less
      its keys and routing time: the jobs' construction and the enqueue call.
    """
    summary: dict[str, Any] = {}
    names = [s.name for s in producer_bench.SCENARIOS if rounds and s.name in rounds[0]]
    med = statistics.median
    for name in names:
        rates = [total / sum(r[name]) for r in rounds]
        row: dict[str, Any] = {"jobs_per_s": median(rates), "rounds": len(rounds)}
        for field, base in (("vs_single", "single"), ("vs_same_payload", SAME_PAYLOAD.get(name))):
            if base is None or base not in names:
                continue
            per_round = [med(r[base]) / med(r[name]) for r in rounds]
            row[field] = median(per_round)
            row[f"{field}_quartiles"] = quartiles(per_round)
        if opts_rounds and len(opts_rounds) == len(rounds) and "single" in names:
            row["chunk_ms"] = median([med(r[name]) * 1e3 for r in rounds])
            row["keys_ms"] = median([med(o[name]["keys"]) * 1e3 for o in opts_rounds])
            row["route_ms"] = median([med(o[name]["route"]) * 1e3 for o in opts_rounds])
            ceiling, keys_only, without = [], [], []
            for r, o in zip(rounds, opts_rounds):
                single = med(r["single"])
                spent = [k + t for k, t in zip(o[name]["keys"], o[name]["route"])]
                ceiling.append(single / (single + med(spent)))
                keys_only.append(single / (single + med(o[name]["keys"])))
                without.append(single / med([c - x for c, x in zip(r[name], spent)]))
            row["ceiling"] = median(ceiling)
            row["ceiling_keys_only"] = median(keys_only)
            row["vs_single_without_opts"] = median(without)
            row["vs_single_without_opts_quartiles"] = quartiles(without)
        summary[name] = row
    return summary


def e2e_sides(sides: list[str], width: int, round_index: int) -> list[str]:
    """The end-to-end runs of one (round, width), in turn: both sides, and ours
    with shared slots above width 1, in an order that rotates from round to round."""
    order = [*sides, SHARED] if width > 1 and "ours" in sides else list(sides)
    shift = (round_index + width) % len(order)
    return order[shift:] + order[:shift]


def summarise_e2e(runs: list[dict[str, Any]], widths: tuple[int, ...]) -> dict[str, Any]:
    """{processes: {width: row}} (processes and width as strings, for JSON)."""
    summary: dict[str, Any] = {}
    for processes in sorted({r.get("processes", 1) for r in runs}):
        table: dict[str, Any] = {}
        for width in widths:
            row: dict[str, Any] = {}
            for side in (*SIDES, SHARED):
                mine = [r for r in runs if r["width"] == width and r["side"] == side and r.get("processes", 1) == processes]
                if side == SHARED and not mine:
                    continue
                good = [r for r in mine if r["result"].get("ok") and not r["result"].get("stalled")]
                row[side] = {
                    "jobs_per_s": median([r["result"]["jobs_per_s"] for r in good]),
                    "pickup_p50_ms": median([r["result"].get("pickup_p50_ms") for r in good]),
                    "pickup_p99_ms": median([r["result"].get("pickup_p99_ms") for r in good]),
                    "enqueue_s": median([r["result"].get("enqueue_s") for r in good]),
                    "rounds": len(good),
                    "failed_or_stalled": len(mine) - len(good),
                    "errors": sorted(
                        {r["result"].get("error") or f"stalled at {r['result'].get('completed')} jobs" for r in mine if r not in good}
                    ),
                }
                row[side]["vs_width_1"] = paired_ratio(
                    _by_round(runs, width=width, side=side, processes=processes),
                    # at width 1 shared slots are ours: one plain queue
                    _by_round(runs, width=1, side="ours" if side == SHARED else side, processes=processes),
                )
            if SHARED in row:
                row["shared_vs_per_partition"] = paired_ratio(
                    _by_round(runs, width=width, side=SHARED, processes=processes),
                    _by_round(runs, width=width, side="ours", processes=processes),
                )
            row["ours_vs_awa_pg"] = paired_ratio(
                _by_round(runs, width=width, side="ours", processes=processes),
                _by_round(runs, width=width, side="awa_pg", processes=processes),
            )
            row["ours_vs_awa_pg_of_medians"] = ratio(row["ours"]["jobs_per_s"], row["awa_pg"]["jobs_per_s"])
            table[str(width)] = row
        summary[str(processes)] = table
    return summary


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: str, met: bool | None) -> None:
        targets.append({"target": name, "value": value, "goal": goal, "met": met})

    producer = results.get("producer", {}).get("summary")
    if producer:
        v = producer["single"]["ours_vs_awa_pg"]
        add("producer single queue: ours / awa-pg", v, f">= {TARGET_PRODUCER_VS_AWA_PG}", None if v is None else v >= TARGET_PRODUCER_VS_AWA_PG)
        for name in ("w4 index", "w4 index, dicts", "w4 key"):
            v = producer[name]["ours"]["vs_single"]
            add(f"producer {name} / single (ours)", v, f">= {TARGET_PARTITIONED_VS_SINGLE}", None if v is None else v >= TARGET_PARTITIONED_VS_SINGLE)
        control = producer.get(producer_bench.CONTROL)
        if control:  # not a target: how far identical work reads from 1.0 in this run
            add(f"control, {producer_bench.CONTROL} / single (ours): the noise floor", control["ours"]["vs_single"], "1.0 (identical work)", None)
        for name, base in SAME_PAYLOAD.items():  # not a target: partitioning's own cost
            if name in producer and "vs_same_payload" in producer[name]["ours"]:
                add(f"producer {name} / {base} (ours): same jobs, one queue", producer[name]["ours"]["vs_same_payload"], "diagnostic", None)
    interleaved = results.get("producer_interleaved", {}).get("summary")
    if interleaved:
        for name in ("w4 index", "w4 index, dicts", "w4 key"):
            v = interleaved.get(name, {}).get("vs_single")
            add(f"producer {name} / single (ours, chunk-interleaved)", v, f">= {TARGET_PARTITIONED_VS_SINGLE}", None if v is None else v >= TARGET_PARTITIONED_VS_SINGLE)
        v = interleaved.get(producer_bench.CONTROL, {}).get("vs_single")
        add(f"control, {producer_bench.CONTROL} / single (ours, chunk-interleaved)", v, "1.0 (identical work)", None)
        for name, base in SAME_PAYLOAD.items():
            v = interleaved.get(name, {}).get("vs_same_payload")
            add(f"producer {name} / {base} (ours, chunk-interleaved): same jobs, one queue", v, "diagnostic", None)
        for name in ("w4 index, dicts", "w4 key"):  # not targets: the two factors of the ratio
            row = interleaved.get(name, {})
            if "ceiling" in row:
                if name == "w4 key":
                    add(f"producer {name}: ceiling left by the key strings alone (chunk-interleaved)", row["ceiling_keys_only"], "diagnostic", None)
                add(f"producer {name}: ceiling left by building the opts (chunk-interleaved)", row["ceiling"], "diagnostic", None)
                add(f"producer {name} / single without building the opts (chunk-interleaved)", row["vs_single_without_opts"], "diagnostic", None)
    if producer:
        dist = [producer[s.name]["ours"]["distribution_ok"] for s in producer_bench.SCENARIOS]
        add("index routing: exact per-partition distribution (ours)", None, "every run exact", all(d is True for d in dist) if dist else None)
    e2e = results.get("e2e", {}).get("summary")
    for processes, table in (e2e or {}).items():
        where = f"{processes} worker process{'es' if processes != '1' else ''}"
        for width, row in table.items():
            v = row["ours_vs_awa_pg"]
            add(f"end to end width {width}, {where}: ours / awa-pg", v, f">= {TARGET_E2E_VS_AWA_PG}", None if v is None else v >= TARGET_E2E_VS_AWA_PG)
        if "1" in table and "4" in table:
            v = table["4"]["ours"]["vs_width_1"]
            add(f"end to end ours, {where}: width 4 / width 1", v, ">= 1.0 (grows, not falls)", None if v is None else v >= 1.0)
            if SHARED in table["4"]:
                v = table["4"][SHARED]["vs_width_1"]
                add(
                    f"end to end ours, shared slots, {where}: width 4 / width 1", v, ">= 1.0 (grows, not falls)",
                    None if v is None else v >= 1.0,
                )
    targets.extend(single_section.targets(results.get("single") or {}))
    return targets


# --- markdown ------------------------------------------------------------------


def _met(flag: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[flag]


def markdown(results: dict[str, Any]) -> str:
    meta, cfg = results["meta"], results["config"]
    out: list[str] = []
    out.append(f"## Benchmark run {meta['date_utc']}")
    out.append("")
    out.append(
        f"Machine: {meta['cpu_count']} cores ({meta.get('cpu_model') or 'unknown CPU'}), {meta.get('memory_gib')} GiB, "
        f"load at start {', '.join(f'{x:.2f}' for x in meta.get('load_average_at_start') or ())}; "
        f"PostgreSQL {meta.get('server_version')} ({'embedded' if meta.get('embedded') else 'DATABASE_URL'}, "
        f"{durability_label(meta)}, shared_buffers={meta.get('shared_buffers')}, max_wal_size={meta.get('max_wal_size')}); "
        f"Python {meta['python']}; awa-pg {meta.get('awa_pg_version') or 'not run'}."
    )
    out.append(
        f"Jobs per run {cfg['jobs']:,}, COPY chunks of {cfg['chunk']:,}; producer rounds {cfg['producer_rounds']}, "
        f"end-to-end rounds {cfg['e2e_rounds']}, {cfg['workers']} workers in total; sides interleaved. "
        "jobs/s are medians over rounds; ratios are medians of the per-round ratios (paired runs)."
    )
    if meta.get("awa_pg_unavailable"):
        out.append(f"**awa-pg side not run:** {meta['awa_pg_unavailable']}")
    out.append("")
    producer = results.get("producer", {}).get("summary")
    if producer:
        out.append("### Producer path (direct COPY, no workers)")
        out.append("")
        out.append(
            "Ratios to single: median of the per-round ratios, in brackets their first and third "
            f"quartiles. `{producer_bench.CONTROL}` repeats `single`: its ratio is the noise floor."
        )
        out.append("")
        out.append("| scenario | ours jobs/s | awa-pg jobs/s | ours / awa-pg | ours / single | awa-pg / single | per-partition (ours) |")
        out.append("|---|---:|---:|---:|---:|---:|---|")
        for name, row in producer.items():
            dist = row["ours"]["distribution"] or "—"
            if row["ours"]["distribution_ok"] is False:
                dist = "**WRONG** " + dist
            out.append(
                f"| {name} | {fmt_rate(row['ours']['jobs_per_s'])} | {fmt_rate(row['awa_pg']['jobs_per_s'])} | "
                f"{fmt_ratio(row['ours_vs_awa_pg'])} | {fmt_spread(row['ours']['vs_single'], row['ours'].get('vs_single_quartiles'))} | "
                f"{fmt_spread(row['awa_pg']['vs_single'], row['awa_pg'].get('vs_single_quartiles'))} | {dist} |"
            )
        out.append("")
        for name, base in SAME_PAYLOAD.items():
            if name in producer and "vs_same_payload" in producer[name]["ours"]:
                o, a = producer[name]["ours"], producer[name]["awa_pg"]
                out.append(
                    f"`{name}` / `{base}` (the same jobs and opts in one plain queue): ours "
                    f"{fmt_spread(o['vs_same_payload'], o.get('vs_same_payload_quartiles'))}, awa-pg "
                    f"{fmt_spread(a.get('vs_same_payload'), a.get('vs_same_payload_quartiles'))}."
                )
                out.append("")
    interleaved = results.get("producer_interleaved", {}).get("summary")
    if interleaved:
        out.append(
            f"### Producer path, ours, chunk-interleaved ({cfg.get('interleaved_rounds')} "
            f"round{'s' if cfg.get('interleaved_rounds') != 1 else ''})"
        )
        out.append("")
        out.append(
            "Every scenario's chunks take turns in one database, so slow and fast spells of the machine "
            "fall on all of them alike. Ratios: median over rounds of the ratio of median chunk times "
            "(first and third quartiles in brackets)."
        )
        out.append("")
        out.append(
            "Split of each ratio to single (their product is about the ratio): *key strings* and "
            "*routing call* are the caller's median times per chunk to build the keys and to route "
            "the chunk (`route_by_keys`, `route_by_indexes` or 2,000 `route_by_index` calls); "
            "*ceiling* is the ratio left if `enqueue_many_copy` cost exactly what it costs for "
            "single, so that only those two separate them (*keys only*: the key strings alone, which "
            "no routing or enqueue code can make cheaper); *without opts* compares the rest of the "
            "chunk (building the jobs and the enqueue call)."
        )
        out.append("")
        out.append(
            "| scenario | jobs/s | ours / single | same jobs, one queue | ms per chunk | key strings, ms "
            "| routing call, ms | ceiling: keys only | ceiling | without opts |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, row in interleaved.items():
            same = fmt_spread(row["vs_same_payload"], row.get("vs_same_payload_quartiles")) if "vs_same_payload" in row else "—"
            split = (
                f"{row['chunk_ms']:.2f} | {row['keys_ms']:.2f} | {row['route_ms']:.2f} | "
                f"{row['ceiling_keys_only']:.3f} | {row['ceiling']:.3f} | "
                f"{fmt_spread(row['vs_single_without_opts'], row.get('vs_single_without_opts_quartiles'))}"
                if "ceiling" in row
                else "— | — | — | — | — | —"
            )
            out.append(
                f"| {name} | {fmt_rate(row['jobs_per_s'])} | "
                f"{fmt_spread(row.get('vs_single'), row.get('vs_single_quartiles'))} | {same} | {split} |"
            )
        out.append("")
    e2e = results.get("e2e", {}).get("summary")
    for processes, table in (e2e or {}).items():
        plural = "es" if processes != "1" else ""
        out.append(
            f"### End to end, {processes} worker process{plural} (enqueue, then drain no-op jobs with the worker runtime)"
        )
        out.append("")
        out.append(
            "| width | ours jobs/s | awa-pg jobs/s | ours / awa-pg | ours / width 1 | awa-pg / width 1 "
            "| ours pickup p50 / p99 ms | awa-pg pickup p50 / p99 ms "
            "| ours, shared slots jobs/s | shared / width 1 | shared / per-partition |"
        )
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for width, row in table.items():
            o, a = row["ours"], row["awa_pg"]
            sh = row.get(SHARED)
            note = ""
            if a["failed_or_stalled"]:
                note = f" ({a['failed_or_stalled']} stalled/failed)"
            shared = (
                f"{fmt_rate(sh['jobs_per_s'])} | {fmt_ratio(sh['vs_width_1'])} | {fmt_ratio(row['shared_vs_per_partition'])}"
                if sh
                else "— | — | —"
            )
            out.append(
                f"| {width} | {fmt_rate(o['jobs_per_s'])} | {fmt_rate(a['jobs_per_s'])}{note} | {fmt_ratio(row['ours_vs_awa_pg'])} | "
                f"{fmt_ratio(o['vs_width_1'])} | {fmt_ratio(a['vs_width_1'])} | "
                f"{fmt_ms(o['pickup_p50_ms'])} / {fmt_ms(o['pickup_p99_ms'])} | {fmt_ms(a['pickup_p50_ms'])} / {fmt_ms(a['pickup_p99_ms'])} | "
                f"{shared} |"
            )
        out.append(
            "Shared slots: ours with `shared_queue_config` (the partitions share each process's workers and "
            "are claimed together, ADR 0014); awa-pg has no such mode."
        )
        out.append("")
    landing = results.get("keyed_landing")
    if landing and landing.get("counts"):
        out.append(
            f"Keyed landing ({landing['total']:,} jobs, {landing['distinct_keys']} keys, width {landing['width']} x "
            f"{landing['shards']} enqueue shards): per partition "
            + "/".join(str(sum(r)) for r in landing["counts"])
            + f"; matches the routing functions: {'yes' if landing['matches_routing_functions'] else '**no**'}."
        )
        out.append("")
    out.extend(single_section.markdown(results.get("single") or {}))
    routing = results.get("routing")
    if routing:
        out.append("### Routing (bench/routing.py)")
        out.append("")
        out.append(_routing_markdown(routing))
        out.append("")
    targets = results.get("targets")
    if targets:
        out.append("### Targets (issues 8 and 21)")
        out.append("")
        out.append("| target | value | goal | met |")
        out.append("|---|---:|---|---|")
        for t in targets:
            out.append(f"| {t['target']} | {fmt_ratio(t['value'])} | {t['goal']} | {_met(t['met'])} |")
        out.append("")
    errors = results.get("errors") or []
    if errors:
        out.append("### Errors")
        out.append("")
        for e in errors:
            out.append(f"- {e}")
        out.append("")
    return "\n".join(out)


def _routing_markdown(routing: Any) -> str:
    if isinstance(routing, dict) and "markdown" in routing:
        return str(routing["markdown"])
    if isinstance(routing, dict) and "error" in routing:
        return f"routing benchmark failed: {routing['error']}"
    import json

    return "```\n" + json.dumps(routing, indent=2, default=str)[:4000] + "\n```"


# --- main ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "keys" in args.only:  # per-key concurrency (bench/keys.py): runs alone
        if args.only != {"keys"}:
            log("bench: --only keys runs alone; run the others separately")
            return 2
        from bench import keys as keys_bench

        return keys_bench.main(args)
    if "repartition" in args.only:  # width changes under load (bench/repartition.py): runs alone
        if args.only != {"repartition"}:
            log("bench: --only repartition runs alone; run the others separately")
            return 2
        from bench import repartition as repartition_bench

        return repartition_bench.main(args)
    if "retention" in args.only:
        if args.only != {"retention"}:
            log("bench: --only retention runs alone (it needs the machine for minutes); run the others separately")
            return 2
        from bench import retention as retention_bench

        return retention_bench.main(args)
    plots_ok = False if args.no_plots else ensure_bench_extra()
    awa_pg = prepare_awa_pg(enabled=not args.no_awa_pg, log=log)
    if not awa_pg.available:
        log(f"bench: awa-pg side not run: {awa_pg.unavailable_reason}")

    results: dict[str, Any] = {"errors": []}
    with open_server(args.database_url, durable=not args.no_durability) as server:
        meta = machine_info()
        meta.update(server.describe())
        runner = Runner(server, awa_pg, args)
        runner.prepare_databases()
        meta["databases"] = list(server.created)  # all dropped when the run ends
        if not awa_pg.available:
            meta["awa_pg_unavailable"] = awa_pg.unavailable_reason
        sides = [s for s in SIDES if runner.available(s)]

        steps = 0
        if "producer" in args.only:
            steps += args.producer_rounds * len(producer_bench.SCENARIOS) * len(sides) + 1 + args.interleaved_rounds
        if "e2e" in args.only:
            per_round = sum(len(e2e_sides(sides, width, 0)) for width in args.widths)
            steps += args.e2e_rounds * len(args.worker_processes) * per_round
        if "routing" in args.only:
            steps += 1
        if "single" in args.only:
            steps += single_section.steps(args, runner.available("awa_pg"))
        progress = Progress(steps, enabled=not args.no_progress)

        if "producer" in args.only:
            runs = []
            for rnd in range(args.producer_rounds):
                # Rotate the scenario order each round: no scenario is always the
                # first after the other side's run (or always the last).
                shift = rnd % len(producer_bench.SCENARIOS)
                for scenario in producer_bench.SCENARIOS[shift:] + producer_bench.SCENARIOS[:shift]:
                    for side in interleaved(rnd):
                        if side not in sides:
                            continue
                        progress.note(f"producer r{rnd + 1} {scenario.name} {side}")
                        res = runner.producer(side, scenario)
                        runs.append({"round": rnd, "scenario": scenario.name, "side": side, "result": res})
                        if not res.get("ok"):
                            results["errors"].append(f"producer {scenario.name} {side}: {res.get('error')}")
                        progress.step(f"producer r{rnd + 1} {scenario.name} {side}: {fmt_rate(res.get('jobs_per_s'))}/s")
            results["producer"] = {"runs": runs, "summary": summarise_producer(runs)}
            progress.note("keyed landing (partition x shard)")
            url = runner.fresh("ours")
            try:
                results["keyed_landing"] = producer_bench.keyed_landing(
                    url, width=4, shards=8, total=args.jobs, chunk=args.chunk
                )
            except Exception as exc:
                results["errors"].append(f"keyed landing: {type(exc).__name__}: {exc}")
            progress.step("keyed landing done")

            # Ours only: every scenario's chunks taking turns in one database per round.
            rounds: list[dict[str, list[float]]] = []
            opts_rounds: list[dict[str, dict[str, list[float]]]] = []
            for rnd in range(args.interleaved_rounds):
                progress.note(f"producer interleaved r{rnd + 1}")
                res = producer_bench.run_ours_interleaved(
                    runner.fresh("ours"), producer_bench.SCENARIOS, args.jobs, args.chunk, shift=rnd
                )
                if res.get("ok"):
                    rounds.append(res["chunk_s"])
                    opts_rounds.append(res["opts_s"])
                else:
                    results["errors"].append(f"producer interleaved round {rnd + 1}: {res.get('error')}")
                progress.step(f"producer interleaved r{rnd + 1}")
            results["producer_interleaved"] = {
                "rounds": rounds,
                "opts_rounds": opts_rounds,
                "summary": summarise_interleaved(rounds, args.jobs, opts_rounds),
            }

        if "e2e" in args.only:
            runs = []
            for rnd in range(args.e2e_rounds):
                for processes in args.worker_processes:
                    for width in args.widths:
                        for side in e2e_sides(sides, width, rnd):
                            label = f"e2e r{rnd + 1} p{processes} w{width} {side}"
                            progress.note(label)
                            res = runner.e2e(side, width, processes)
                            runs.append(
                                {"round": rnd, "processes": processes, "width": width, "side": side, "result": res}
                            )
                            if not res.get("ok") or res.get("stalled"):
                                results["errors"].append(
                                    f"e2e {processes} process(es) width {width} {side}: "
                                    f"{res.get('error') or 'stalled at %s jobs' % res.get('completed')}"
                                )
                            progress.step(f"{label}: {fmt_rate(res.get('jobs_per_s'))}/s")
            results["e2e"] = {"runs": runs, "summary": summarise_e2e(runs, args.widths)}

        if "single" in args.only:
            results["single"] = single_section.run(runner, args, progress, results["errors"])

        if "routing" in args.only:
            results["routing"] = run_routing(args.quick)
            progress.step("routing done")
        progress.close()

    meta["awa_pg_version"] = awa_pg.version
    results["meta"] = meta
    results["config"] = {
        k: getattr(args, k)
        for k in (
            "quick", "jobs", "chunk", "workers", "producer_rounds", "interleaved_rounds", "e2e_rounds", "probe_jobs",
            "single_rounds", "single_duration", "single_warmup", "single_full", "single_widths",
        )
    } | {"widths": list(args.widths), "worker_processes": list(args.worker_processes), "only": sorted(args.only)}
    results["targets"] = evaluate_targets(results)
    results = {"meta": results.pop("meta"), "config": results.pop("config"), **results}

    path = write_results(results, args.results_dir)
    plots: list[str] = []
    if plots_ok:
        from bench import plots as plotting

        stamp = path.stem.removeprefix("bench-")
        for made in (
            plotting.throughput_vs_width(results, args.results_dir / f"throughput-vs-width-{stamp}.png"),
            plotting.keyed_heatmap(results.get("keyed_landing") or {}, args.results_dir / f"keyed-heatmap-{stamp}.png"),
            single_section.plot(results.get("single") or {}, args.results_dir / f"single-vs-width-{stamp}.png"),
        ):
            if made is not None:
                plots.append(str(made.relative_to(REPO_ROOT) if made.is_relative_to(REPO_ROOT) else made))
    print(markdown(results))
    print(f"Results: {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    for p in plots:
        print(f"Plot: {p}")
    return 0


def run_routing(quick: bool) -> Any:
    """Include bench/routing.py (the routing helper's micro-benchmark) when it exists."""
    if importlib.util.find_spec("bench.routing") is None:
        return None
    try:
        from bench import routing

        return routing.run(quick)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


if __name__ == "__main__":
    sys.exit(main())
