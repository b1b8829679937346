"""The COPY text of an enqueue batch (no I/O).

One row builder for every batch shape: the columns that are the same for a
whole lane are formatted once into the lane's row prefix, and the per-row
columns (kind, lane number, ordering key, args, id; only those that vary)
fill one ``str.format`` template mapped over the columns in C. One fast path
remains for the common shape (one kind, lane numbers, keys or none): an
f-string comprehension, about 1.5x quicker per row than the template.
NULL is the empty string.

Fields need only one COPY escape, doubling backslashes: names are validated
free of control characters, JSON escapes its own, keys are sent as plain
printable text or bytea hex, so tab, newline and CR never occur.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from itertools import repeat
from typing import Any

from awa.storage.batch import Batch
from awa.storage.codec import dumps
from awa.storage.lanes import Lane, pick

DEFAULT_PRIORITY = 2
DEFAULT_MAX_ATTEMPTS = 25


def array_literal(items: list[str]) -> str:
    """A text[] literal: every element double-quoted, backslash and quote escaped
    (used in COPY text, where the caller still doubles backslashes, and as a
    query parameter)."""
    quoted = ('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in items)
    return "{" + ",".join(quoted) + "}"


def escape(text: str) -> str:
    return text.replace("\\", "\\\\")


# Printable ASCII except backslash: bytea's escape input format takes these
# bytes literally, so such a key is sent as itself (customer ids, uuids, ...).
_LITERAL_BYTEA = re.compile(rb"[\x20-\x5b\x5d-\x7e]+\Z")


def key_field(key: bytes | None) -> str:
    """The COPY field of an ordering key, escaped ('' is NULL).

    Printable keys go as plain text (bytea escape format, about half the bytes
    of hex); anything else, and the empty key, as bytea hex with the backslash
    doubled for COPY.
    """
    if key is None:
        return ""
    if _LITERAL_BYTEA.match(key):
        return key.decode("ascii")
    return "\\\\x" + key.hex()


# Key bytes -> COPY field and its tab. Producers reuse the same keys (one per customer,
# say) batch after batch, so each is formatted once, not once per row.
# Bounded: only short keys, and the cache starts over when full.
_KEY_FIELDS: dict[bytes | None, str] = {None: "\t"}
_KEY_FIELDS_MAX = 16_384
_KEY_FIELDS_KEY_BYTES = 128


def key_fields(keys: list[bytes | None]) -> list[str]:
    """The key field of every row, each followed by its tab."""
    cache = _KEY_FIELDS
    try:
        return list(map(cache.__getitem__, keys))  # the usual case: every key seen before
    except KeyError:
        pass
    if len(cache) > _KEY_FIELDS_MAX:
        cache.clear()
        cache[None] = "\t"
    field_of = {}
    for key in set(keys):
        field = cache.get(key)
        if field is None:
            field = key_field(key) + "\t"
            if len(key) <= _KEY_FIELDS_KEY_BYTES:  # type: ignore[arg-type]
                cache[key] = field
        field_of[key] = field
    return list(map(field_of.__getitem__, keys))


def _constant_columns(
    batch: Batch, now: dt.datetime, scheduled: bool, explicit_times: bool
) -> tuple[list[str], list[str]]:
    """Columns every row of the batch shares, and their escaped values (the
    queue and shard, which vary by lane, are not among the values)."""
    cols: list[str] = []
    vals: list[str] = []

    def add(col: str, value: str) -> None:
        cols.append(col)
        vals.append(escape(value))

    if batch.priority != DEFAULT_PRIORITY:
        add("priority", str(batch.priority))
    if batch.max_attempts != DEFAULT_MAX_ATTEMPTS:
        add("max_attempts", str(batch.max_attempts))
    if scheduled:
        add("state", "scheduled")
    if batch.run_at is not None or explicit_times:
        add("run_at", (batch.run_at or now).isoformat())
    if explicit_times:
        add("created_at", now.isoformat())
    if batch.tags:
        add("tags", array_literal(batch.tags))
    if batch.metadata:
        add("metadata", dumps(batch.metadata))
    if isinstance(batch.kinds, str):
        add("kind", batch.kinds)
    if batch.keys is None and batch.key is not None:
        cols.append("ordering_key")
        vals.append(key_field(batch.key))
    return cols, vals


def copy_buffer(
    batch: Batch,
    lanes: list[Lane],
    starts: list[int] | None,
    now: dt.datetime,
    scheduled: bool,
    ids: Sequence[int],
    explicit_times: bool,
) -> tuple[tuple[str, ...], str]:
    """The COPY column list and text payload of ``batch`` split into ``lanes``.

    ``starts`` holds each lane's first lane number (None for scheduled rows,
    which get theirs when promoted); ``ids`` the reserved job ids in lane
    order. Only columns that differ from the table defaults are sent: the
    server parses less per row. ``explicit_times`` is False when ``now`` is
    the database's own transaction time, so the ``now()`` defaults give
    exactly the values the returned Job objects carry.
    """
    const_cols, const_vals = _constant_columns(batch, now, scheduled, explicit_times)
    per_row_kind = not isinstance(batch.kinds, str)
    row_cols = (["kind"] if per_row_kind else []) + (["lane_seq"] if starts is not None else [])
    row_cols += (["ordering_key"] if batch.keys is not None else []) + ["args", "id"]
    columns = ("queue", "enqueue_shard", *const_cols, *row_cols)

    fixed = "".join(f"\t{v}" for v in const_vals)
    texts = batch.args_text
    if "\\" in "".join(texts):
        texts = [escape(t) for t in texts]
    kinds = batch.kinds
    if per_row_kind and any("\\" in k for k in set(kinds)):
        kinds = [escape(k) for k in kinds]
    keys = key_fields(batch.keys) if batch.keys is not None else None
    fast = starts is not None and not per_row_kind

    parts: list[str] = []
    pos = 0  # ids are in lane order
    for lane_no, lane in enumerate(lanes):
        count = lane.count(batch.n)
        head = f"{escape(lane.queue)}\t{lane.shard}{fixed}\t"
        lane_ids = ids[pos : pos + count]
        pos += count
        lane_texts = pick(texts, lane.rows)
        lane_keys = pick(keys, lane.rows) if keys is not None else repeat("", count)
        if fast:
            seqs = range(starts[lane_no], starts[lane_no] + count)  # type: ignore[index]
            parts.extend([f"{head}{s}\t{k}{a}\t{j}\n" for s, k, a, j in zip(seqs, lane_keys, lane_texts, lane_ids)])
            continue
        cols: list[Sequence[Any]] = []
        slots = ""
        if per_row_kind:
            cols.append(pick(kinds, lane.rows))
            slots += "{}\t"
        if starts is not None:
            cols.append(range(starts[lane_no], starts[lane_no] + count))
            slots += "{}\t"
        if keys is not None:
            cols.append(lane_keys)
            slots += "{}"  # the key field carries its tab
        cols += [lane_texts, lane_ids]
        # The row template is str.format's: braces in the prefix are doubled.
        template = head.replace("{", "{{").replace("}", "}}") + slots + "{}\t{}\n"
        parts.extend(map(template.format, *cols))
    return columns, "".join(parts)
