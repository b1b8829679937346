"""Per-job opts of a batch: queue overrides and tri-state ordering keys.

``opts[i]`` may route job ``i`` to another queue and/or give it an ordering
key. A key that is absent inherits the batch default (:data:`ABSENT`); an
explicit ``None`` means no key. The common shapes (every entry
``{"queue": q}``, or ``{"queue": q, "ordering_key": k}`` as
``PartitionedQueue.route_by_key`` returns them, or a ``RoutedOpts`` column
pair from the batch routes) are recognised with C-level passes; anything else
is read entry by entry, which also words every error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from awa.errors import ValidationError
from awa.routing.routed_opts import RoutedOpts
from awa.storage.validate import check_key, check_queue, is_valid_queue

ABSENT: Any = object()  # "key not given" (distinct from an explicit None)
OPTS_KEYS = ("queue", "ordering_key")

_GET_QUEUE = itemgetter("queue")
_GET_KEY = itemgetter("ordering_key")
_BYTES_OR_NONE = frozenset((bytes, type(None)))
_STR_OR_NONE = frozenset((str, type(None)))

ParsedOpts = tuple[list[str | None], list[Any]]


def parse_opts(opts: Any, n_jobs: int) -> ParsedOpts | None:
    """Per-job queues (None = the batch queue) and keys (ABSENT = the batch key)."""
    if opts is None:
        return None
    if type(opts) is RoutedOpts:
        # Columns from PartitionedQueue's batch routes: read-only, strings and
        # bytes checked when built; only the few distinct names are checked here.
        _check_length(len(opts), n_jobs)
        queues, keys = opts.columns()
        for q in set(queues):
            check_queue(q, "opts queue")
        return list(queues), ([ABSENT] * n_jobs if keys is None else list(keys))
    if isinstance(opts, (str, bytes, Mapping)) or not isinstance(opts, Sequence):
        raise ValidationError("opts must be a list of dicts or None")
    _check_length(len(opts), n_jobs)
    fast = _queue_only(opts)
    if fast is not None:
        return fast, [ABSENT] * n_jobs
    keyed = _queue_and_key(opts)
    if keyed is not None:
        return keyed
    return _entry_by_entry(opts, n_jobs)


def _check_length(got: int, expected: int) -> None:
    if got != expected:
        raise ValidationError(f"opts length must match jobs length (got {got}, expected {expected})")


def _all_valid_names(names: Sequence[Any]) -> bool:
    return all(map(is_valid_queue, set(names)))


def _queue_only(opts: Sequence[Any]) -> list[str | None] | None:
    """The queues when every entry is exactly ``{"queue": <valid name>}``, else None."""
    if not opts or set(map(type, opts)) != {dict} or set(map(len, opts)) != {1}:
        return None
    try:
        queues = list(map(_GET_QUEUE, opts))
    except KeyError:
        return None
    return queues if _all_valid_names(queues) else None


def _queue_and_key(opts: Sequence[Any]) -> ParsedOpts | None:
    """Queues and keys when every entry is exactly ``{"queue": <valid name>,
    "ordering_key": <bytes/str/None>}``, else None. Each distinct str key is
    encoded once per batch."""
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
        try:
            encoded = {k: None if k is None else k.encode("utf-8") for k in set(raw_keys)}
        except UnicodeEncodeError:
            return None  # a lone surrogate: the entry-by-entry path words the error
        return queues, list(map(encoded.__getitem__, raw_keys))
    return None


def _entry_by_entry(opts: Sequence[Any], n_jobs: int) -> ParsedOpts:
    queues: list[str | None] = [None] * n_jobs
    keys: list[Any] = [ABSENT] * n_jobs
    for i, entry in enumerate(opts):
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise ValidationError("each opts entry must be a dict or None")
        for name in entry:
            if not isinstance(name, str):
                raise ValidationError("opts keys must be strings")
            if name not in OPTS_KEYS:
                raise ValidationError(f"unsupported opts key '{name}'; expected 'queue' or 'ordering_key'")
        q = entry.get("queue")
        if q is not None:
            if not isinstance(q, str):
                raise ValidationError("opts queue must be a string")
            queues[i] = check_queue(q, "opts queue")
        if "ordering_key" in entry:
            keys[i] = check_key(entry["ordering_key"])
    return queues, keys
