"""After an outage the pool recovers at once: no stale pooled connection
reaches a caller, and producers and workers succeed within 2 s of the server
accepting connections again (a throwaway PostgreSQL this test stops and starts)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from awa.client import Client
from awa.db.embedded import EmbeddedPostgres
from test_cli_helpers import cli_env
from worker_support.helpers import FAST

OUTAGE_S = 5.0
RECOVERY_S = 2.0


@pytest.fixture(scope="module")
def server():
    pg = EmbeddedPostgres(settings={"synchronous_commit": "on", "max_connections": "50"}).start()
    try:
        yield pg
    finally:
        pg.stop()


def _wait_up(url: str) -> float:
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return time.monotonic()
        except psycopg.OperationalError:
            time.sleep(0.02)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_producer_and_worker_recover_within_two_seconds(server, mode):
    url = server.url
    client = Client(url, max_connections=4, min_connections=4)
    client.migrate()
    ran: list[float] = []

    @client.task("tick", queue=f"rec_{mode}")
    def tick(job):
        ran.append(time.monotonic())

    client.start([(f"rec_{mode}", 2)], **FAST)
    try:
        client.insert({"n": 0}, kind="tick", queue=f"rec_{mode}")
        deadline = time.monotonic() + 10
        while not ran and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ran, "the worker did not run the first job"
        # Warm every pooled connection so all of them go stale together.
        threads = [threading.Thread(target=client.insert, args=({"n": i},), kwargs={"kind": "tick", "queue": f"rec_{mode}"})
                   for i in range(1, 5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        server.halt(mode)
        # A call made during the outage waits for the pool, then succeeds.
        during: list[object] = []

        def insert_during() -> None:
            try:
                client.insert({"n": 99}, kind="tick", queue=f"rec_{mode}")
                during.append(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - reported below
                during.append(exc)

        waiter = threading.Thread(target=insert_during)
        waiter.start()
        time.sleep(OUTAGE_S)
        before = len(ran)
        server.resume()
        up = _wait_up(url)
        client.insert({"n": 100}, kind="tick", queue=f"rec_{mode}")  # no AdminShutdown / OperationalError
        first_insert = time.monotonic() - up
        waiter.join(timeout=30)
        assert during and not isinstance(during[0], BaseException), during
        while len(ran) == before and time.monotonic() < up + 10:
            time.sleep(0.01)
        assert len(ran) > before, "the worker ran nothing after the outage"
        first_run = ran[before] - up
        assert first_insert <= RECOVERY_S, first_insert
        assert during[0] - up <= RECOVERY_S, during[0] - up
        assert first_run <= RECOVERY_S, first_run
    finally:
        client.shutdown(0)
        client.close()


QUICK_HANDLERS = '''
def register(client):
    @client.task("tick", queue="logq")
    def tick(job):
        return None
'''
_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def test_an_outage_is_logged_once_with_a_count_and_timestamps(server, tmp_path):
    url = server.url
    (tmp_path / "quick_tasks.py").write_text(QUICK_HANDLERS)
    env = cli_env(url)
    Client(url).migrate()
    proc = subprocess.Popen(
        [sys.executable, "-m", "awa", "work", "--handlers", "quick_tasks", "--queue", "logq", "--status-every", "0"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        # Lines logged before "working ..." (the leader line may come first).
        before: list[str] = []
        while not before or "working" not in before[-1]:
            line = proc.stderr.readline()
            if not line or len(before) >= 10:
                proc.kill()  # read the rest only once the worker cannot write more
                raise AssertionError("the worker never said it was working:\n" + "".join(before) + proc.stderr.read())
            before.append(line)
        server.halt("fast")
        time.sleep(OUTAGE_S)
        server.resume()
        _wait_up(url)
        with Client(url) as client:
            client.insert({}, kind="tick", queue="logq")
            deadline = time.monotonic() + 10
            while not client.list_jobs(state="completed", queue="logq") and time.monotonic() < deadline:
                time.sleep(0.05)
            ran = bool(client.list_jobs(state="completed", queue="logq"))
        if not ran:
            proc.send_signal(signal.SIGTERM)
            raise AssertionError("nothing ran after the outage:\n" + proc.communicate(timeout=30)[1])
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [line.rstrip("\n") for line in before] + err.splitlines()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert all(_LINE.match(line) for line in lines), err
    assert sum("database unreachable" in line for line in lines) == 1, err
    assert sum("recovered after" in line for line in lines) == 1, err
    assert len(lines) <= 10, err
