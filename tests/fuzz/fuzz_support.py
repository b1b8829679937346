"""What every fuzz test shares: outcome checking, database digests, round-trip comparison, counts."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from awa.errors import ValidationError

COUNTS: dict[str, dict[str, int]] = {}


def record(entry: str, outcome: str) -> None:
    counts = COUNTS.setdefault(entry, {"examples": 0, "accepted": 0, "rejected": 0})
    counts["examples"] += 1
    counts[outcome] += 1


def write_counts(directory: Path) -> None:
    if COUNTS:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        (directory / f"examples-{worker}-{os.getpid()}.json").write_text(json.dumps(COUNTS))


class Digest:
    """md5 of every table and sequence of the ``awa`` schema, in one round trip."""

    def __init__(self, database_url: str) -> None:
        self.conn = psycopg.connect(database_url, autocommit=True)
        tables = [r[0] for r in self.conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'awa' AND c.relkind IN ('r', 'p') ORDER BY 1"
        )]
        sequences = [r[0] for r in self.conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'awa' AND c.relkind = 'S' ORDER BY 1"
        )]
        parts = [
            f"SELECT '{t}' || ':' || coalesce((SELECT string_agg(x::text, '|' ORDER BY x::text) FROM awa.\"{t}\" x), '')"
            for t in tables
        ] + [f"SELECT '{s}' || ':' || (SELECT last_value::text || is_called::text FROM awa.\"{s}\")" for s in sequences]
        self.sql = "SELECT md5(string_agg(d, E'\\n')) FROM (" + " UNION ALL ".join(parts) + ") AS t(d)"
        assert tables, "no awa tables found"

    def __call__(self) -> str:
        return self.conn.execute(self.sql).fetchone()[0]

    def close(self) -> None:
        self.conn.close()


def outcome(entry: str, digest: Digest, call: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``call``: (True, result) on success; (False, error) on ValidationError
    after checking the database is unchanged. Any other exception propagates
    and fails the test (bad input must never raise anything else)."""
    before = digest()
    try:
        result = call()
    except ValidationError as exc:
        after = digest()
        assert after == before, f"{entry}: ValidationError ({exc}) but the database changed"
        record(entry, "rejected")
        return False, exc
    record(entry, "accepted")
    return True, result


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: numbers by value (jsonb keeps 1e16 as 10000000000000000)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) or isinstance(b, float):
            try:
                return float(a) == float(b)
            except OverflowError:
                return False
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def key_bytes(key: Any) -> bytes | None:
    if key is None:
        return None
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def assert_stored(job: Any, *, args: Any, kind: str, queue: str, key: Any, tags: Any, metadata: Any,
                  run_at: dt.datetime | None, priority: int, max_attempts: int) -> None:
    """The job as read back equals what was given."""
    assert json_equal(job.args, args), (job.args, args)
    assert job.kind == kind and job.queue == queue
    assert job.ordering_key == key_bytes(key), (job.ordering_key, key)
    assert list(job.tags) == list(tags or [])
    assert json_equal(job.metadata, dict(metadata or {})), (job.metadata, metadata)
    assert job.priority == priority and job.max_attempts == max_attempts
    if run_at is not None:
        assert job.run_at == run_at, (job.run_at, run_at)


@contextlib.contextmanager
def no_output() -> Iterator[None]:
    import io
    import sys

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield
