"""Drain a backlog with several worker processes (standard library only).

Used by both sides of the end-to-end benchmark: bench/e2e.py (ours) and
bench/awa_pg_side.py (awa-pg, which runs in its own virtualenv and loads this
file by path, so it must import nothing but the standard library).

A Python worker is bound to one core by the GIL; a deployment on a machine
with P cores runs P worker processes, all serving every partition. That is
where partitions matter: with one physical queue the processes compete for the
same lanes, with several they claim side by side.

Protocol. The parent starts P children (``spawn``: nothing inherited from a
parent that already holds connections or a Rust runtime). Each child runs
``target(slot, *args)``: it opens its client, registers ``slot.run_job`` as
the handler (it counts jobs and records probe latencies), calls
``slot.ready()``, awaits ``slot.go_signal()``, starts its runtime and shuts
down after ``slot.stop_signal()``. The parent enqueues, says go,
times the drain by polling the shared counters, sends probes, then stops all.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from collections.abc import Callable
from typing import Any


class WorkerSlot:
    """A child's handle on the shared state (picklable for ``spawn``)."""

    def __init__(self, index: int, counters: Any, probes: Any, ready: Any, go: Any, stop: Any) -> None:
        self.index = index
        self._counters = counters
        self._probes = probes
        self._ready = ready
        self._go = go
        self._stop = stop

    def ready(self) -> None:
        self._ready.release()

    def wait_go(self, timeout_s: float = 600) -> bool:
        return self._go.wait(timeout_s)

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def wait_stop(self, timeout_s: float) -> bool:
        return self._stop.wait(timeout_s)

    def done(self) -> None:
        # One writer per slot (this process), so no lock is needed.
        self._counters[self.index] += 1

    async def run_job(self, job: Any) -> None:
        """The benchmark's no-op handler (either side): count a backlog job, or
        record a probe job's pickup latency (probes carry seq = -1 - number)."""
        args = job.args
        if args.seq < 0:
            self.probe(-1 - args.seq, time.time() - args.t)
        else:
            self.done()

    async def go_signal(self) -> None:
        """Wait (without blocking the event loop) until the parent says go."""
        await asyncio.get_running_loop().run_in_executor(None, self.wait_go)

    async def stop_signal(self) -> None:
        """Return once the parent asks the workers to stop."""
        while not self.should_stop():
            await asyncio.sleep(0.01)

    def probe(self, number: int, latency_s: float) -> None:
        # Each probe job is run by exactly one process: one writer per entry.
        if 0 <= number < len(self._probes):
            self._probes[number] = max(latency_s, 1e-9)


class WorkerProcesses:
    """P child processes running ``target(slot, *args)``; see the module docstring."""

    def __init__(self, target: Callable[..., Any], args: tuple[Any, ...], processes: int, probe_jobs: int) -> None:
        ctx = mp.get_context("spawn")
        self._ctx = ctx
        self._counters = ctx.RawArray("q", processes)
        self._probes = ctx.RawArray("d", max(1, probe_jobs))
        self._probe_jobs = probe_jobs
        self._ready = ctx.Semaphore(0)
        self._go = ctx.Event()
        self._stop = ctx.Event()
        self._children = [
            ctx.Process(
                target=target,
                args=(WorkerSlot(i, self._counters, self._probes, self._ready, self._go, self._stop), *args),
                name=f"bench-worker-{i}",
                daemon=True,
            )
            for i in range(processes)
        ]
        self._go_at: float | None = None

    def start(self, timeout_s: float = 120) -> None:
        """Start every child and wait until each has its client open."""
        for child in self._children:
            child.start()
        deadline = time.monotonic() + timeout_s
        for _ in self._children:
            left = deadline - time.monotonic()
            if left <= 0 or not self._ready.acquire(timeout=left):
                dead = [c.name for c in self._children if not c.is_alive()]
                raise RuntimeError(f"worker processes not ready within {timeout_s:.0f}s (exited: {dead or 'none'})")

    def go(self) -> None:
        self._go_at = time.perf_counter()
        self._go.set()

    def completed(self) -> int:
        return sum(self._counters)

    def wait_completed(self, total: int, timeout_s: float) -> tuple[float, bool]:
        """(seconds from go until ``total`` jobs were done, stalled?)."""
        assert self._go_at is not None, "go() first"
        while True:
            now = time.perf_counter()
            if self.completed() >= total:
                return now - self._go_at, False
            if now - self._go_at > timeout_s or not any(c.is_alive() for c in self._children):
                return now - self._go_at, True
            time.sleep(0.001)

    def wait_probes(self, timeout_s: float) -> list[float]:
        """Latencies of the probe jobs run so far (waits until all ran or the timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(v == 0.0 for v in self._probes[: self._probe_jobs]):
            time.sleep(0.005)
        return [v for v in self._probes[: self._probe_jobs] if v > 0.0]

    def stop(self, timeout_s: float = 30) -> list[int | None]:
        """Ask every child to shut down; kill what does not exit in time. Exit codes."""
        self._go.set()  # a child still waiting for go must not wait forever
        self._stop.set()
        started = [child for child in self._children if child.pid is not None]
        deadline = time.monotonic() + timeout_s
        for child in started:
            child.join(max(0.0, deadline - time.monotonic()))
        for child in started:
            if child.is_alive():
                child.kill()
                child.join(5)
        return [child.exitcode for child in started]
