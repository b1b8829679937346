"""Logging for every ``awa`` command: ``--log-level`` and ``--log-format``.

Records go to stderr (stdout stays for results), one line each, with a UTC
timestamp and the level: ``2024-05-01T12:00:00.123Z WARNING awa.worker: ...``.
``--log-format json`` prints one JSON object per line instead, with the
record's structured fields (a failed attempt carries ``job_id``, ``kind``,
``queue``, ``attempt``, ``max_attempts``, ``error``, ``outcome`` and
``next_run_at``). ``AWA_LOG_LEVEL`` / ``AWA_LOG_FORMAT`` set the defaults.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from typing import Any

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
# Attributes every LogRecord has; anything else was passed with extra= and is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument("--log-level", choices=LEVELS, default=argparse.SUPPRESS,
                       help="least severe level printed (default info, or $AWA_LOG_LEVEL)")
    group.add_argument("--log-format", choices=FORMATS, default=argparse.SUPPRESS,
                       help="text lines or JSON objects on stderr (default text, or $AWA_LOG_FORMAT)")


def _timestamp(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(fields_of(record))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def _choice(value: str | None, env: str, allowed: tuple[str, ...], default: str) -> str:
    value = value or os.environ.get(env, "").strip().lower() or default
    if value not in allowed:
        from awa.cli.common import usage_error

        raise usage_error(f"{env} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def configure(args: argparse.Namespace | None = None, *, stream: Any = None) -> logging.Handler:
    """Install one stderr handler on the ``awa`` logger (replacing an earlier one)."""
    level = _choice(getattr(args, "log_level", None), "AWA_LOG_LEVEL", LEVELS, "info")
    fmt = _choice(getattr(args, "log_format", None), "AWA_LOG_FORMAT", FORMATS, "text")
    logger = logging.getLogger("awa")
    for old in [h for h in logger.handlers if getattr(h, "_awa_cli", False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._awa_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return handler
