"""Execution slots and dispatch-rate gates, all non-blocking and single-loop.

A claimer asks for slots *before* it claims (so every job it marks running
already owns one), claims at most that many, and gives back what the claim did
not use. All objects here live on one event loop and are never touched from
another thread, so plain integers suffice.

* :class:`HardSlots` - hard-reserved mode: a private cap per physical queue.
* :class:`WeightedSlots` - weighted mode: ``min_workers`` private slots plus a
  share of an :class:`OverflowPool` split by weight among queues that want it.
* :class:`TokenBucket` - optional per-queue start rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from awa.worker.config import RateLimit


class OverflowPool:
    """Slots above the sum of ``min_workers``, shared by weight (work-conserving).

    A queue's fair share is ``ceil(total * weight / contending_weight)`` where
    contending queues are those that asked recently or still hold slots. When
    one queue is busy alone it may take the whole pool.
    """

    def __init__(self, total: int, weights: dict[str, int]) -> None:
        self.total = total
        self._weights = dict(weights)
        self._held = {name: 0 for name in weights}
        self._demand = {name: 0 for name in weights}
        self._in_use = 0
        self.on_release: Callable[[], None] | None = None

    def held(self, queue: str) -> int:
        return self._held[queue]

    @property
    def in_use(self) -> int:
        return self._in_use

    def fair_share(self, queue: str) -> int:
        contending = sum(
            w for name, w in self._weights.items() if self._demand[name] > 0 or self._held[name] > 0 or name == queue
        )
        return math.ceil(self.total * self._weights[queue] / contending) if contending else self.total

    def try_acquire(self, queue: str, wanted: int) -> int:
        self._demand[queue] = wanted
        if wanted <= 0:
            return 0
        free = self.total - self._in_use
        granted = max(0, min(wanted, free, self.fair_share(queue) - self._held[queue]))
        self._held[queue] += granted
        self._in_use += granted
        return granted

    def clear_demand(self, queue: str) -> None:
        self._demand[queue] = 0

    def release(self, queue: str, count: int) -> None:
        if count <= 0:
            return
        assert count <= self._held[queue], "overflow release exceeds holdings"
        self._held[queue] -= count
        self._in_use -= count
        if self.on_release is not None:
            self.on_release()


class HardSlots:
    """``max_workers`` slots owned by one physical queue."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def available(self) -> int:
        return self.limit - self.in_use

    def try_acquire(self, wanted: int) -> int:
        granted = max(0, min(wanted, self.limit - self.in_use))
        self.in_use += granted
        return granted

    def release(self, count: int) -> None:
        assert 0 <= count <= self.in_use, "slot release exceeds holdings"
        self.in_use -= count

    def idle(self) -> None:
        """The queue looked empty (no effect in hard-reserved mode)."""


class WeightedSlots:
    """``min_workers`` private slots, then overflow from the shared pool."""

    def __init__(self, queue: str, min_workers: int, pool: OverflowPool) -> None:
        self.queue = queue
        self.limit_local = min_workers
        self.local_in_use = 0
        self.pool = pool

    @property
    def in_use(self) -> int:
        return self.local_in_use + self.pool.held(self.queue)

    @property
    def limit(self) -> int:
        return self.limit_local + self.pool.total

    def available(self) -> int:
        local = self.limit_local - self.local_in_use
        overflow = max(0, min(self.pool.total - self.pool.in_use, self.pool.fair_share(self.queue) - self.pool.held(self.queue)))
        return local + overflow

    def try_acquire(self, wanted: int) -> int:
        local = max(0, min(wanted, self.limit_local - self.local_in_use))
        self.local_in_use += local
        return local + self.pool.try_acquire(self.queue, wanted - local)

    def release(self, count: int) -> None:
        # Hand overflow back first: other queues may be waiting for it.
        from_pool = min(count, self.pool.held(self.queue))
        from_local = count - from_pool
        assert from_local <= self.local_in_use, "slot release exceeds holdings"
        self.local_in_use -= from_local
        self.pool.release(self.queue, from_pool)

    def idle(self) -> None:
        self.pool.clear_demand(self.queue)


class TokenBucket:
    """Continuous-refill token bucket; ``capacity`` tokens at most."""

    def __init__(self, rate: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate.max_rate
        self.capacity = rate.capacity
        self._clock = clock
        self._tokens = float(self.capacity)
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.capacity), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def available(self) -> int:
        self._refill()
        return int(self._tokens)

    def consume(self, count: int) -> None:
        self._refill()
        self._tokens -= count

    def seconds_until_token(self) -> float:
        self._refill()
        missing = 1.0 - self._tokens
        return 0.0 if missing <= 0 else missing / self.rate
