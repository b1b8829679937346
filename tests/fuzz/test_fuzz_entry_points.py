"""Every public entry point fuzzed with valid and invalid input (issue 20).

For any input a call either succeeds, and what it stored reads back exactly
(args, kind, queue, ordering key, tags, metadata, run_at), or raises
``ValidationError`` with every table and sequence of the schema unchanged
(:class:`fuzz_support.Digest`). Any other exception fails the test. The
Hypothesis profile bounds the cost (``ci``: 40 examples per test); the
session summary prints the examples run per entry point.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awa.cli import main as awa_main
from awa.client import Client
from awa.routing import PartitionedQueue
from awa.storage.codec import MAX_JSON_DEPTH
from fuzz_support import Digest, assert_stored, json_equal, key_bytes, no_output, outcome, record

# AWA_FUZZ_EXAMPLES=N: N examples per test instead of the profile's (a longer local run).
if os.environ.get("AWA_FUZZ_EXAMPLES"):
    settings.register_profile("awa-fuzz", settings(max_examples=int(os.environ["AWA_FUZZ_EXAMPLES"])))
    settings.load_profile("awa-fuzz")

# -- strategies ------------------------------------------------------------------

def weighted(*pairs):
    """One of the strategies, each with its weight (one_of flattens nested
    branches and leans to the first ones)."""
    table = [strategy for weight, strategy in pairs for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda n: table[n])


ANY_CHAR = st.characters(codec=None, categories=None)  # surrogates and controls included
any_text = st.text(ANY_CHAR, max_size=12)
clean_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=12)

valid_queue = st.from_regex(r"[A-Za-z0-9_.:-]{1,16}", fullmatch=True).filter(lambda q: "__p" not in q)
queue_name = weighted(
    (6, valid_queue),
    (1, st.builds(lambda b, n: f"{b}__p{n}", valid_queue, st.sampled_from(["1", "7", "32766", "0", "01", "32767", "x"]))),
    (1, st.sampled_from(["q" * 192, "q" * 193, "q" * 200, "q" * 201, "my queue", "a/b", "orders;drop", "é", "a__p1__p2"])),
    (1, any_text),
    (1, st.one_of(st.integers(-3, 3), st.none())),
)
kind_name = st.one_of(valid_queue, clean_text, any_text, st.sampled_from(["k" * 200, "k" * 201]), st.none())

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),  # NaN and infinities included
    clean_text,
    any_text,
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(clean_text, any_text), children, max_size=4),
        st.dictionaries(st.integers(-2, 2), children, min_size=1, max_size=2),  # non-str keys
    ),
    max_leaves=12,
)


def _finite(v) -> bool:
    return not isinstance(v, float) or math.isfinite(v)


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


args_value = weighted(
    (5, st.dictionaries(clean_text, json_leaf.filter(_finite), max_size=5)),
    (3, st.dictionaries(clean_text, json_value, max_size=5)),
    (1, st.builds(nested, st.sampled_from([MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 300, 20_000]))),
    (1, st.one_of(st.lists(json_value, max_size=2), json_leaf)),  # not a dict: rejected
)
metadata_value = st.one_of(st.none(), st.dictionaries(clean_text, json_value, max_size=3), json_leaf)
tags_value = st.one_of(st.none(), st.lists(st.one_of(clean_text, any_text), max_size=3), any_text, st.integers())
key_value = st.one_of(st.none(), clean_text, any_text, st.binary(max_size=8), st.integers(), st.floats())
small_int = st.one_of(st.integers(-2, 6), st.integers(), st.booleans(), st.floats(), st.none())
zones = st.sampled_from(
    [dt.timezone.utc, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-14)),
     dt.timezone(dt.timedelta(hours=5, minutes=30)), None]
)
run_at_value = st.one_of(
    st.none(),
    st.datetimes(timezones=zones),  # year 1 .. 9999, naive included
    st.sampled_from([dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=14))),
                     dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-14)))]),
    st.integers(),
    st.text(max_size=4),
)
wide_int = weighted((6, st.integers(1, 50)), (1, st.integers(-5, 0)), (3, st.one_of(st.integers(), st.sampled_from([2**31, 2**40, 2**63, -(2**63) - 1, 2**70]),
                     st.booleans(), st.floats(), st.none(), st.text(max_size=3))))
seconds_value = st.one_of(st.floats(), st.integers(), st.sampled_from([10**400, 1e300, -1.0, 0.5]), st.none(),
                          st.text(max_size=3), st.timedeltas(max_value=dt.timedelta(days=10**5)))


def _expected_queue(queue):
    return queue


# -- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_db(database_factory):
    url = database_factory(migrated=True)
    client = Client(url, max_connections=2)
    digest = Digest(url)
    yield url, client, digest
    digest.close()
    client.close()
    database_factory.drop(url)


def _job_kwargs(draw_kwargs):
    return {k: v for k, v in draw_kwargs.items() if v is not _UNSET}


_UNSET = object()
optional = lambda s: st.one_of(st.just(_UNSET), s)  # noqa: E731  (absent: the default)


@st.composite
def enqueue_kwargs(draw):
    if draw(st.booleans()):  # every value valid: the success path gets its share of examples
        return _job_kwargs(
            {
                "kind": draw(valid_queue),
                "queue": draw(optional(valid_queue)),
                "priority": draw(optional(st.integers(1, 4))),
                "max_attempts": draw(optional(st.integers(1, 1000))),
                "tags": draw(optional(st.lists(clean_text.filter(str.isprintable), max_size=3))),
                "metadata": draw(optional(st.dictionaries(clean_text, json_leaf.filter(_finite), max_size=3))),
                "run_at": draw(optional(st.datetimes(min_value=dt.datetime(1, 1, 3), max_value=dt.datetime(9999, 12, 29),
                                                     timezones=st.just(dt.timezone.utc)))),
                "ordering_key": draw(optional(st.one_of(st.none(), clean_text, st.binary(max_size=8)))),
            }
        )
    return _job_kwargs(
        {
            "kind": draw(kind_name.filter(lambda k: k is not None) | st.just("k")),
            "queue": draw(optional(queue_name)),
            "priority": draw(optional(small_int)),
            "max_attempts": draw(optional(st.one_of(st.integers(-1, 1002), small_int))),
            "tags": draw(optional(tags_value)),
            "metadata": draw(optional(metadata_value)),
            "run_at": draw(optional(run_at_value)),
            "ordering_key": draw(optional(key_value)),
        }
    )


def _check_job(job, args, kw, queue=None, key=_UNSET):
    assert_stored(
        job,
        args=args,
        kind=kw["kind"],
        queue=queue if queue is not None else kw.get("queue", "default"),
        key=kw.get("ordering_key") if key is _UNSET else key,
        tags=kw.get("tags"),
        metadata=kw.get("metadata"),
        run_at=kw.get("run_at"),
        priority=kw.get("priority", 2),
        max_attempts=kw.get("max_attempts", 25),
    )


# -- enqueue ---------------------------------------------------------------------


@given(args=args_value, kw=enqueue_kwargs())
def test_insert(fuzz_db, args, kw):
    _url, client, digest = fuzz_db
    ok, job = outcome("insert", digest, lambda: client.insert(args, **kw))
    if ok:
        _check_job(job, args, kw)
        _check_job(client.get_job(job.id), args, kw)


opts_entry = st.one_of(
    st.none(),
    st.fixed_dictionaries({"queue": queue_name}),
    st.fixed_dictionaries({"queue": valid_queue, "ordering_key": key_value}),
    st.fixed_dictionaries({"ordering_key": key_value}),
    st.dictionaries(st.sampled_from(["queue", "ordering_key", "priority", 1]), key_value, max_size=2),
    st.integers(),
)


@st.composite
def batch(draw):
    jobs = draw(st.lists(args_value, min_size=0, max_size=5))
    opts = draw(st.one_of(st.none(), st.lists(opts_entry, min_size=len(jobs), max_size=len(jobs)),
                          st.lists(opts_entry, max_size=6)))
    return jobs, opts


def _expected_rows(jobs, opts, kw):
    """(queue, key) each job should land with."""
    out = []
    for i in range(len(jobs)):
        entry = opts[i] if opts is not None else None
        queue = kw.get("queue", "default")
        key = kw.get("ordering_key")
        if isinstance(entry, dict):
            if entry.get("queue") is not None:
                queue = entry["queue"]
            if "ordering_key" in entry:
                key = entry["ordering_key"]
        out.append((queue, key))
    return out


@pytest.mark.parametrize("method", ["insert_many_copy", "enqueue_many_copy"])
@given(data=batch(), kw=enqueue_kwargs())
def test_copy_batches_with_per_job_opts(fuzz_db, method, data, kw):
    _url, client, digest = fuzz_db
    jobs, opts = data
    before = client.list_jobs(limit=1)
    ok, result = outcome(method, digest, lambda: getattr(client, method)(jobs, opts=opts, **kw))
    if not ok:
        return
    expected = _expected_rows(jobs, opts, kw)
    if method == "enqueue_many_copy":
        assert result == len(jobs)
        after = client.list_jobs(limit=max(len(jobs), 1))
        stored = sorted((j for j in after if not before or j.id > before[0].id), key=lambda j: j.id)
        assert len(stored) == len(jobs)
        # COPY order is lane order: match each stored job to an input by content
        remaining = list(range(len(jobs)))
        for job in stored:
            match = next(i for i in remaining if json_equal(job.args, jobs[i]) and job.queue == expected[i][0]
                         and job.ordering_key == key_bytes(expected[i][1]))
            remaining.remove(match)
            _check_job(job, jobs[match], kw, queue=expected[match][0], key=expected[match][1])
        return
    assert len(result) == len(jobs)
    for job, args, (queue, key) in zip(result, jobs, expected):
        _check_job(job, args, kw, queue=queue, key=key)
        _check_job(client.get_job(job.id), args, kw, queue=queue, key=key)


# -- partitioned queues ------------------------------------------------------------


@given(logical=queue_name, width=st.one_of(st.integers(-1, 40), st.sampled_from([32767, 32768]), small_int),
       keys=st.lists(key_value, max_size=5))
def test_partitioned_queue_routes(fuzz_db, logical, width, keys):
    _url, client, digest = fuzz_db

    def build():
        pq = PartitionedQueue(logical, width)
        single = [pq.route_by_key(k) for k in keys]
        return pq, single, pq.route_by_keys(keys)

    ok, built = outcome("PartitionedQueue", digest, build)
    if not ok:
        return
    pq, single, routed = built
    for k, route in zip(keys, single):
        assert route["queue"] == pq.queue_for_key(k) and key_bytes(route["ordering_key"]) == key_bytes(k)
        ok, job = outcome("route_by_key+insert", digest, lambda: client.insert({"k": 1}, kind="k", **route))
        if ok:
            assert job.queue == route["queue"] and job.ordering_key == key_bytes(k)
            assert job.queue in pq.physical_queues
    jobs = [{"i": i} for i in range(len(keys))]
    ok, stored = outcome("route_by_keys+insert_many", digest, lambda: client.insert_many_copy(jobs, kind="k", opts=routed))
    if ok:
        for i, job in enumerate(stored):
            assert job.queue == pq.queue_for_key(keys[i]) and job.ordering_key == key_bytes(keys[i])
            assert json_equal(client.get_job(job.id).args, jobs[i])


# -- claims and outcomes -----------------------------------------------------------


@given(queues=st.one_of(queue_name, st.lists(queue_name, max_size=3)), limit=wide_int,
       deadline=st.one_of(st.none(), wide_int), aging=st.one_of(st.none(), wide_int),
       limits=st.one_of(st.none(), st.lists(wide_int, max_size=3)))
def test_claim(fuzz_db, queues, limit, deadline, aging, limits):
    _url, client, digest = fuzz_db
    ok, jobs = outcome("claim", digest, lambda: client.claim(
        queues, limit, deadline_ms=deadline, priority_aging_interval_ms=aging, limits=limits))
    if ok:
        names = [queues] if isinstance(queues, str) else list(queues)
        assert len(jobs) <= limit and all(j.queue in names and j.state.value == "running" for j in jobs)


@given(action=st.sampled_from(["complete", "fail", "retry", "snooze", "cancel", "heartbeat"]),
       real=st.booleans(), job_id=wide_int, lease=wide_int, delay=seconds_value,
       error=st.one_of(st.none(), any_text), progress=st.one_of(st.none(), json_value))
def test_job_outcomes(fuzz_db, action, real, job_id, lease, delay, error, progress):
    _url, client, digest = fuzz_db
    if real:  # a running job of our own, so the call can succeed
        client.insert({"x": 1}, kind="k", queue="fuzz_outcomes")
        claimed = client.claim("fuzz_outcomes", 1)
        if claimed:
            job_id, lease = claimed[0].id, claimed[0].run_lease
    calls = {
        "complete": lambda: client.complete(job_id, lease),
        "fail": lambda: client.fail(job_id, lease, error),
        "retry": lambda: client.retry(job_id, lease, after_seconds=delay, error=error),
        "snooze": lambda: client.snooze(job_id, lease, delay),
        "cancel": lambda: client.cancel(job_id, lease),
        "heartbeat": lambda: client.heartbeat(job_id, lease, progress),
    }
    ok, applied = outcome(action, digest, calls[action])
    if ok:
        assert isinstance(applied, bool)


@given(limit=wide_int, timeout=seconds_value)
def test_maintenance(fuzz_db, limit, timeout):
    _url, client, digest = fuzz_db
    outcome("promote_due", digest, lambda: client.promote_due(limit=limit))
    outcome("rescue_expired", digest, lambda: client.rescue_expired(heartbeat_timeout=timeout, limit=100))


# -- listing and admin -------------------------------------------------------------


@given(state=st.one_of(st.none(), st.sampled_from(["available", "running", "failed", "completed", "bogus"]), any_text),
       kind=st.one_of(st.none(), kind_name), queue=st.one_of(st.none(), queue_name), limit=wide_int,
       cursor=st.one_of(st.none(), wide_int, st.text(max_size=25), st.sampled_from(["9" * 30, "\u00b2", "12"])))
def test_list_jobs(fuzz_db, state, kind, queue, limit, cursor):
    _url, client, digest = fuzz_db
    ok, page = outcome("list_jobs_page", digest, lambda: client.list_jobs_page(
        state=state, kind=kind, queue=queue, limit=limit, cursor=cursor))
    if ok:
        assert len(page.jobs) <= limit
        assert all((queue is None or j.queue == queue) and (kind is None or j.kind == kind) for j in page.jobs)


@given(action=st.sampled_from(["pause", "resume", "shards", "dlq", "stats", "exists", "register", "retry_job"]),
       queue=queue_name, create=st.booleans(), number=wide_int, when=run_at_value)
def test_queue_admin(fuzz_db, action, queue, create, number, when):
    _url, client, digest = fuzz_db
    calls = {
        "pause": lambda: client.pause_queue(queue, create=create),
        "resume": lambda: client.resume_queue(queue, create=create),
        "shards": lambda: client.set_enqueue_shards(queue, number),
        "dlq": lambda: client.set_queue_dlq(queue, bool(create)),
        "stats": lambda: client.queue_stats(queue),
        "exists": lambda: client.queue_exists(queue),
        "register": lambda: client.register_partitions(queue, number),
        "retry_job": lambda: client.retry_job(number, run_at=when),
    }
    ok, _ = outcome(f"queue admin: {action}", digest, calls[action])
    if ok and action in ("pause", "resume"):
        [stat] = client.queue_stats(queue)
        assert stat.paused is (action == "pause")


@given(action=st.sampled_from(["list", "get", "depth", "retry", "purge", "move"]), real=st.booleans(),
       queue=st.one_of(st.none(), queue_name), kind=st.one_of(st.none(), kind_name), number=wide_int,
       when=run_at_value, priority=st.one_of(st.none(), small_int), reason=st.one_of(any_text, st.integers()))
def test_dlq(fuzz_db, action, real, queue, kind, number, when, priority, reason):
    _url, client, digest = fuzz_db
    if real:  # a failed job in a DLQ-enabled queue, so retry/purge/move can succeed
        client.set_queue_dlq("fuzz_dlq", True)
        client.insert({"d": 1}, kind="k", queue="fuzz_dlq", max_attempts=1)
        claimed = client.claim("fuzz_dlq", 1)
        if claimed:
            client.fail(claimed[0].id, claimed[0].run_lease, "boom")
            number = claimed[0].id
    calls = {
        "list": lambda: client.list_dlq(queue=queue, kind=kind, limit=number),
        "get": lambda: client.get_dlq_job(number),
        "depth": lambda: client.dlq_depth(queue=queue),
        "retry": lambda: client.retry_from_dlq(number, run_at=when, priority=priority, queue=queue),
        "purge": lambda: client.purge_dlq_job(number),
        "move": lambda: client.move_failed_to_dlq(number, reason),
    }
    ok, result = outcome(f"dlq: {action}", digest, calls[action])
    if ok and action == "retry" and result is not None:
        assert result.queue == (queue if queue is not None else "fuzz_dlq")


@given(action=st.sampled_from(["list", "bulk_retry", "bulk_move", "purge"]), real=st.booleans(),
       queue=st.one_of(st.none(), queue_name), kind=st.one_of(st.none(), kind_name),
       tag=st.one_of(st.none(), any_text, st.integers(), st.lists(clean_text, max_size=2)),
       before_id=st.one_of(st.none(), wide_int), before=st.one_of(st.none(), run_at_value),
       allow_all=st.one_of(st.booleans(), st.sampled_from([0, 1, "yes", None])), reason=st.one_of(any_text, st.integers()),
       limit=wide_int)
def test_dlq_in_bulk(fuzz_db, action, real, queue, kind, tag, before_id, before, allow_all, reason, limit):
    _url, client, digest = fuzz_db
    if real:  # a failed job and a dead-lettered one, so the bulk calls have work
        client.insert_many_copy([{"d": 1}, {"d": 2}], kind="k", queue="fuzz_bulk", max_attempts=1, tags=["t"])
        for job in client.claim("fuzz_bulk", 2):
            client.fail(job.id, job.run_lease, "boom")
        failed = client.list_jobs(state="failed", queue="fuzz_bulk", limit=1)
        if failed:
            client.move_failed_to_dlq(failed[0].id, "fuzz")
    calls = {
        "list": lambda: client.list_dlq(kind=kind, queue=queue, tag=tag, before_id=before_id, before_dlq_at=before,
                                        limit=limit),
        "bulk_retry": lambda: client.bulk_retry_from_dlq(kind=kind, queue=queue, tag=tag, allow_all=allow_all),
        "bulk_move": lambda: client.bulk_move_failed_to_dlq(kind=kind, queue=queue, reason=reason, allow_all=allow_all),
        "purge": lambda: client.purge_dlq(kind=kind, queue=queue, tag=tag, before_id=before_id, before_dlq_at=before,
                                          allow_all=allow_all),
    }
    ok, result = outcome(f"dlq: {action}", digest, calls[action])
    if ok and action != "list":
        assert isinstance(result, int) and result >= 0


# -- the CLI's enqueue -------------------------------------------------------------

envelope = st.fixed_dictionaries(
    {"kind": st.one_of(valid_queue, kind_name)},
    optional={
        "args": args_value,
        "ordering_key": st.one_of(st.none(), clean_text, any_text, st.integers()),
        "queue": queue_name,
        "priority": small_int,
        "max_attempts": small_int,
        "tags": tags_value,
        "metadata": metadata_value,
        "run_at": st.one_of(st.datetimes(timezones=zones).map(dt.datetime.isoformat), any_text),
    },
)


def _line(obj) -> str:
    try:
        return json.dumps(obj)  # NaN written as NaN, which the CLI must reject
    except (TypeError, ValueError, RecursionError):
        return "{" + "[" * 3  # unencodable input becomes a broken line


@given(lines=st.lists(envelope, min_size=1, max_size=3), partitions=st.sampled_from([1, 1, 3]))
def test_cli_enqueue(fuzz_db, lines, partitions):
    url, client, digest = fuzz_db
    texts = [_line(o) for o in lines]
    text = "\n".join(texts) + "\n"
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)
        path = f.name
    out, err = io.StringIO(), io.StringIO()
    before = digest()
    try:
        import contextlib

        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = awa_main(["enqueue", "--file", path, "--print-ids", "--partitions", str(partitions),
                             "--database-url", url])
    finally:
        os.unlink(path)
    assert "unexpected" not in err.getvalue(), err.getvalue()
    if code == 2:
        assert digest() == before, f"awa enqueue exited 2 ({err.getvalue()}) but the database changed"
        record("awa enqueue", "rejected")
        return
    assert code == 0, (code, err.getvalue())
    record("awa enqueue", "accepted")
    ids = [int(x) for x in out.getvalue().split()]
    assert len(ids) == len(lines)
    for job_id, line in zip(ids, texts):
        obj = json.loads(line)  # what the CLI read (json.dumps turns int keys into strings)
        job = client.get_job(job_id)
        assert json_equal(job.args, obj.get("args", {}))
        assert job.kind == obj["kind"]
        key = obj.get("ordering_key")
        assert job.ordering_key == key_bytes(str(key) if isinstance(key, int) else key)
        assert list(job.tags) == list(obj.get("tags") or [])
        assert json_equal(job.metadata, obj.get("metadata") or {})
        if obj.get("run_at") is not None:
            assert job.run_at == dt.datetime.fromisoformat(obj["run_at"])
        logical = obj.get("queue", "default")
        assert job.queue == logical or job.queue.startswith(f"{logical}__p")
