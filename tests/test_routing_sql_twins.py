"""The SQL twins (baseline part 01_routing.sql) agree with the Python routing functions.

SQL producers compute shard and partition in Postgres; a single differing bit
would send their jobs to a different queue than Python producers send them.
"""

from __future__ import annotations

import random

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from awa.routing import (
    from_signed64,
    ordering_key_hash64,
    partition_for_ordering_key,
    partition_hash64,
    shard_for_ordering_key,
    to_signed64,
)

GOLDEN = [
    (b"", 14695981039346656037, 12892176949946654770),
    (b"customer-42", 695220319317454988, 2415934538594125323),
    ("ключ".encode(), 9189087298592509309, None),
]

# Keys chosen to hit every byte value, hi-bit-set hashes (negative as bigint)
# and lengths around the 32-bit carry boundaries.
EDGE_KEYS = [b"", b"\x00", b"\xff", b"\x00" * 17, b"\xff" * 33, bytes(range(256)), b"a" * 1000]


def _random_keys(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 64)) for _ in range(count)]


def _sql_rows(conn: psycopg.Connection, keys: list[bytes], modulus: int) -> list[tuple]:
    return conn.execute(
        """
        SELECT k,
               awa.ordering_key_hash64(k),
               awa.ordering_key_hash64_i64(k),
               awa.partition_hash64(k),
               awa.partition_hash64_i64(k),
               awa.shard_for_ordering_key(k, %(m)s),
               awa.partition_for_ordering_key(k, %(m)s)
        FROM unnest(%(keys)s::bytea[]) WITH ORDINALITY AS t(k, n)
        ORDER BY n
        """,
        {"keys": keys, "m": modulus},
    ).fetchall()


def test_golden_values_in_sql(conn: psycopg.Connection) -> None:
    for key, base, partition in GOLDEN:
        row = conn.execute(
            "SELECT awa.ordering_key_hash64(%s), awa.partition_hash64(%s)", [key, key]
        ).fetchone()
        assert int(row[0]) == base
        if partition is not None:
            assert int(row[1]) == partition


def test_golden_shards_and_partitions_in_sql(conn: psycopg.Connection) -> None:
    row = conn.execute(
        """SELECT awa.shard_for_ordering_key(%(a)s, 4), awa.shard_for_ordering_key(%(a)s, 8),
                  awa.partition_for_ordering_key(%(a)s, 2), awa.partition_for_ordering_key(%(a)s, 4),
                  awa.partition_for_ordering_key(%(a)s, 8),
                  awa.shard_for_ordering_key(%(b)s, 4), awa.partition_for_ordering_key(%(b)s, 4)""",
        {"a": b"customer-42", "b": "ключ".encode()},
    ).fetchone()
    assert row == (0, 4, 1, 3, 3, 1, 3)


@pytest.mark.parametrize("modulus", [1, 2, 3, 4, 7, 8, 16, 1000, 32767])
def test_sql_matches_python_on_many_keys(conn: psycopg.Connection, modulus: int) -> None:
    keys = EDGE_KEYS + _random_keys(300, seed=modulus)
    rows = _sql_rows(conn, keys, modulus)
    assert len(rows) == len(keys)
    saw_negative = False
    for key, base, base_i64, part, part_i64, shard, partition in rows:
        key = bytes(key)
        assert int(base) == ordering_key_hash64(key)
        assert int(part) == partition_hash64(key)
        assert base_i64 == to_signed64(ordering_key_hash64(key))
        assert from_signed64(part_i64) == partition_hash64(key)
        assert shard == shard_for_ordering_key(key, modulus)
        assert partition == partition_for_ordering_key(key, modulus)
        saw_negative |= base_i64 < 0 or part_i64 < 0
    # The signed representation must have been exercised on both sides of 2^63.
    assert saw_negative


def test_small_counts_route_to_zero_and_null_is_null(conn: psycopg.Connection) -> None:
    row = conn.execute(
        """SELECT awa.shard_for_ordering_key('\\x01'::bytea, 0), awa.shard_for_ordering_key('\\x01'::bytea, -3),
                  awa.partition_for_ordering_key('\\x01'::bytea, 1), awa.partition_for_ordering_key('\\x01'::bytea, -1),
                  awa.ordering_key_hash64(NULL), awa.partition_for_ordering_key(NULL, 4)"""
    ).fetchone()
    assert row == (0, 0, 0, 0, None, None)


def test_functions_are_immutable_and_parallel_safe(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        """SELECT p.proname, p.provolatile, p.proparallel, p.proisstrict
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'awa'
             AND p.proname IN ('ordering_key_hash64', 'ordering_key_hash64_i64', 'partition_hash64',
                               'partition_hash64_i64', 'shard_for_ordering_key', 'partition_for_ordering_key')"""
    ).fetchall()
    assert len(rows) == 6
    for name, volatile, parallel, strict in rows:
        assert (volatile, parallel, strict) == ("i", "s", True), name


@given(key=st.binary(max_size=80), modulus=st.integers(min_value=2, max_value=64))
def test_sql_matches_python_property(conn: psycopg.Connection, key: bytes, modulus: int) -> None:
    row = conn.execute(
        """SELECT awa.ordering_key_hash64(%(k)s), awa.partition_hash64(%(k)s),
                  awa.shard_for_ordering_key(%(k)s, %(m)s), awa.partition_for_ordering_key(%(k)s, %(m)s)""",
        {"k": key, "m": modulus},
    ).fetchone()
    assert (int(row[0]), int(row[1]), row[2], row[3]) == (
        ordering_key_hash64(key),
        partition_hash64(key),
        shard_for_ordering_key(key, modulus),
        partition_for_ordering_key(key, modulus),
    )
