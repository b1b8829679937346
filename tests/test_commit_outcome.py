"""A COMMIT whose answer is lost is read back (ADR 0038), on a real server.

The server of this module waits at every durable commit for a synchronous
standby that never comes (``synchronous_standby_names = 'ghost'``): the commit
record is written, the backend waits in ``SyncRep``, and a test terminates it
there. The transaction committed; the client only sees its connection die.
That is the window an immediate shutdown or a crash opens between the commit
record and the answer, made as wide as a test needs. Connections that must
not wait set ``synchronous_commit = local``.
"""

from __future__ import annotations

import asyncio
import threading
import time

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from awa import AsyncClient, Client
from awa.db.embedded import EmbeddedPostgres
from awa.errors import AwaError, CommitUnknown
from awa.storage.outcome import read_status


@pytest.fixture(scope="module")
def ghost_server():
    server = EmbeddedPostgres(settings={"synchronous_commit": "on", "synchronous_standby_names": "ghost"}).start()
    try:
        local = make_conninfo(server.url, options="-c synchronous_commit=local")
        Client(local).migrate()
        yield server.url, local
    finally:
        server.stop()


class Terminator:
    """Terminates the backends that wait at ``wait_event``, until stopped."""

    def __init__(self, url: str, wait_event: str) -> None:
        self.url, self.wait_event = url, wait_event
        self.killed: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Terminator:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as admin:
            while not self.stop.is_set():
                rows = admin.execute(
                    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE wait_event = %s AND pid <> pg_backend_pid()", (self.wait_event,)).fetchall()
                self.killed += [pid for pid, done in rows if done]
                time.sleep(0.01)


def _rows(local: str, queue: str) -> list[tuple[int, str]]:
    with psycopg.connect(local) as conn:
        return conn.execute("SELECT id, args->>'n' FROM awa.jobs WHERE queue = %s ORDER BY id", (queue,)).fetchall()


def test_a_batch_whose_commit_answer_is_lost_is_read_back_as_committed(ghost_server) -> None:
    url, local = ghost_server
    client = Client(url)
    try:
        with Terminator(local, "SyncRep") as t:
            jobs = client.insert_many_copy([{"n": "a"}, {"n": "b"}], kind="k", queue="lost_copy")
        assert t.killed, "no COMMIT waited for the standby: the fault was not injected"
        assert [(j.id, j.args["n"]) for j in jobs] == _rows(local, "lost_copy")
    finally:
        client.close()


def test_async_batch_whose_commit_answer_is_lost_is_read_back_as_committed(ghost_server) -> None:
    url, local = ghost_server

    async def main() -> list:
        async with AsyncClient(url) as client:
            return await client.insert_many_copy([{"n": "c"}], kind="k", queue="lost_copy_async")

    with Terminator(local, "SyncRep") as t:
        jobs = asyncio.run(main())
    assert t.killed
    assert [(j.id, j.args["n"]) for j in jobs] == _rows(local, "lost_copy_async")


def test_a_single_insert_whose_answer_is_lost_is_reported_unknown(ghost_server) -> None:
    # One autocommit statement: its transaction id never reached the client,
    # so the outcome cannot be read back. The error says so (here it did commit).
    url, local = ghost_server
    client = Client(url)
    try:
        with Terminator(local, "SyncRep") as t, pytest.raises(CommitUnknown) as caught:
            client.insert({"n": "d"}, kind="k", queue="lost_single")
        assert t.killed
        err = caught.value
        assert isinstance(err, AwaError) and isinstance(err, psycopg.OperationalError)
        assert err.xact_id is None
        assert str(err) == "the connection was lost during the insert; whether it was committed is unknown"
        assert [n for _, n in _rows(local, "lost_single")] == ["d"]
    finally:
        client.close()


def test_a_batch_cut_before_its_commit_raises_the_plain_error_and_writes_nothing(ghost_server) -> None:
    url, local = ghost_server
    client = Client(url)
    try:
        with psycopg.connect(local) as locker:
            locker.execute("LOCK TABLE awa.enqueue_heads IN ACCESS EXCLUSIVE MODE")
            with Terminator(local, "relation") as t, pytest.raises(psycopg.OperationalError) as caught:
                client.insert_many_copy([{"n": "e"}], kind="k", queue="cut_early")
            locker.rollback()
        assert t.killed
        assert not isinstance(caught.value, CommitUnknown)
        assert _rows(local, "cut_early") == []
    finally:
        client.close()


def test_read_status_tells_committed_aborted_and_gives_up_on_an_absent_server(ghost_server) -> None:
    _, local = ghost_server
    with psycopg.connect(local) as conn:
        committed = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        conn.commit()
        aborted = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        conn.rollback()
    assert read_status(local, {}, committed) == "committed"
    assert read_status(local, {}, aborted) == "aborted"
    started = time.monotonic()
    assert read_status("postgresql://nobody@127.0.0.1:1/none", {}, committed, seconds=0.5) is None
    assert time.monotonic() - started < 5


def test_a_client_on_one_connection_reports_the_transaction_it_could_not_read_back(ghost_server) -> None:
    # Built on the caller's connection, the client cannot open another: it
    # names the transaction, which the caller can look up later.
    url, local = ghost_server
    client = Client(psycopg.connect(url, autocommit=True))
    with Terminator(local, "SyncRep") as t, pytest.raises(CommitUnknown) as caught:
        client.insert_many_copy([{"n": "f"}], kind="k", queue="lost_one_conn")
    assert t.killed
    xid = caught.value.xact_id
    assert xid is not None and f"pg_xact_status('{xid}'::xid8)" in str(caught.value)
    with psycopg.connect(local) as conn:
        assert conn.execute("SELECT pg_xact_status(%s::xid8)", (xid,)).fetchone()[0] == "committed"
    assert [n for _, n in _rows(local, "lost_one_conn")] == ["f"]


def test_an_async_single_insert_whose_answer_is_lost_is_reported_unknown(ghost_server) -> None:
    url, local = ghost_server

    async def main() -> None:
        async with AsyncClient(url) as client:
            await client.insert({"n": "g"}, kind="k", queue="lost_single_async")

    with Terminator(local, "SyncRep") as t, pytest.raises(CommitUnknown) as caught:
        asyncio.run(main())
    assert t.killed and caught.value.xact_id is None
    assert [n for _, n in _rows(local, "lost_single_async")] == ["g"]


def test_an_error_the_server_answers_is_raised_as_it_is(ghost_server) -> None:
    # A lock timeout is an OperationalError too, but the server answered it on
    # a live connection: the statement failed, nothing was written.
    url, local = ghost_server
    client = Client(make_conninfo(url, options="-c lock_timeout=100"))
    try:
        with psycopg.connect(local) as locker:
            locker.execute("LOCK TABLE awa.jobs IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(psycopg.errors.LockNotAvailable) as caught:
                client.insert({"n": "h"}, kind="k", queue="answered")
            locker.rollback()
        assert not isinstance(caught.value, CommitUnknown)
        assert _rows(local, "answered") == []
    finally:
        client.close()
