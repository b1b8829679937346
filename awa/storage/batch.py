"""A validated enqueue batch (no I/O).

The whole batch is validated and serialised before the first database call,
so a bad job anywhere means nothing is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from awa.errors import SerializationError, ValidationError
from awa.storage.codec import HAVE_ORJSON, JsonRejected, strict_dumps, strict_dumps_many
from awa.storage.opts import ABSENT, parse_opts
from awa.storage.unique import split_unique
from awa.storage.validate import (
    check_key,
    check_max_attempts,
    check_metadata,
    check_name,
    check_queue,
    check_priority,
    check_run_at,
    check_tags,
    derive_kind,
)

ARGS_TYPE_ERROR = "Job args must be a dataclass, pydantic BaseModel, or dict"


@dataclasses.dataclass(slots=True)
class Batch:
    """Everything needed to route and COPY a batch."""

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
    unique: list[Any] | None = None  # per row: UniqueOpts or None (awa.storage.unique)

    def touched_queues(self) -> list[str]:
        if self.queues is None:
            return [self.queue]
        return sorted(set(self.queues))

    def row_keys(self) -> list[bytes | None]:
        return self.keys if self.keys is not None else [self.key] * self.n

    @property
    def kind(self) -> str:
        """The first row's kind (a one-job batch's kind)."""
        return self.kinds if isinstance(self.kinds, str) else self.kinds[0]


# How values of one args type become JSON, decided once per type.
_DIRECT, _ASDICT, _PYDANTIC = 0, 1, 2
_MODES: dict[type, int] = {}


def _args_mode(t: type) -> int:
    mode = _MODES.get(t)
    if mode is None:
        if issubclass(t, dict):
            mode = _DIRECT
        elif hasattr(t, "model_dump"):
            mode = _PYDANTIC
        elif dataclasses.is_dataclass(t):
            # orjson encodes dataclass instances itself, field by field.
            mode = _DIRECT if HAVE_ORJSON else _ASDICT
        else:
            raise ValidationError(ARGS_TYPE_ERROR)
        _MODES[t] = mode
    return mode


def _serialise_all(jobs: Sequence[Any], types: set[type]) -> list[str]:
    if len(types) == 1 and _args_mode(next(iter(types))) == _DIRECT and HAVE_ORJSON:
        try:
            return strict_dumps_many(jobs)
        except (TypeError, ValueError, RecursionError):
            pass  # fall through: the job-by-job path names the culprit
    return [_serialise_one(i, j) for i, j in enumerate(jobs)]


def _serialise_one(index: int, job: Any) -> str:
    mode = _args_mode(type(job))
    try:
        if mode == _PYDANTIC:
            payload = job.model_dump(mode="json")
        elif mode == _ASDICT or (mode == _DIRECT and not isinstance(job, dict) and not HAVE_ORJSON):
            payload = dataclasses.asdict(job)
        else:
            payload = job
    except RecursionError:
        raise ValidationError(f"args at index {index} nest too deep to serialise") from None
    try:
        return strict_dumps(payload)
    except JsonRejected as exc:
        raise ValidationError(f"args at index {index} {exc}") from None
    except (TypeError, ValueError, RecursionError) as exc:
        if mode == _DIRECT and not isinstance(job, dict):
            try:  # a dataclass orjson could not encode: retry as a plain dict
                return strict_dumps(dataclasses.asdict(job))
            except JsonRejected as exc2:
                raise ValidationError(f"args at index {index} {exc2}") from None
            except (TypeError, ValueError, RecursionError) as exc2:
                exc = exc2
        raise SerializationError(f"args at index {index} are not JSON-serialisable: {exc}") from None


def kind_for_type(t: type) -> str:
    """The kind of an args type when none is given (``SendEmail`` -> ``send_email``)."""
    if issubclass(t, dict):
        raise ValidationError("kind is required when args is a dict")
    return check_name(derive_kind(t.__name__), "kind")


def _kinds(jobs: Sequence[Any], kind: str | None, types: set[type]) -> list[str] | str:
    if kind is not None:
        return check_name(kind, "kind")
    if len(types) == 1:
        return kind_for_type(type(jobs[0]))
    kind_of = {t: kind_for_type(t) for t in types}
    return [kind_of[type(j)] for j in jobs]


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
    unique_opts: Any = None,
) -> Batch:
    """Validate and serialise a batch; ValidationError names the first problem."""
    # A list or tuple first: the abstract-class checks cost a single insert more
    # than the rest of this function's checks together.
    if type(jobs) is not list and type(jobs) is not tuple and (
            isinstance(jobs, (str, bytes, Mapping)) or not isinstance(jobs, Sequence)):
        raise ValidationError("jobs must be a list")
    n = len(jobs)
    queue = check_queue(queue, "queue")
    priority = check_priority(priority)
    max_attempts = check_max_attempts(max_attempts)
    tags = check_tags(tags)
    metadata = check_metadata(metadata)
    run_at = check_run_at(run_at)
    key = check_key(ordering_key)
    if unique_opts is None and opts is None:  # the common single insert: nothing to split or parse
        unique_rows, parsed = None, None
    else:
        opts, unique_rows = split_unique(unique_opts, opts, n)
        parsed = parse_opts(opts, n)

    types = {type(jobs[0])} if n == 1 else set(map(type, jobs))
    for t in types:
        _args_mode(t)  # rejects unsupported argument types before any work
    kinds = _kinds(jobs, kind, types)
    texts = _serialise_all(jobs, types)
    if "\\u0000" in (texts[0] if n == 1 else "\n".join(texts)):  # PostgreSQL's jsonb cannot store NUL
        for i, t in enumerate(texts):
            if "\\u0000" in t:
                raise ValidationError(f"args at index {i} must not contain NUL characters")

    queues, keys = None, None
    if parsed is not None:
        queue, queues, keys = _apply_opts(parsed, queue, key)
    batch = Batch(n, texts, kinds, queue, queues, key, keys, priority, max_attempts, tags, metadata, run_at)
    batch.unique = unique_rows
    return batch


def _apply_opts(
    parsed: tuple[list[str | None], list[Any]], queue: str, key: bytes | None
) -> tuple[str, list[str] | None, list[bytes | None] | None]:
    """The batch queue, per-row queues and per-row keys once opts are applied."""
    q_over, k_over = parsed
    queues: list[str] | None = None
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
    keys: list[bytes | None] | None = None
    absent = k_over.count(ABSENT)
    if absent == 0:
        keys = k_over  # every job names its key (batch routes): nothing to fill in
    elif absent != len(k_over):
        keys = [key if k is ABSENT else k for k in k_over]
    return queue, queues, keys
