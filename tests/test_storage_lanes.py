"""Lane guarantees under real concurrency: unique, commit-ordered lane numbers;
strict per-lane claim order; claimers never share a job."""

from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest

from awa.client import Client, JobState


def _lane_seqs(conn: psycopg.Connection, queue: str) -> list[int]:
    conn.rollback()
    rows = conn.execute(
        "SELECT lane_seq FROM awa.jobs WHERE queue = %s AND lane_seq IS NOT NULL ORDER BY lane_seq", [queue]
    ).fetchall()
    return [r[0] for r in rows]


def test_concurrent_producers_keep_lane_numbers_unique_and_commit_ordered(database_url, conn):
    """Producers hold their transactions open for random times (some roll back).

    An observer checks at every snapshot that the committed numbers of the lane
    are exactly 1..k: a later committer never holds a smaller number, so a
    claim cursor can never step over work that commits afterwards.
    """
    client = Client(database_url, max_connections=8)
    stop = threading.Event()
    problems: list[str] = []
    committed: list[int] = []
    lock = threading.Lock()

    def producer(seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(database_url) as tx:
            for _ in range(15):
                jobs = client.insert_many_copy([{"p": seed}] * rng.randint(1, 4), kind="k", queue="hot", conn=tx)
                time.sleep(rng.random() * 0.01)
                if rng.random() < 0.2:
                    tx.rollback()
                else:
                    tx.commit()
                    with lock:
                        committed.extend(j.lane_seq for j in jobs)

    def observer() -> None:
        with psycopg.connect(database_url, autocommit=True) as obs:
            while not stop.is_set():
                seqs = [r[0] for r in obs.execute("SELECT lane_seq FROM awa.jobs WHERE queue = 'hot' ORDER BY 1")]
                if seqs != list(range(1, len(seqs) + 1)):
                    problems.append(f"snapshot saw a hole: {seqs}")
                    return

    obs_thread = threading.Thread(target=observer)
    obs_thread.start()
    threads = [threading.Thread(target=producer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    obs_thread.join()
    client.close()

    final = _lane_seqs(conn, "hot")
    assert problems == []
    assert len(final) == len(set(final)) > 0
    assert final == list(range(1, len(final) + 1))
    assert sorted(committed) == final  # returned numbers are the stored ones


def test_concurrent_claimers_never_share_a_job_and_keep_lane_order(database_url):
    client = Client(database_url, max_connections=8)
    client.set_enqueue_shards("work", 2)
    total = 0
    for _ in range(6):
        total += client.enqueue_many_copy([{"i": i} for i in range(50)], kind="k", queue="work")
    batches: list[list] = []
    lock = threading.Lock()

    def claimer() -> None:
        idle = 0
        while idle < 20:
            got = client.claim(["work"], 3)
            if not got:
                idle += 1
                time.sleep(0.002)
                continue
            idle = 0
            with lock:
                batches.append(got)

    threads = [threading.Thread(target=claimer) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()

    ids = [j.id for b in batches for j in b]
    assert len(ids) == len(set(ids)) == total  # nobody got a job twice, nothing left behind
    # Within a lane, each claim took a contiguous run right after the previous
    # claim's run: ordering every claimed job of a lane by lane_seq and
    # checking that each claim batch occupies consecutive positions.
    by_lane: dict[tuple, list[int]] = {}
    for b in batches:
        for j in b:
            by_lane.setdefault(j.lane, []).append(j.lane_seq)
    for lane, seqs in by_lane.items():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), lane
    for b in batches:
        per_lane: dict[tuple, list[int]] = {}
        for j in b:
            per_lane.setdefault(j.lane, []).append(j.lane_seq)
        for seqs in per_lane.values():
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no holes inside one claim


def test_claim_order_is_priority_then_lane_order(database_url):
    with Client(database_url) as client:
        low = client.insert_many_copy([{"i": i} for i in range(3)], kind="k", queue="p", priority=4)
        high = client.insert_many_copy([{"i": i} for i in range(3)], kind="k", queue="p", priority=1)
        mid = client.insert({"i": 0}, kind="k", queue="p", priority=2)
        claimed = client.claim(["p"], 10)
        assert [j.id for j in claimed] == [j.id for j in high] + [mid.id] + [j.id for j in low]
        assert all(j.state is JobState.RUNNING for j in claimed)


def test_promoted_and_retried_jobs_get_new_numbers_in_their_own_lane(database_url):
    with Client(database_url, jitter=lambda: 0.0) as client:
        client.set_enqueue_shards("keyed", 8)
        first = client.insert({"n": 1}, kind="k", queue="keyed", ordering_key="acct-7")
        [running] = client.claim(["keyed"], 1)
        assert running.lane_seq == 1  # numbered by the claim (ADR 0028)
        assert client.retry(running.id, running.run_lease, after_seconds=0) is True
        again = client.get_job(first.id)
        # Straight back to available through the lane head, keyed lane kept.
        assert again.state is JobState.AVAILABLE
        assert again.ordering_key == b"acct-7" and again.enqueue_shard == first.enqueue_shard
        assert again.lane_seq == running.lane_seq + 1
        later = client.insert({"n": 2}, kind="k", queue="keyed", ordering_key="acct-7")
        assert [(j.id, j.lane_seq) for j in client.claim(["keyed"], 5)] == [
            (first.id, again.lane_seq), (later.id, again.lane_seq + 1)]


def test_claim_cursor_survives_cancelled_tail_and_refills(database_url):
    with Client(database_url) as client:
        jobs = client.insert_many_copy([{"i": i} for i in range(4)], kind="k", queue="c")
        assert client.cancel_job(jobs[3].id).state is JobState.CANCELLED
        assert [j.id for j in client.claim(["c"], 10)] == [j.id for j in jobs[:3]]
        assert client.claim(["c"], 10) == []
        newer = client.insert({"i": 9}, kind="k", queue="c")
        assert [(j.id, j.lane_seq) for j in client.claim(["c"], 10)] == [(newer.id, 5)]


def test_paused_queue_is_not_claimed_until_resumed(database_url):
    with Client(database_url) as client:
        job = client.insert({"a": 1}, kind="k", queue="pz")
        client.pause_queue("pz")
        assert client.claim(["pz"], 5) == []
        assert client.queue_stats("pz")[0].paused is True
        client.resume_queue("pz")
        assert [j.id for j in client.claim(["pz"], 5)] == [job.id]


def test_lowering_enqueue_shards_still_drains_every_lane(database_url):
    with Client(database_url) as client:
        client.set_enqueue_shards("lower", 4)
        for _ in range(4):
            client.enqueue_many_copy([{"a": 1}] * 3, kind="k", queue="lower")
        client.set_enqueue_shards("lower", 1)
        client.enqueue_many_copy([{"a": 2}] * 3, kind="k", queue="lower")
        claimed = client.claim(["lower"], 100)
        assert len(claimed) == 15
        assert {j.enqueue_shard for j in claimed} == {0, 1, 2, 3}


def test_set_enqueue_shards_validation(database_url):
    from awa.errors import ValidationError

    with Client(database_url) as client:
        for bad in (0, 65, True, "4"):
            with pytest.raises(ValidationError) as info:
                client.set_enqueue_shards("q", bad)
            assert str(info.value) == f"enqueue_shards must be between 1 and 64, got {bad!r}"


def test_stale_shard_cache_of_another_client_is_corrected(database_url, conn):
    from awa.routing import shard_for_ordering_key

    with Client(database_url) as a, Client(database_url) as b:
        a.insert({"x": 1}, kind="k", queue="s", ordering_key="k1")  # a caches shards=1
        b.set_enqueue_shards("s", 8)
        job = a.insert({"x": 2}, kind="k", queue="s", ordering_key="k1")
        assert job.enqueue_shard == shard_for_ordering_key("k1", 8)


def test_lane_segments_with_scattered_ids(database_url, conn):
    """Ids that are not consecutive (other sessions took the ones between)
    give one segment per job; claims still follow lane order exactly."""
    conn.execute("ALTER TABLE awa.jobs ALTER COLUMN id SET INCREMENT BY 3")
    conn.commit()
    with Client(database_url) as client:
        jobs = client.insert_many_copy([{"i": i} for i in range(12)], kind="k", queue="sc")
        assert [b - a for a, b in zip([j.id for j in jobs], [j.id for j in jobs][1:])] == [3] * 11
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM awa.lane_segments").fetchone()[0] == 12
        client.cancel_job(jobs[4].id)
        client.cancel_job(jobs[5].id)
        order = []
        while got := client.claim(["sc"], 3):
            order.extend(j.id for j in got)
        assert order == [j.id for j in jobs if j.id not in (jobs[4].id, jobs[5].id)]
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM awa.lane_segments").fetchone()[0] == 0
        assert conn.execute("SELECT claim_seq, holes FROM awa.claim_heads").fetchone() == (12, 0)


def test_available_counts_follow_claims_and_cancels(database_url):
    with Client(database_url) as client:
        jobs = client.insert_many_copy([{"i": i} for i in range(10)], kind="k", queue="cnt")
        assert client.queue_stats("cnt")[0].available == 10
        client.cancel_job(jobs[2].id)
        client.cancel_job(jobs[9].id)  # the lane's tail
        assert client.queue_stats("cnt")[0].available == 8
        got = client.claim(["cnt"], 4)
        assert [j.lane_seq for j in got] == [1, 2, 4, 5]
        assert client.queue_stats("cnt")[0].available == 4
        got = client.claim(["cnt"], 10)
        assert [j.lane_seq for j in got] == [6, 7, 8, 9]
        [stat] = client.queue_stats("cnt")
        assert stat.available == 0 and stat.cancelled == 2 and stat.running == 8
        assert stat.lanes[0].oldest_available_age is None
        assert client.claim(["cnt"], 10) == []
        more = client.insert({"i": 11}, kind="k", queue="cnt")
        assert client.queue_stats("cnt")[0].available == 1
        assert [j.id for j in client.claim(["cnt"], 10)] == [more.id]


@pytest.mark.parametrize("claim_size", [1, 40, 500])
def test_more_segments_than_one_page(database_url, conn, claim_size):
    conn.execute("ALTER TABLE awa.jobs ALTER COLUMN id SET INCREMENT BY 2")
    conn.commit()
    with Client(database_url) as client:
        jobs = client.insert_many_copy([{"i": i} for i in range(150)], kind="k", queue="pages")
        for j in jobs[60:75]:
            client.cancel_job(j.id)
        assert client.queue_stats("pages")[0].available == 135
        order = []
        while got := client.claim(["pages"], claim_size):
            assert len(got) <= claim_size
            order.extend(j.id for j in got)
        assert order == [j.id for j in jobs[:60] + jobs[75:]]
        conn.rollback()
        assert conn.execute("SELECT claim_seq, holes FROM awa.claim_heads").fetchone() == (150, 0)
        assert conn.execute("SELECT count(*) FROM awa.lane_segments").fetchone()[0] == 0
        assert client.queue_stats("pages")[0].available == 0


def test_producers_and_claimers_at_once_lose_nothing_and_keep_blocks(database_url, conn):
    """Producers (slow, some rolling back) and claimers race on one lane. Every
    committed job is claimed exactly once (a cursor never skips work that
    commits later) and every claim takes a contiguous block of lane numbers."""
    client = Client(database_url, max_connections=10)
    producing = threading.Event()
    producing.set()
    produced: list[int] = []
    batches: list[list[int]] = []
    lock = threading.Lock()

    def producer(seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(database_url) as tx:
            for _ in range(12):
                jobs = client.insert_many_copy([{"s": seed}] * rng.randint(1, 5), kind="k", queue="race", conn=tx)
                time.sleep(rng.random() * 0.005)
                if rng.random() < 0.25:
                    tx.rollback()
                else:
                    tx.commit()
                    with lock:
                        produced.extend(j.id for j in jobs)

    def record(got) -> None:
        with lock:
            batches.append([j.lane_seq for j in got])
            claimed_ids.extend(j.id for j in got)

    def claimer() -> None:
        while True:
            got = client.claim(["race"], 4)
            if got:
                record(got)
            elif not producing.is_set():
                return
            else:
                time.sleep(0.001)

    claimed_ids: list[int] = []
    producers = [threading.Thread(target=producer, args=(i,)) for i in range(3)]
    claimers = [threading.Thread(target=claimer) for _ in range(3)]
    for t in producers + claimers:
        t.start()
    for t in producers:
        t.join()
    producing.clear()
    for t in claimers:
        t.join()
    # A final sequential sweep (a claimer may have stopped on a busy lane).
    while got := client.claim(["race"], 4):
        record(got)
    client.close()

    assert sorted(claimed_ids) == sorted(produced)
    assert len(claimed_ids) == len(set(claimed_ids))
    all_seqs = sorted(s for b in batches for s in b)
    assert all_seqs == list(range(1, len(all_seqs) + 1))
    for b in batches:
        assert b == list(range(b[0], b[0] + len(b)))
