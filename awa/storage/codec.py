"""JSON as the storage layer writes and reads it.

orjson is optional: the same JSON, several times faster per row. Without it
the standard library gives identical text (compact separators, no NaN).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    orjson = None  # type: ignore[assignment]

HAVE_ORJSON = orjson is not None

_std_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
# Non-ASCII kept as itself (as orjson writes it), so a lone surrogate stays
# visible to the check below rather than hiding in a \\udXXX escape.
_std_strict_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)

# Containers nest at most this deep in stored args and metadata (the top-level
# dict counts as 1): serde_json's default limit, so awa's Rust workers can read
# every job; orjson (254) and PostgreSQL's jsonb go deeper.
MAX_JSON_DEPTH = 128
_SURROGATE = re.compile("[\ud800-\udfff]")


def std_dumps(obj: Any) -> str:
    """Compact JSON from the standard library (NaN and infinities rejected)."""
    return _std_encoder.encode(obj)


class JsonRejected(ValueError):
    """A value JSON could encode, but not as the job store needs it; the
    message ends a sentence about the value ("must not contain NaN ...")."""


def check_tree(obj: Any) -> None:
    """Reject what would not round-trip: NaN and infinities (orjson writes
    them as null), non-str dict keys (the standard encoder stringifies them),
    nesting deeper than :data:`MAX_JSON_DEPTH`. Iterative, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth = pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                raise JsonRejected(f"must not contain NaN or infinity (JSON has neither), got {value!r}")
            continue
        if isinstance(value, (str, int, bool)) or value is None:
            continue
        if isinstance(value, dict):
            children: Any = value.values()
            for k in value:
                if not isinstance(k, str):
                    raise JsonRejected(f"must have string keys only, got {type(k).__name__} key {k!r}")
        elif isinstance(value, (list, tuple)):
            children = value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            children = [getattr(value, f.name) for f in dataclasses.fields(value)]
        else:
            continue  # a leaf the encoder handles (or rejects) itself
        if depth > MAX_JSON_DEPTH:
            raise JsonRejected(f"must not nest deeper than {MAX_JSON_DEPTH} levels")
        for child in children:
            push((child, depth + 1))


def _needs_tree_check(text: str) -> bool:
    # NaN/inf become null in orjson's output, and depth is bounded by the
    # number of opening brackets: most documents pass both C-level tests.
    return "null" in text or text.count("{") + text.count("[") > MAX_JSON_DEPTH


def _strict_std(obj: Any) -> str:
    check_tree(obj)
    try:
        text = _std_strict_encoder.encode(obj)
    except RecursionError:  # pragma: no cover - check_tree bounds the depth first
        raise JsonRejected(f"must not nest deeper than {MAX_JSON_DEPTH} levels") from None
    if _SURROGATE.search(text) is not None:
        raise JsonRejected("must not contain lone surrogates (not valid Unicode)")
    return text


if orjson is not None:
    _orjson_dumps = orjson.dumps
    _OrjsonEncodeError = orjson.JSONEncodeError
    _orjson_loads = orjson.loads
    _OrjsonDecodeError = orjson.JSONDecodeError

    def dumps(obj: Any) -> str:
        try:
            return _orjson_dumps(obj).decode()
        except _OrjsonEncodeError:
            return std_dumps(obj)  # e.g. ints beyond 64 bits; raises on real junk

    def dumps_many(objs: Sequence[Any]) -> list[str]:
        """``dumps`` of every value; raises TypeError/ValueError on the first bad one."""
        d = _orjson_dumps
        return [d(o).decode() for o in objs]

    loads: Callable[[Any], Any] = _orjson_loads

    def strict_dumps(obj: Any) -> str:
        """JSON text every reader decodes back to ``obj``: :class:`JsonRejected`
        for NaN/infinity, non-str keys, too deep nesting, lone surrogates;
        TypeError/ValueError for what JSON cannot hold at all."""
        try:
            text = _orjson_dumps(obj).decode()
        except _OrjsonEncodeError:
            return _strict_std(obj)  # ints beyond 64 bits, or junk the checks name
        if _needs_tree_check(text):
            check_tree(obj)
        return text

    def strict_dumps_many(objs: Sequence[Any]) -> list[str]:
        """:func:`strict_dumps` of every value; raises on the first bad one."""
        d = _orjson_dumps
        texts = [d(o).decode() for o in objs]
        # Whole-batch tests in C first: no "null" anywhere, and no document
        # long enough to hold MAX_JSON_DEPTH + 1 bracket pairs.
        if texts and ("null" in "".join(texts) or max(map(len, texts)) > 2 * MAX_JSON_DEPTH):
            for o, t in zip(objs, texts):
                if _needs_tree_check(t):
                    check_tree(o)
        return texts

    # orjson turns integers beyond 64 bits into floats (silently rounding them);
    # a run of 19+ digits anywhere sends the document to the standard decoder.
    _LONG_DIGITS = re.compile(rb"[0-9]{19}")

    def load_json(data: Any) -> Any:
        """Decode a json/jsonb result value exactly (bytes or memoryview)."""
        if _LONG_DIGITS.search(data) is None:
            try:
                return _orjson_loads(data)
            except _OrjsonDecodeError:
                pass
        return json.loads(bytes(data))

else:  # pragma: no cover
    dumps = std_dumps
    loads = json.loads
    strict_dumps = _strict_std

    def strict_dumps_many(objs: Sequence[Any]) -> list[str]:
        return [_strict_std(o) for o in objs]

    def dumps_many(objs: Sequence[Any]) -> list[str]:
        return [std_dumps(o) for o in objs]

    def load_json(data: Any) -> Any:
        return json.loads(bytes(data))


def use_fast_json(conn: Any) -> None:
    """Decode json/jsonb results of this connection with :func:`load_json`.

    Set on the connections of pools the clients create themselves: every
    claimed job's args are decoded on the worker's hot path. Without orjson
    psycopg's own loaders are kept.
    """
    if orjson is None:  # pragma: no cover
        return
    conn.adapters.register_loader("json", FastJsonLoader)
    conn.adapters.register_loader("jsonb", FastJsonbLoader)


def _loader_classes() -> tuple[type, type]:
    from psycopg.types.json import JsonbLoader, JsonLoader

    class FastJsonLoader(JsonLoader):
        def load(self, data: Any) -> Any:
            return load_json(data)

    class FastJsonbLoader(JsonbLoader):
        def load(self, data: Any) -> Any:
            return load_json(data)

    return FastJsonLoader, FastJsonbLoader


FastJsonLoader, FastJsonbLoader = _loader_classes()
