"""Claim requests of many queues, batched into few statements and pipelined.

Every claimer loop of the runtime asks for jobs of one queue (it holds that
many free slots). Sending one statement per request would cost a round trip
per partition; sending one statement for everything leaves the worker idle
while it is on the server, then the server idle while the worker runs what
came back. The batcher does neither:

* **Coalescing.** Requests made in the same event-loop turn go out together:
  one statement with a cap per queue (``claim_many.sql``).
* **Claim groups.** Queues are dealt round robin into ``groups`` groups, in the
  order they are first seen (partitions of one logical queue alternate). Each
  group has at most one statement in flight, so a queue is never in two
  statements at once and claimers of the same lanes never race each other.
* **Staggering.** From idle only one group is sent; the others wait until a
  statement comes back. The next group's statement is sent *before* the jobs
  that just came back are handed out, so from then on one group is on the
  server while the worker runs the other group's jobs: a two-stage pipeline.

A single queue forms one group: its statements are strictly one after the
other (a second one would only meet the first at the lane's claim head). With
two or more partitions the pipeline is what lets a worker go faster than with
one queue (docs/benchmarks.md, ADR 0013).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

from awa.errors import ValidationError

# Two groups make the two pipeline stages; more would only split the same
# capacity into more, smaller statements.
DEFAULT_CLAIM_GROUPS = 2

# send(queues, limits, setting) -> claimed jobs (each with a ``.queue``), in claim order
SendClaims = Callable[[list[str], list[int], Hashable], Awaitable[Sequence[Any]]]

_Request = tuple[str, int, "asyncio.Future[list[Any]]"]


class ClaimBatcher:
    def __init__(self, send: SendClaims, groups: int = DEFAULT_CLAIM_GROUPS) -> None:
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValidationError(f"claim groups must be an int >= 1, got {groups!r}")
        self._send = send
        self._groups = groups
        # Where the round robin starts: workers in other processes deal the
        # same partitions into different groups, so their pipelines collide
        # less often at the same lanes.
        self._offset = random.randrange(groups)
        self._group_of: dict[str, int] = {}
        # Statements differ by ``setting`` (deadline, aging), so each setting
        # batches on its own: (setting, group) -> waiting requests.
        self._waiting: dict[tuple[Hashable, int], list[_Request]] = {}
        # (setting, group) -> the requests of its statement on the server
        self._in_flight: dict[tuple[Hashable, int], list[_Request]] = {}
        self._last_started: dict[Hashable, int] = {}
        self._dispatch_pending: set[Hashable] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.statements_sent = 0  # for tests and introspection

    def group_of(self, queue: str) -> int:
        group = self._group_of.get(queue)
        if group is None:
            group = self._group_of[queue] = (len(self._group_of) + self._offset) % self._groups
        return group

    async def claim(self, queue: str, limit: int, setting: Hashable) -> list[Any]:
        """Up to ``limit`` jobs of ``queue``, claimed in a statement shared with
        the other requests of its group."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.setdefault((setting, self.group_of(queue)), []).append((queue, limit, future))
        if setting not in self._dispatch_pending:
            # Next loop turn: the claimers woken in this one join the batch.
            self._dispatch_pending.add(setting)
            loop.call_soon(self._dispatch_soon, setting)
        return await future

    def _dispatch_soon(self, setting: Hashable) -> None:
        self._dispatch_pending.discard(setting)
        self._dispatch(setting)

    def _dispatch(self, setting: Hashable) -> None:
        ready = []
        for g in range(self._groups):
            waiting = self._waiting.get((setting, g))
            if waiting and (setting, g) not in self._in_flight:
                # Requests whose claimer is gone need no statement (and must not
                # make a group look ready, or the others would wait behind it).
                waiting[:] = [r for r in waiting if not r[2].done()]
                if waiting:
                    ready.append(g)
        if not ready:
            return
        if not any((setting, g) in self._in_flight for g in range(self._groups)):
            # From idle: one group now (the one after the last started), the
            # others when it comes back, half a cycle later.
            after = self._last_started.get(setting, -1)
            ready = [min(ready, key=lambda g: (g - after - 1) % self._groups)]
        loop = asyncio.get_running_loop()
        for group in ready:
            batch = self._waiting.pop((setting, group))
            self._in_flight[(setting, group)] = batch
            self._last_started[setting] = group
            self.statements_sent += 1
            task = loop.create_task(self._run(setting, group, batch), name="awa-claim-batch")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, setting: Hashable, group: int, batch: list[_Request]) -> None:
        # Each queue once per statement, its requests' limits added up; a
        # fixed order keeps the lock order the same in every worker.
        by_queue: dict[str, list[tuple[int, asyncio.Future[list[Any]]]]] = {}
        for queue, limit, future in batch:
            by_queue.setdefault(queue, []).append((limit, future))
        names = sorted(by_queue)
        limits = [sum(limit for limit, _ in by_queue[name]) for name in names]
        try:
            jobs = await self._send(names, limits, setting)
        except BaseException as exc:  # every waiter releases its slots and backs off
            self._finish(setting, group)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                self._fail_waiting(setting)
                raise
            return
        # Send the next statement first, then hand these jobs out: the
        # server works on it while this worker runs them.
        self._finish(setting, group)
        per_queue: dict[str, list[Any]] = {name: [] for name in names}
        for job in jobs:
            per_queue[job.queue].append(job)
        for name in names:
            got = per_queue[name]
            for limit, future in by_queue[name]:
                share, got = got[:limit], got[limit:]
                if not future.done():
                    future.set_result(share)

    def _finish(self, setting: Hashable, group: int) -> None:
        self._in_flight.pop((setting, group), None)
        try:
            self._dispatch(setting)
        except RuntimeError:  # the loop is closing: fail the waiters, never hang them
            self._fail_waiting(setting)

    def _fail_waiting(self, setting: Hashable) -> None:
        for group in range(self._groups):
            for _, _, future in self._waiting.pop((setting, group), []):
                if not future.done():
                    future.set_exception(asyncio.CancelledError())
