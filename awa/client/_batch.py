"""Validation, routing and COPY formatting of enqueue batches (no I/O here).

The whole batch is validated and serialised before the first database call,
so a bad job anywhere means nothing is written. The COPY payload of a chunk is
built as one text buffer: constant columns of a lane are formatted once, the
per-row work is one JSON dump and one f-string.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from awa.errors import ValidationError
from awa.routing.hashes import coerce_key, shard_for_ordering_key, shards_for_ordering_keys
from awa.routing.routed_opts import RoutedOpts

try:  # orjson is optional: the same JSON, several times faster per row.
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _orjson = None

MAX_NAME_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ABSENT: Any = object()  # "key not given" (distinct from an explicit None)

_std_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _std_dumps(obj: Any) -> str:
    return _std_encoder.encode(obj)


if _orjson is not None:
    _orjson_dumps = _orjson.dumps
    _OrjsonError = _orjson.JSONEncodeError

    def dumps(obj: Any) -> str:
        try:
            return _orjson_dumps(obj).decode()
        except _OrjsonError:
            return _std_dumps(obj)  # e.g. ints beyond 64 bits; raises on real junk

    loads: Callable[[str], Any] = _orjson.loads
else:  # pragma: no cover
    dumps = _std_dumps
    loads = json.loads


if _orjson is not None:
    from psycopg.types.json import JsonbLoader, JsonLoader

    _OrjsonDecodeError = _orjson.JSONDecodeError
    _orjson_loads = _orjson.loads

    # orjson turns integers beyond 64 bits into floats (silently rounding them);
    # a run of 19+ digits anywhere sends the document to the standard decoder.
    _LONG_DIGITS = re.compile(rb"[0-9]{19}")

    def _load_json(data: Any) -> Any:
        if _LONG_DIGITS.search(data) is None:
            try:
                return _orjson_loads(data)  # takes bytes and memoryview as they come
            except _OrjsonDecodeError:
                pass
        return json.loads(bytes(data))

    class _FastJsonLoader(JsonLoader):
        def load(self, data: Any) -> Any:
            return _load_json(data)

    class _FastJsonbLoader(JsonbLoader):
        def load(self, data: Any) -> Any:
            return _load_json(data)

    def use_fast_json(conn: Any) -> None:
        """Decode json/jsonb results of this connection with orjson (json as fallback).

        Set on the connections of pools the clients create themselves: every
        claimed job's args are decoded on the worker's hot path.
        """
        conn.adapters.register_loader("json", _FastJsonLoader)
        conn.adapters.register_loader("jsonb", _FastJsonbLoader)

else:  # pragma: no cover

    def use_fast_json(conn: Any) -> None:
        return None


# --------------------------------------------------------------------------
# Scalar validation
# --------------------------------------------------------------------------


def derive_kind(class_name: str) -> str:
    """CamelCase class name -> snake_case kind (``SMTPEmail`` -> ``smtp_email``)."""
    out: list[str] = []
    n = len(class_name)
    for i, ch in enumerate(class_name):
        if ch.isupper():
            if i > 0:
                prev = class_name[i - 1]
                nxt_lower = i + 1 < n and class_name[i + 1].islower()
                if prev.islower() or prev.isdigit() or (prev.isupper() and nxt_lower):
                    out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise ValidationError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(f"{what} must be at most {MAX_NAME_LENGTH} characters (got {len(value)})")
    if _CONTROL.search(value):
        raise ValidationError(f"{what} must not contain control characters")
    return value


def check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 4:
        raise ValidationError(f"priority must be between 1 and 4, got {priority!r}")
    return priority


def check_max_attempts(max_attempts: Any) -> int:
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or not 1 <= max_attempts <= 1000:
        raise ValidationError(f"max_attempts must be between 1 and 1000, got {max_attempts!r}")
    return max_attempts


def check_run_at(run_at: Any) -> dt.datetime | None:
    if run_at is None:
        return None
    if not isinstance(run_at, dt.datetime):
        raise ValidationError(f"run_at must be a datetime, got {type(run_at).__name__}")
    if run_at.tzinfo is None or run_at.utcoffset() is None:
        raise ValidationError("run_at must be timezone-aware")
    return run_at


def check_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, (str, bytes)) or not isinstance(tags, Sequence):
        raise ValidationError("tags must be a list of strings")
    out = []
    for tag in tags:
        if not isinstance(tag, str):
            raise ValidationError("tags must be a list of strings")
        if _CONTROL.search(tag):
            raise ValidationError("tags must not contain control characters")
        out.append(tag)
    return out


def check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError("metadata must be a dict")
    metadata = dict(metadata)
    try:
        text = _std_dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"metadata is not JSON-serialisable: {exc}") from None
    if "\\u0000" in text:
        raise ValidationError("metadata must not contain NUL characters")
    return metadata


def check_key(key: Any) -> bytes | None:
    if key is None:
        return None
    if isinstance(key, (bytes, str)):
        return key if isinstance(key, bytes) else key.encode("utf-8", "surrogatepass")
    return coerce_key(key)  # bytes-like, or ValidationError with the routing module's text


def args_payload(args: Any) -> Any:
    """The JSON value stored for ``args``: a dict, a dataclass or a pydantic model."""
    if isinstance(args, dict):
        return args
    dump = getattr(args, "model_dump", None)
    if dump is not None and not isinstance(args, type):
        return dump(mode="json")
    if dataclasses.is_dataclass(args) and not isinstance(args, type):
        return dataclasses.asdict(args)
    raise ValidationError("Job args must be a dataclass, pydantic BaseModel, or dict")


_DIRECT, _ASDICT, _PYDANTIC = 0, 1, 2


def _args_mode(t: type) -> int:
    """How values of type ``t`` become JSON (cached per type)."""
    mode = _MODES.get(t)
    if mode is None:
        if issubclass(t, dict):
            mode = _DIRECT
        elif hasattr(t, "model_dump"):
            mode = _PYDANTIC
        elif dataclasses.is_dataclass(t):
            # orjson encodes dataclass instances itself, field by field.
            mode = _DIRECT if _orjson is not None else _ASDICT
        else:
            raise ValidationError("Job args must be a dataclass, pydantic BaseModel, or dict")
        _MODES[t] = mode
    return mode


_MODES: dict[type, int] = {}


def _serialise_all(jobs: Sequence[Any], types: set[type]) -> list[str]:
    if len(types) == 1 and _args_mode(next(iter(types))) == _DIRECT and _orjson is not None:
        d = _orjson_dumps
        try:
            return [d(j).decode() for j in jobs]
        except (TypeError, ValueError):
            pass  # fall through: the slow path names the culprit
    out = []
    for i, j in enumerate(jobs):
        mode = _args_mode(type(j))
        if mode == _PYDANTIC:
            payload = j.model_dump(mode="json")
        elif mode == _ASDICT or (mode == _DIRECT and not isinstance(j, dict) and _orjson is None):
            payload = dataclasses.asdict(j)
        else:
            payload = j
        try:
            out.append(dumps(payload))
        except (TypeError, ValueError) as exc:
            if mode == _DIRECT and not isinstance(j, dict):
                try:  # a dataclass orjson could not encode: retry as a plain dict
                    out.append(_std_dumps(dataclasses.asdict(j)))
                    continue
                except (TypeError, ValueError) as exc2:
                    exc = exc2
            raise ValidationError(f"args at index {i} are not JSON-serialisable: {exc}") from None
    return out


def kind_for_type(t: type) -> str:
    if issubclass(t, dict):
        raise ValidationError("kind is required when args is a dict")
    return check_name(derive_kind(t.__name__), "kind")


def kind_for(args: Any, kind: str | None) -> str:
    if kind is not None:
        return check_name(kind, "kind")
    if isinstance(args, dict):
        raise ValidationError("kind is required when args is a dict")
    return check_name(derive_kind(type(args).__name__), "kind")


def args_json(payload: Any, index: int | None = None) -> str:
    where = "" if index is None else f" at index {index}"
    try:
        text = dumps(payload)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"args{where} are not JSON-serialisable: {exc}") from None
    if "\\u0000" in text:
        raise ValidationError(f"args{where} must not contain NUL characters")
    return text


# --------------------------------------------------------------------------
# Per-job opts
# --------------------------------------------------------------------------


def parse_opts(opts: Any, n_jobs: int) -> tuple[list[str | None], list[Any]] | None:
    """Per-job queue overrides and tri-state ordering keys (ABSENT = inherit)."""
    if opts is None:
        return None
    if type(opts) is RoutedOpts:
        # Columns from PartitionedQueue's batch routes: read-only, strings and
        # bytes checked when built; only the few distinct names are checked here.
        if len(opts) != n_jobs:
            raise ValidationError(f"opts length must match jobs length (got {len(opts)}, expected {n_jobs})")
        queues, keys = opts.columns()
        for q in set(queues):
            check_name(q, "opts queue")
        return list(queues), ([ABSENT] * n_jobs if keys is None else list(keys))
    if isinstance(opts, (str, bytes, Mapping)) or not isinstance(opts, Sequence):
        raise ValidationError("opts must be a list of dicts or None")
    if len(opts) != n_jobs:
        raise ValidationError(f"opts length must match jobs length (got {len(opts)}, expected {n_jobs})")
    fast = _queue_only_opts(opts)
    if fast is not None:
        return fast, [ABSENT] * n_jobs
    keyed = _queue_and_key_opts(opts)
    if keyed is not None:
        return keyed
    queues: list[str | None] = [None] * n_jobs
    keys: list[Any] = [ABSENT] * n_jobs
    seen_queues: set[str] = set()  # names already validated in this batch
    for i, entry in enumerate(opts):
        if entry is None:
            continue
        if type(entry) is dict and len(entry) == 1:
            # Fast path for the common {"queue": name} shape.
            q = entry.get("queue")
            if q.__class__ is str and q in seen_queues:
                queues[i] = q
                continue
        if not isinstance(entry, dict):
            raise ValidationError("each opts entry must be a dict or None")
        for name in entry:
            if not isinstance(name, str):
                raise ValidationError("opts keys must be strings")
            if name != "queue" and name != "ordering_key":
                raise ValidationError(f"unsupported opts key '{name}'; expected 'queue' or 'ordering_key'")
        q = entry.get("queue")
        if q is not None:
            if not isinstance(q, str):
                raise ValidationError("opts queue must be a string")
            if not q:
                raise ValidationError("opts queue must not be empty")
            queues[i] = check_name(q, "opts queue")
            if q.__class__ is str:
                seen_queues.add(q)
        if "ordering_key" in entry:
            keys[i] = check_key(entry["ordering_key"])
    return queues, keys


def _all_valid_names(names: Sequence[Any]) -> bool:
    """Whether every distinct name passes :func:`check_name` (without wording an error)."""
    for q in set(names):
        if q.__class__ is not str or not q or len(q) > MAX_NAME_LENGTH or _CONTROL.search(q):
            return False
    return True


def _queue_only_opts(opts: Sequence[Any]) -> list[str | None] | None:
    """The queues when every entry is exactly ``{"queue": <valid name>}``, else None.

    The common partitioned-producer shape, checked with C-level passes; any
    other shape takes the entry-by-entry path (which also words the errors).
    """
    if not opts or set(map(type, opts)) != {dict} or set(map(len, opts)) != {1}:
        return None
    try:
        queues = list(map(_GET_QUEUE, opts))
    except KeyError:
        return None
    return queues if _all_valid_names(queues) else None


def _queue_and_key_opts(opts: Sequence[Any]) -> tuple[list[str | None], list[Any]] | None:
    """Queues and keys when every entry is exactly ``{"queue": <valid name>,
    "ordering_key": <bytes/str/None>}`` (the shape of ``PartitionedQueue.route_by_key``
    results in a list), else None.

    Each distinct queue name and each distinct str key is checked or encoded
    once per batch. Anything unusual returns None, so the entry-by-entry path
    still decides, and words, every error.
    """
    if not opts or set(map(type, opts)) != {dict} or set(map(len, opts)) != {2}:
        return None
    try:
        queues = list(map(_GET_QUEUE, opts))
        raw_keys = list(map(_GET_KEY, opts))
    except KeyError:
        return None
    if not _all_valid_names(queues):
        return None
    key_types = set(map(type, raw_keys))
    if key_types <= _BYTES_OR_NONE:
        return queues, raw_keys  # check_key returns bytes and None unchanged
    if key_types <= _STR_OR_NONE:
        encoded = {k: None if k is None else k.encode("utf-8", "surrogatepass") for k in set(raw_keys)}
        return queues, list(map(encoded.__getitem__, raw_keys))
    return None


_GET_QUEUE = itemgetter("queue")  # C-level field reads of every opts dict
_GET_KEY = itemgetter("ordering_key")
_BYTES_OR_NONE = frozenset((bytes, type(None)))
_STR_OR_NONE = frozenset((str, type(None)))


# --------------------------------------------------------------------------
# Prepared batch
# --------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Batch:
    """A validated batch: everything needed to route and COPY it."""

    n: int
    args_text: list[str]
    kinds: list[str] | str  # one kind for all rows, or one per row
    queue: str  # batch default queue
    queues: list[str] | None  # per row, when opts routed any job elsewhere
    key: bytes | None  # batch default ordering key
    keys: list[bytes | None] | None  # per row, when opts set any key
    priority: int
    max_attempts: int
    tags: list[str]
    metadata: dict[str, Any]
    run_at: dt.datetime | None

    def touched_queues(self) -> list[str]:
        if self.queues is None:
            return [self.queue]
        return sorted(set(self.queues))


def prepare(
    jobs: Sequence[Any],
    *,
    kind: str | None,
    queue: str,
    priority: int,
    max_attempts: int,
    tags: Any,
    metadata: Any,
    run_at: Any,
    ordering_key: Any,
    opts: Any,
) -> Batch:
    if isinstance(jobs, (str, bytes, Mapping)) or not isinstance(jobs, Sequence):
        raise ValidationError("jobs must be a list")
    n = len(jobs)
    queue = check_name(queue, "queue")
    priority = check_priority(priority)
    max_attempts = check_max_attempts(max_attempts)
    tags = check_tags(tags)
    metadata = check_metadata(metadata)
    run_at = check_run_at(run_at)
    key = check_key(ordering_key)
    parsed = parse_opts(opts, n)

    types = set(map(type, jobs))
    for t in types:
        _args_mode(t)  # rejects unsupported argument types before any work
    if kind is not None:
        kinds: list[str] | str = check_name(kind, "kind")
    elif len(types) == 1:
        kinds = kind_for(jobs[0], None)
    else:
        kind_of = {t: kind_for_type(t) for t in types}
        kinds = [kind_of[type(j)] for j in jobs]

    texts = _serialise_all(jobs, types)
    if "\\u0000" in "\n".join(texts):  # PostgreSQL's jsonb cannot store NUL
        for i, t in enumerate(texts):
            if "\\u0000" in t:
                raise ValidationError(f"args at index {i} must not contain NUL characters")

    queues: list[str] | None = None
    keys: list[bytes | None] | None = None
    if parsed is not None:
        q_over, k_over = parsed
        # A set, not `None in q_over`: strings hash once, but each str-to-None
        # comparison of a list scan costs two rich-compare calls per row.
        distinct = set(q_over)
        if None not in distinct:
            queues = q_over  # type: ignore[assignment]
        elif len(distinct) > 1:  # some jobs routed elsewhere, the rest keep the batch queue
            queues = [q if q is not None else queue for q in q_over]
            distinct.discard(None)
            distinct.add(queue)
        if queues is not None and len(distinct) == 1:
            # Every job routed to the same queue (a width-1 partitioned queue,
            # say): that queue is the batch's, and routing takes the one-lane path.
            queue, queues = queues[0], None
        absent = k_over.count(ABSENT)
        if absent == 0:
            keys = k_over  # every job names its key (batch routes): nothing to fill in
        elif absent != len(k_over):
            keys = [key if k is ABSENT else k for k in k_over]
    return Batch(n, texts, kinds, queue, queues, key, keys, priority, max_attempts, tags, metadata, run_at)


# --------------------------------------------------------------------------
# Routing into lanes
# --------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Lane:
    queue: str
    shard: int
    rows: Sequence[int] | None  # ascending row indices (a list or a range); None = every row of the batch


def route(batch: Batch, shard_counts: Mapping[str, int], rotor: Callable[[str, int], int]) -> list[Lane]:
    """Split the batch into lanes. Keyed rows hash to their shard; unkeyed rows
    of one (queue, priority) all take the rotor's next shard (one lane each)."""
    if batch.queues is None and batch.keys is None:
        shards = shard_counts[batch.queue]
        if batch.key is not None:
            shard = shard_for_ordering_key(batch.key, shards)
        else:
            shard = rotor(batch.queue, shards) if shards > 1 else 0
        return [Lane(batch.queue, shard, None)]

    n = batch.n
    keys = batch.keys if batch.keys is not None else None
    by_queue = {batch.queue: range(n)} if batch.queues is None else group_rows(batch.queues)

    lanes: dict[tuple[str, int], Sequence[int]] = {}
    for q in sorted(by_queue):
        rows = by_queue[q]
        shards = shard_counts[q]
        if shards <= 1:
            lanes[(q, 0)] = rows  # one shard: keys do not matter here (one entry per queue)
            continue
        if keys is None:
            row_keys: list[bytes | None] = [batch.key] * len(rows) if batch.key is not None else []
        else:
            row_keys = [keys[i] for i in rows]
        if not row_keys:  # no keys at all: the rotor's shard for the whole group
            lanes.setdefault((q, rotor(q, shards)), []).extend(rows)
            continue
        if None in row_keys:
            keyed = [i for i, k in zip(rows, row_keys) if k is not None]
            unkeyed = [i for i, k in zip(rows, row_keys) if k is None]
            key_list = [k for k in row_keys if k is not None]
        else:
            keyed, unkeyed, key_list = rows, [], row_keys
        if keyed:
            # Hash each distinct key once: keys usually repeat within a batch.
            distinct = list(dict.fromkeys(key_list))
            if len(distinct) < len(key_list):
                shard_of = dict(zip(distinct, shards_for_ordering_keys(distinct, shards)))
                row_shards: list[int] = list(map(shard_of.__getitem__, key_list))
            else:
                row_shards = shards_for_ordering_keys(key_list, shards)
            by_shard: dict[int, list[int]] = {}
            for i, s in zip(keyed, row_shards):
                group = by_shard.get(s)
                if group is None:
                    by_shard[s] = [i]
                else:
                    group.append(i)
            for s, group in by_shard.items():
                lanes.setdefault((q, s), []).extend(group)  # type: ignore[union-attr]
        if unkeyed:
            lanes.setdefault((q, rotor(q, shards)), []).extend(unkeyed)  # type: ignore[union-attr]
    out = []
    for (q, s), rows in sorted(lanes.items()):
        if type(rows) is list:
            rows.sort()  # keyed and unkeyed rows of one shard were appended apart
        out.append(Lane(q, s, rows))
    return out


