"""Handler registration by job kind, and typed args decoding."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from awa.errors import ValidationError
from awa.storage.validate import derive_kind


# The clients derive an args class's kind by the same rule when enqueueing.
derive_kind_from_name = derive_kind


def kind_for(args_type: type) -> str:
    """The kind of an args class (``SendEmail`` -> ``send_email``)."""
    return derive_kind(args_type.__name__)


@dataclass(frozen=True, slots=True)
class Handler:
    kind: str
    queue: str
    func: Callable[..., Any]
    args_type: type | None  # None: the handler receives the stored dict
    is_async: bool
    field_names: frozenset[str] | None = None  # dataclass fields, to ignore unknown keys

    def decode_args(self, raw: Any) -> Any:
        args_type = self.args_type
        if args_type is None or isinstance(raw, args_type):
            return raw
        if isinstance(raw, dict):
            names = self.field_names
            if names is not None:
                if names.issuperset(raw):
                    return args_type(**raw)
                return args_type(**{k: v for k, v in raw.items() if k in names})
            if hasattr(args_type, "model_validate"):  # pydantic v2
                return args_type.model_validate(raw)
            return args_type(**raw)
        return args_type(raw)


class Registry:
    """Handlers of one client, keyed by job kind."""

    def __init__(self) -> None:
        self._by_kind: dict[str, Handler] = {}
        self._declared: dict[str, None] = {}  # queues promised by registrations, in order
        self.periodic: dict[str, Any] = {}  # name -> PeriodicJob (awa.worker.cron), synced at start

    def __len__(self) -> int:
        return len(self._by_kind)

    def get(self, kind: str) -> Handler | None:
        return self._by_kind.get(kind)

    def handlers(self) -> list[Handler]:
        return list(self._by_kind.values())

    def declared_queues(self) -> list[str]:
        return list(self._declared)

    def decorator(
        self, args_type: type | str, *, kind: str | None = None, queue: str = "default"
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        if isinstance(args_type, str):
            if kind is not None and kind != args_type:
                raise ValidationError("give the kind once: task('kind') or task(ArgsType, kind='kind')")
            resolved_kind, typed = args_type, None
        elif isinstance(args_type, type):
            resolved_kind, typed = (kind or kind_for(args_type)), args_type
        else:
            raise ValidationError(f"task() takes an args class or a kind string, got {type(args_type).__name__}")
        if not resolved_kind:
            raise ValidationError("job kind must be a non-empty string")
        if not isinstance(queue, str) or not queue:
            raise ValidationError("queue must be a non-empty string")

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(func):
                raise ValidationError("a task handler must be callable")
            existing = self._by_kind.get(resolved_kind)
            if existing is not None:
                # The same handler may be declared for more queues (e.g. every partition).
                # == rather than is: ``obj.method`` is a new bound-method object on
                # every access, equal to the last one when self and function match.
                if existing.func == func and existing.args_type is typed:
                    self._declared[queue] = None
                    return func
                raise ValidationError(f"a handler for job kind '{resolved_kind}' is already registered")
            is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))
            names = (
                frozenset(f.name for f in dataclasses.fields(typed))
                if typed is not None and dataclasses.is_dataclass(typed)
                else None
            )
            self._by_kind[resolved_kind] = Handler(resolved_kind, queue, func, typed, is_async, names)
            self._declared[queue] = None
            return func

        return register
