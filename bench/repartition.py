"""``python -m bench --only repartition``: width changes under steady load (ADR 0024).

For each change (default 4 -> 8 and 8 -> 4, ``--rounds`` rounds, each on a
fresh database) the bench runs, in one process:

* ``PRODUCERS`` producer threads offering a fixed rate in total
  (``--repartition-rate`` jobs/s): every ``TICK_S`` each sends the jobs its
  share of the schedule has made due since its last batch, as one
  ``enqueue_many_copy`` batch routed by key with the producer's
  ``PartitionedQueue`` of the old width (after the change the database
  routes them with the new one). Each key belongs to one producer and its
  jobs carry their number ``n``, so a key's jobs commit in ``n`` order. A
  producer that falls behind sends the missed jobs late (the total stays
  right); its lateness is recorded. Jobs of unmoved and moved keys take
  turns, so half of the offered rate goes to unmoved keys in every window;
* ``WORKERS`` worker threads claiming from every partition of both widths
  and completing at once;
* a lift thread running the lift step every ``LIFT_EVERY_S``, as the
  maintenance leader does.

Timeline: ``WARMUP_S``, then the window *before* (``--repartition-window``
seconds), then ``client.repartition``; producers keep the schedule for the
window *during*, which runs from the change for the window's length or
until the change has finished (``partition_epochs.finished_at``), whichever
is longer, so it covers the whole fenced period. Then producing stops and
the queue drains. Both windows are read in database time, relative to the
epoch's ``started_at``.

Figures, read from the database afterwards:

* FIFO violations: jobs first handed out (``attempted_at``) before a job
  of their key with a smaller number;
* lost / duplicated: jobs enqueued but not completed, jobs claimed more
  than once (``attempt > 1``);
* offered rate: jobs created (``created_at``) per second in each window,
  against the set rate; the schedule counts as kept when both are within
  3 % of it and no batch in the windows started more than ``MAX_LAG_S``
  after its first job was due (if not, the ratio measures the producers,
  not the change, and the report says so);
* unmoved keys' throughput: hand-outs (first ``attempted_at``) per second
  of the keys whose partition the change did not move, in the window
  during over the window before (target >= 0.9), and those keys' wait
  (``attempted_at - created_at``) p99 for jobs created in each window.
  Under 8 -> 4 every unmoved key lives in a fenced lane (0..3, fed by
  4..7) and waits for the fences like the moved keys; under 4 -> 8 none
  does;
* moved keys' extra wait: for jobs of keys that changed partition enqueued
  from the change until it finished, their wait (``attempted_at -
  created_at``) minus the median wait of unmoved keys' jobs enqueued then
  (p50 and p99).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from typing import Any

LOGICAL = "rp"
KEYS = 400
PRODUCERS = 2
WORKERS = 2
CLAIM_LIMIT = 50
LIFT_EVERY_S = 0.25
TICK_S = 0.02
WARMUP_S = 2.0
MAX_LAG_S = 0.5
RATE_TOLERANCE = 0.03
DEFAULT_RATE = 600.0
DEFAULT_WINDOW_S = 10.0

VIOLATIONS = """
SELECT count(*) FROM (
    SELECT attempted_at < max(attempted_at) OVER (PARTITION BY args->>'k' ORDER BY (args->>'n')::int
                                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS bad
    FROM awa.jobs
) AS v WHERE bad
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Producer:
    """One paced producer thread: its keys, its share of the rate, its lateness."""

    def __init__(self, url: str, pq: Any, unmoved: list[str], moved: list[str], rate: float) -> None:
        self.url, self.pq, self.rate = url, pq, rate
        self.unmoved, self.moved = unmoved, moved
        self.sent = 0
        self.lags: list[tuple[float, float]] = []  # (monotonic time of a batch, seconds its first job is late)
        self.calls: list[tuple[float, float]] = []  # (monotonic time of the batch, seconds it took)
        self.error: BaseException | None = None

    def key(self, n: int) -> str:
        """Job ``n``'s key: unmoved and moved keys take turns, each list in a cycle."""
        keys = self.moved if n % 2 else self.unmoved
        return keys[(n // 2) % len(keys)]

    def run(self, t0: float, stop: threading.Event) -> None:
        import awa

        try:
            with awa.Client(self.url) as client:
                next_at = t0 + TICK_S
                while not stop.is_set():
                    pause = next_at - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    now = time.monotonic()
                    due = int(self.rate * (now - t0)) - self.sent
                    if due > 0:
                        # How late the batch's first job is against its place in the schedule.
                        self.lags.append((now, now - (t0 + (self.sent + 1) / self.rate)))
                        batch_keys = [self.key(self.sent + i) for i in range(due)]
                        jobs = [{"k": k, "n": self.sent + i} for i, k in enumerate(batch_keys)]
                        client.enqueue_many_copy(jobs, kind="rp", opts=self.pq.route_by_keys(batch_keys))
                        self.calls.append((now, time.monotonic() - now))
                        self.sent += due
                    next_at = t0 + ((time.monotonic() - t0) // TICK_S + 1) * TICK_S
        except BaseException as exc:  # reported by run_one
            self.error = exc


def run_one(server: Any, old: int, new: int, window_s: float, rate: float, warmup_s: float) -> dict[str, Any]:
    import psycopg

    import awa
    from awa.routing import PartitionedQueue

    name = server.name(f"rp_{old}_{new}")
    url = server.create_database(name)
    setup = awa.Client(url)
    setup.migrate()
    pq = setup.partitioned_queue(LOGICAL, old)
    fresh = PartitionedQueue(LOGICAL, new)
    keys = [f"key-{i}" for i in range(KEYS)]
    moved = {k for k in keys if pq.queue_for_key(k) != fresh.queue_for_key(k)}
    span = [LOGICAL if i == 0 else f"{LOGICAL}__p{i}" for i in range(max(old, new))]
    stop_producing = threading.Event()
    stop_all = threading.Event()
    unmoved = [k for k in keys if k not in moved]
    moving = [k for k in keys if k in moved]
    producers = [Producer(url, pq, unmoved[i::PRODUCERS], moving[i::PRODUCERS], rate / PRODUCERS)
                 for i in range(PRODUCERS)]

    def work() -> None:
        with awa.Client(url) as client:
            while not stop_all.is_set():
                jobs = client.claim(span, CLAIM_LIMIT)
                if not jobs:
                    time.sleep(0.005)
                    continue
                client.complete_many([(j.id, j.run_lease) for j in jobs])

    def lift() -> None:
        with awa.Client(url) as client:
            while not stop_all.is_set():
                client.lift_fences(LOGICAL)
                time.sleep(LIFT_EVERY_S)

    others = [threading.Thread(target=work) for _ in range(WORKERS)] + [threading.Thread(target=lift)]
    for t in others:
        t.start()
    t0 = time.monotonic()
    feeds = [threading.Thread(target=p.run, args=(t0, stop_producing)) for p in producers]
    for t in feeds:
        t.start()
    time.sleep(max(0.0, t0 + warmup_s + window_s - time.monotonic()))
    started = time.monotonic()
    done = setup.repartition(LOGICAL, new)
    change_ms = (time.monotonic() - started) * 1000
    # Keep the schedule for the window, and on until the change has finished.
    until = started + window_s
    while True:
        now = time.monotonic()
        if now >= until and not setup.repartition_status(LOGICAL)["in_progress"]:
            break
        if now > started + 120:
            log(f"repartition {old}->{new}: change not finished 120 s after it started")
            break
        time.sleep(min(0.1, max(0.01, until - now)))
    time.sleep(0.5)  # past the window's end in database time too
    stop_producing.set()
    for t in feeds:
        t.join()
    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            left = conn.execute("SELECT count(*) FROM awa.jobs WHERE state <> 'completed'").fetchone()[0]
            if not setup.repartition_status(LOGICAL)["in_progress"] and left == 0:
                break
            time.sleep(0.2)
    stop_all.set()
    for t in others:
        t.join()
    errors = [repr(p.error) for p in producers if p.error is not None]
    res = _measure(url, moved, done, window_s, sum(p.sent for p in producers))
    in_windows = [(at, lag) for p in producers for at, lag in p.lags
                  if started - window_s <= at < started + res["window_during_s"]]
    lags = [lag for _at, lag in in_windows]
    calls = [took for p in producers for at, took in p.calls
             if started - window_s <= at < started + res["window_during_s"]]
    worst = max(in_windows, key=lambda x: x[1], default=(started, 0.0))
    res.update(
        old=old, new=new, moved_keys=len(moved), keys=KEYS, rate=rate, change_ms=change_ms,
        producer_errors=errors, producer_max_lag_ms=max(lags, default=0.0) * 1000,
        producer_late_batches=sum(1 for lag in lags if lag > 2 * TICK_S), producer_batches=len(lags),
        producer_lag_p99_ms=(_pct(lags, 0.99) or 0.0) * 1000, producer_max_lag_at_s=worst[0] - started,
        batch_p50_ms=(_pct(calls, 0.5) or 0.0) * 1000, batch_p99_ms=(_pct(calls, 0.99) or 0.0) * 1000,
        batch_max_ms=max(calls, default=0.0) * 1000,
    )
    res["schedule_kept"] = not errors and res["producer_max_lag_ms"] <= MAX_LAG_S * 1000 and all(
        abs(res[f"offered_per_s_{w}"] / rate - 1) <= RATE_TOLERANCE for w in ("before", "during"))
    setup.close()
    server.drop_database(name)
    return res


def _measure(url: str, moved: set[str], done: dict[str, Any], window_s: float, enqueued: int) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url) as conn:
        violations = conn.execute(VIOLATIONS).fetchone()[0]
        total, completed, dup = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE attempt > 1) "
            "FROM awa.jobs").fetchone()
        started, finished = conn.execute(
            "SELECT started_at, finished_at FROM awa.partition_epochs WHERE epoch = %s", [done["epoch"]]).fetchone()
        rows = conn.execute(
            "SELECT args->>'k', extract(epoch FROM created_at - %(s)s)::float8, "
            "extract(epoch FROM attempted_at - created_at)::float8, extract(epoch FROM attempted_at - %(s)s)::float8 "
            "FROM awa.jobs", {"s": started}).fetchall()
    finished_after = (finished - started).total_seconds() if finished else None
    during_s = max(window_s, finished_after or window_s)
    windows = {"before": (-window_s, 0.0), "during": (0.0, during_s)}
    out: dict[str, Any] = {"window_before_s": window_s, "window_during_s": during_s}
    unmoved = [(c, w, h) for k, c, w, h in rows if k not in moved]
    for name, (lo, hi) in windows.items():
        length = hi - lo
        out[f"offered_per_s_{name}"] = sum(1 for _k, c, _w, _h in rows if lo <= c < hi) / length
        out[f"unmoved_offered_per_s_{name}"] = sum(1 for c, _w, _h in unmoved if lo <= c < hi) / length
        out[f"unmoved_per_s_{name}"] = sum(1 for _c, _w, h in unmoved if h is not None and lo <= h < hi) / length
        waits = [w for c, w, _h in unmoved if w is not None and lo <= c < hi]
        out[f"unmoved_wait_p50_ms_{name}"] = None if not waits else _pct(waits, 0.5) * 1000
        out[f"unmoved_wait_p99_ms_{name}"] = None if not waits else _pct(waits, 0.99) * 1000
    moved_waits, unmoved_waits = [], []
    for key, created, wait, _handed in rows:
        if wait is not None and 0 <= created and (finished_after is None or created <= finished_after):
            (moved_waits if key in moved else unmoved_waits).append(wait)
    base = statistics.median(unmoved_waits) if unmoved_waits else 0.0
    extra = [w - base for w in moved_waits]
    before = out["unmoved_per_s_before"]
    out.update(
        enqueued=enqueued, rows=total, completed=completed, lost=enqueued - completed, duplicated=dup,
        fifo_violations=violations, finished_after_s=finished_after, moved_jobs_in_window=len(moved_waits),
        extra_wait_p50_ms=None if not extra else _pct(extra, 0.5) * 1000,
        extra_wait_p99_ms=None if not extra else _pct(extra, 0.99) * 1000,
        unmoved_ratio=out["unmoved_per_s_during"] / before if before else None,
    )
    return out


def _f(value: Any, fmt: str = ".0f") -> str:
    return "-" if value is None else format(value, fmt)


def report(runs: list[dict[str, Any]], changes: list[tuple[int, int]], window_s: float, rate: float,
           label: str) -> str:
    lines = [
        f"Online repartitioning, {PRODUCERS} paced producer threads ({rate:.0f} jobs/s in total, batches every "
        f"{TICK_S * 1000:.0f} ms) and {WORKERS} worker threads, {KEYS} keys, windows of {window_s:.1f} s before "
        f"and from the change, {label}:\n",
        "| change | round | jobs | lost / twice / FIFO | change ms | finished after s | offered/s before / during | "
        "producers' max lag ms | unmoved hand-outs/s before / during | ratio | unmoved wait p99 ms before / during | "
        "moved keys' extra wait p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        ratio = _f(r["unmoved_ratio"], ".3f") + ("" if r["schedule_kept"] else " (schedule not kept)")
        lines.append(
            f"| {r['old']} -> {r['new']} | {r['round'] + 1} | {r['enqueued']} | "
            f"{r['lost']} / {r['duplicated']} / {r['fifo_violations']} | {_f(r['change_ms'], '.1f')} | "
            f"{_f(r['finished_after_s'], '.2f')} | {_f(r['offered_per_s_before'])} / {_f(r['offered_per_s_during'])} | "
            f"{_f(r['producer_max_lag_ms'])} | {_f(r['unmoved_per_s_before'])} / {_f(r['unmoved_per_s_during'])} | "
            f"{ratio} | {_f(r['unmoved_wait_p99_ms_before'])} / {_f(r['unmoved_wait_p99_ms_during'])} | "
            f"{_f(r['extra_wait_p50_ms'])} / {_f(r['extra_wait_p99_ms'])} |")
    lines.append("")
    for old, new in changes:
        mine = [r for r in runs if (r["old"], r["new"]) == (old, new)]
        ratios = [r["unmoved_ratio"] for r in mine if r["unmoved_ratio"] is not None]
        kept = sum(r["schedule_kept"] for r in mine)
        med = statistics.median(ratios) if ratios else None
        lines.append(f"{old} -> {new}: median unmoved ratio {_f(med, '.3f')} over {len(ratios)} rounds "
                     f"(target >= 0.9); producers kept the schedule in {kept} of {len(mine)}")
    return "\n".join(lines)


def main(args: Any) -> int:
    from bench.harness import durability_label, open_server, write_results

    window_s = args.repartition_window or (1.5 if args.quick else DEFAULT_WINDOW_S)
    rate = args.repartition_rate or (200.0 if args.quick else DEFAULT_RATE)
    warmup_s = 0.5 if args.quick else WARMUP_S
    rounds = args.rounds or (1 if args.quick else 3)
    changes = [(4, 8), (8, 4)]
    runs: list[dict[str, Any]] = []
    with open_server(args.database_url, durable=not args.no_durability) as server:
        label = durability_label(server.describe())
        log(f"repartition: PostgreSQL {label}")
        for rnd in range(rounds):
            for old, new in changes:
                res = run_one(server, old, new, window_s, rate, warmup_s)
                res["round"] = rnd
                runs.append(res)
                log(f"repartition r{rnd + 1} {old}->{new}: {res}")
    print(report(runs, changes, window_s, rate, label))
    path = write_results({"repartition": {"runs": runs, "rate": rate, "window_s": window_s}}, args.results_dir)
    log(f"bench: results in {path}")
    ok = all(r["lost"] == 0 and r["duplicated"] == 0 and r["fifo_violations"] == 0 and not r["producer_errors"]
             for r in runs)
    return 0 if ok else 1
