"""The object a handler receives: the claimed job plus typed args and progress."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from awa.errors import ValidationError


class RunningJob:
    """One attempt of one job, as seen by its handler.

    Fields of the stored job (``id``, ``kind``, ``queue``, ``attempt``,
    ``max_attempts``, ``priority``, ``ordering_key``, ``run_lease``, ...) are
    readable as attributes; ``args`` is decoded into the registered args type.
    ``flush`` writes the job's progress now (the runtime's heartbeat call).
    """

    __slots__ = ("raw", "args", "_flush", "_loop", "_cancelled", "_progress", "_progress_dirty")

    def __init__(
        self,
        raw: Any,
        args: Any,
        flush: Callable[[RunningJob], Awaitable[bool]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.raw = raw
        self.args = args
        self._flush = flush
        self._loop = loop
        self._cancelled = False
        self._progress: dict[str, Any] | None = None
        self._progress_dirty = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def __repr__(self) -> str:
        return f"RunningJob(id={self.raw.id}, kind={self.raw.kind!r}, queue={self.raw.queue!r}, attempt={self.raw.attempt})"

    @property
    def id(self) -> int:
        return self.raw.id

    @property
    def run_lease(self) -> int:
        return self.raw.run_lease

    # -- cancellation ----------------------------------------------------------
    def is_cancelled(self) -> bool:
        """True once the runtime is shutting down or the attempt lost its lease
        (admin cancel, rescue). Long handlers should poll it and stop early."""
        return self._cancelled

    def mark_cancelled(self) -> None:
        """Tell the handler to stop (the runtime calls this)."""
        self._cancelled = True

    # -- progress --------------------------------------------------------------
    @property
    def progress(self) -> dict[str, Any] | None:
        return self._progress

    @property
    def progress_pending(self) -> bool:
        """Whether progress was set since it was last written."""
        return self._progress_dirty

    def take_progress(self) -> dict[str, Any] | None:
        """The progress to write now; it no longer counts as pending."""
        self._progress_dirty = False
        return self._progress

    def set_progress(self, percent: int, message: str | None = None, **details: Any) -> None:
        """Record progress; it is written with the next heartbeat (or ``flush_progress``)."""
        if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
            raise ValidationError(f"progress percent must be an int in 0..100, got {percent!r}")
        progress: dict[str, Any] = {"percent": percent}
        if message is not None:
            progress["message"] = message
        progress.update(details)
        self._progress = progress
        self._progress_dirty = True

    async def flush_progress(self) -> bool:
        """Write the progress now. False means the attempt no longer owns the job."""
        return await self._flush(self)

    def flush_progress_sync(self) -> bool:
        """``flush_progress`` for sync handlers running on the worker thread pool."""
        return asyncio.run_coroutine_threadsafe(self._flush(self), self._loop).result()
