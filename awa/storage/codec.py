"""JSON as the storage layer writes and reads it.

orjson is optional: the same JSON, several times faster per row. Without it
the standard library gives identical text (compact separators, no NaN).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    orjson = None  # type: ignore[assignment]

HAVE_ORJSON = orjson is not None

_std_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def std_dumps(obj: Any) -> str:
    """Compact JSON from the standard library (NaN and infinities rejected)."""
    return _std_encoder.encode(obj)


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