def group_rows(queues: list[str]) -> dict[str, Sequence[int]]:
    """Row indices of each queue, ascending (a ``range`` when they are evenly spaced).

    Round-robin routes (``route_by_indexes``, or ``route_by_index`` per job)
    repeat the partitions with period ``p`` (the number of names); one set and
    one list comparison, both C-level passes, recognise that and give each
    queue ``range(j, n, p)``, with no per-row Python work. Other
    columns (keyed routes) are grouped row by row.
    """
    n = len(queues)
    p = len(set(queues))
    if 1 < p < n and queues[p:] == queues[:-p]:
        # queues[i] == queues[i + p] everywhere, so the first p rows hold all p
        # names, each once: queue queues[j] sits exactly at rows j, j + p, ...
        return {q: range(j, n, p) for j, q in enumerate(queues[:p])}
    by_queue: dict[str, list[int]] = {}
    for i, q in enumerate(queues):
        rows = by_queue.get(q)
        if rows is None:
            by_queue[q] = [i]
        else:
            rows.append(i)
    return by_queue  # type: ignore[return-value]


# --------------------------------------------------------------------------
# COPY text formatting
# --------------------------------------------------------------------------

def array_literal(tags: list[str]) -> str:
    """A text[] literal: every element double-quoted, backslash and quote escaped
    (used in COPY text, where the caller still doubles backslashes, and as a
    query parameter)."""
    quoted = ('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in tags)
    return "{" + ",".join(quoted) + "}"


# Printable ASCII except backslash: bytea's escape input format takes these
# bytes literally, so such a key is sent as itself (customer ids, uuids, ...).
_LITERAL_BYTEA = re.compile(rb"[\x20-\x5b\x5d-\x7e]+\Z")


def _key_text(key: bytes | None) -> str:
    """The COPY text field of an ordering key ('' is our NULL).

    Printable keys go as plain text (bytea escape format, about half the bytes
    of hex); anything else, and the empty key, as bytea hex with the backslash
    doubled for COPY.
    """
    if key is None:
        return ""
    if _LITERAL_BYTEA.match(key):
        return key.decode("ascii")
    return "\\\\x" + key.hex()


def _escape(text: str) -> str:
    # The only COPY text escape our fields need: names are validated free of
    # control characters and JSON escapes its own, so tab/newline/CR never occur.
    return text.replace("\\", "\\\\")


# Key bytes -> COPY key field (escaped). Producers reuse the same keys (one per customer,
# say) batch after batch, so each is hex-encoded once, not once per row. Bounded:
# only short keys, and the cache starts over when full.
_KEY_FIELD_CACHE: dict[bytes | None, str] = {None: "\t"}
_KEY_FIELD_CACHE_MAX = 16_384
_KEY_FIELD_CACHE_KEY_BYTES = 128


def _key_fields(keys: list[bytes | None]) -> list[str]:
    """The key field (escaped bytea hex, then a tab) of every row."""
    cache = _KEY_FIELD_CACHE
    try:
        return list(map(cache.__getitem__, keys))  # the usual case: every key seen before
    except KeyError:
        pass
    distinct = list(set(keys))
    fields = list(map(cache.get, distinct))
    if None in fields:
        if len(cache) > _KEY_FIELD_CACHE_MAX:
            cache.clear()
            cache[None] = "\t"
        for no, (key, field) in enumerate(zip(distinct, fields)):
            if field is None:
                field = fields[no] = _key_text(key) + "\t"
                if key is not None and len(key) <= _KEY_FIELD_CACHE_KEY_BYTES:
                    cache[key] = field
    field_of = dict(zip(distinct, fields))
    return list(map(field_of.__getitem__, keys))


def copy_buffer(
    batch: Batch,
    lanes: list[Lane],
    starts: list[int] | None,
    now: dt.datetime,
    scheduled: bool,
    ids: list[int] | None,
    explicit_times: bool,
) -> tuple[tuple[str, ...], str]:
    """The COPY column list and text payload (NULL is the empty string).

    Only columns that differ from the table defaults are sent: the server
    parses less per row. ``explicit_times`` is False when ``now`` is the
    database's own transaction time, so the ``now()`` defaults give exactly
    the values the returned Job objects carry.

    JSON, hex keys and validated names contain no tab, newline or CR, so the
    only COPY escape needed is doubling backslashes. Each field is escaped on
    its own (args only when some contain a backslash), so the key fields'
    backslashes do not force a pass over the whole buffer.
    """
    const_cols: list[str] = ["queue"]
    const_vals: list[str] = []
    if batch.priority != 2:
        const_cols.append("priority")
        const_vals.append(str(batch.priority))
    if batch.max_attempts != 25:
        const_cols.append("max_attempts")
        const_vals.append(str(batch.max_attempts))
    if scheduled:
        const_cols.append("state")
        const_vals.append("scheduled")
    if batch.run_at is not None or explicit_times:
        const_cols.append("run_at")
        const_vals.append((batch.run_at or now).isoformat())
    if explicit_times:
        const_cols.append("created_at")
        const_vals.append(now.isoformat())
    if batch.tags:
        const_cols.append("tags")
        const_vals.append(array_literal(batch.tags))
    if batch.metadata:
        const_cols.append("metadata")
        const_vals.append(dumps(batch.metadata))
    const_cols.append("enqueue_shard")
    uniform_kind = isinstance(batch.kinds, str)
    if uniform_kind:
        const_cols.append("kind")
    with_seq = starts is not None
    with_key = batch.keys is not None or batch.key is not None
    row_cols = ([] if uniform_kind else ["kind"]) + (["lane_seq"] if with_seq else [])
    row_cols += (["ordering_key"] if with_key else []) + ["args"] + (["id"] if ids is not None else [])
    columns = tuple(const_cols + row_cols)

    fixed = "".join(_escape(v) + "\t" for v in const_vals)
    texts = batch.args_text
    if "\\" in "".join(texts):
        texts = [_escape(t) for t in texts]
    kinds = batch.kinds
    if uniform_kind:
        kinds = _escape(kinds)  # type: ignore[arg-type]
    elif any("\\" in k for k in set(kinds)):
        kinds = [_escape(k) for k in kinds]
    keys = batch.keys
    key_fields = _key_fields(keys) if keys is not None else None
    parts: list[str] = []
    pos = 0  # ids are in lane order
    for lane_no, lane in enumerate(lanes):
        head = f"{_escape(lane.queue)}\t{fixed}{lane.shard}\t" + (f"{kinds}\t" if uniform_kind else "")
        rows: Any = lane.rows if lane.rows is not None else range(batch.n)
        every = lane.rows is None
        count = batch.n if every else len(rows)
        lane_ids = ids[pos : pos + count] if ids is not None else None
        pos += count
        if uniform_kind and keys is None:
            key_field = _key_text(batch.key) + "\t" if with_key else ""
            sel = texts if every else _pick(texts, rows)
            if lane_ids is None:
                if with_seq:
                    start = starts[lane_no]  # type: ignore[index]
                    mid = "\t" + key_field
                    parts.extend([f"{head}{s}{mid}{a}\n" for s, a in zip(range(start, start + len(sel)), sel)])
                else:
                    head += key_field
                    parts.extend([f"{head}{a}\n" for a in sel])
            elif with_seq:
                start = starts[lane_no]  # type: ignore[index]
                mid = "\t" + key_field
                parts.extend(
                    [f"{head}{s}{mid}{a}\t{j}\n" for s, a, j in zip(range(start, start + len(sel)), sel, lane_ids)]
                )
            else:
                head += key_field
                parts.extend([f"{head}{a}\t{j}\n" for a, j in zip(sel, lane_ids)])
            continue
        if uniform_kind:
            # Per-row keys, one kind: the same f-string rows with the memoised key field.
            sel = texts if every else _pick(texts, rows)
            ksel = key_fields if every else _pick(key_fields, rows)  # type: ignore[arg-type]
            if with_seq:
                start = starts[lane_no]  # type: ignore[index]
                seqs = range(start, start + len(sel))
                if lane_ids is None:
                    parts.extend([f"{head}{s}\t{k}{a}\n" for s, k, a in zip(seqs, ksel, sel)])
                else:
                    parts.extend([f"{head}{s}\t{k}{a}\t{j}\n" for s, k, a, j in zip(seqs, ksel, sel, lane_ids)])
            elif lane_ids is None:
                parts.extend([f"{head}{k}{a}\n" for k, a in zip(ksel, sel)])
            else:
                parts.extend([f"{head}{k}{a}\t{j}\n" for k, a, j in zip(ksel, sel, lane_ids)])
            continue
        # General path: per-row kind, key and/or id.
        seq = starts[lane_no] if with_seq else 0  # type: ignore[index]
        for offset, i in enumerate(rows):
            fields = [head]
            if not uniform_kind:
                fields.append(f"{kinds[i]}\t")
            if with_seq:
                fields.append(f"{seq}\t")
                seq += 1
            if with_key:
                fields.append(key_fields[i] if key_fields is not None else _key_text(batch.key) + "\t")
            fields.append(texts[i])
            fields.append(f"\t{lane_ids[offset]}\n" if lane_ids is not None else "\n")
            parts.append("".join(fields))
    return columns, "".join(parts)


def _pick(values: Sequence[Any], rows: Sequence[int]) -> Sequence[Any]:
    if type(rows) is range:
        return values[rows.start : rows.stop : rows.step]  # type: ignore[index]
    if len(rows) == 1:
        return [values[rows[0]]]
    return itemgetter(*rows)(values)


def row_keys(batch: Batch) -> list[bytes | None]:
    return batch.keys if batch.keys is not None else [batch.key] * batch.n


def row_queues(batch: Batch) -> list[str]:
    return batch.queues if batch.queues is not None else [batch.queue] * batch.n


def lane_counts(lanes: list[Lane], n: int) -> list[int]:
    return [len(l.rows) if l.rows is not None else n for l in lanes]


def is_finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
