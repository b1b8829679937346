"""The claim batcher's scheduling rules (awa/worker/claim_batcher.py).

The statement is injected: these tests are about who goes out together, in
which order, and what each request gets back, so every statement is recorded
and answered by hand. The same batcher against PostgreSQL is exercised by the
worker runtime tests (tests/test_worker_runtime.py), which drain partitioned
queues through it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awa.errors import ValidationError
from awa.worker.claim_batcher import ClaimBatcher


@dataclass(frozen=True)
class FakeJob:
    queue: str
    n: int


class Statements:
    """Records each statement; the test answers it with ``answer``."""

    def __init__(self) -> None:
        self.sent: list[tuple[list[str], list[int], Any]] = []
        self.pending: list[asyncio.Future[list[FakeJob]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.queues_in_flight: set[str] = set()
        self.overlap: list[str] = []
        self.rows = 0

    async def send(self, queues: list[str], limits: list[int], setting: Any) -> list[FakeJob]:
        self.sent.append((queues, limits, setting))
        clash = self.queues_in_flight & set(queues)
        self.overlap.extend(sorted(clash))
        self.queues_in_flight |= set(queues)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        future: asyncio.Future[list[FakeJob]] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        try:
            return await future
        finally:
            self.in_flight -= 1
            self.queues_in_flight -= set(queues)

    def answer(self, index: int, jobs: list[FakeJob] | None = None, error: BaseException | None = None) -> None:
        future = self.pending[index]
        if error is not None:
            future.set_exception(error)
        else:
            queues, limits, _ = self.sent[index]
            if jobs is None:  # every queue has plenty: each gets its limit of fresh rows
                jobs = []
                for q, n in zip(queues, limits):
                    jobs.extend(FakeJob(q, self.rows + i) for i in range(n))
                    self.rows += n
            future.set_result(jobs)


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_requests_of_one_turn_go_out_in_one_statement_per_group():
    async def main():
        st_ = Statements()
        batcher = ClaimBatcher(st_.send, groups=1)
        tasks = [asyncio.create_task(batcher.claim(q, 3, "s")) for q in ("p2", "p0", "p1", "p0")]
        await turns()
        assert [(q, l) for q, l, _ in st_.sent] == [(["p0", "p1", "p2"], [6, 3, 3])]  # p0 asked twice
        st_.answer(0)
        got = await asyncio.gather(*tasks)
        assert [len(g) for g in got] == [3, 3, 3, 3]
        assert {j.queue for j in got[1]} == {"p0"} and {j.queue for j in got[3]} == {"p0"}
        assert set(got[1]).isdisjoint(got[3])  # the two p0 requests share its rows, none twice

    asyncio.run(main())


def test_from_idle_one_group_goes_first_and_the_next_before_its_jobs_are_handed_out():
    async def main():
        st_ = Statements()
        batcher = ClaimBatcher(st_.send, groups=2)
        resumed: list[tuple[str, int]] = []  # (queue, statements sent when its claimer resumed)

        async def claimer(q: str) -> list[FakeJob]:
            jobs = await batcher.claim(q, 2, "s")
            resumed.append((q, len(st_.sent)))
            return jobs

        tasks = [asyncio.create_task(claimer(q)) for q in ("p0", "p1", "p2", "p3")]
        await turns()
        assert len(st_.sent) == 1  # staggered: one group from idle
        first = set(st_.sent[0][0])
        assert len(first) == 2
        st_.answer(0)
        await turns()
        # The other group went out before the first group's claimers resumed.
        assert len(st_.sent) == 2 and set(st_.sent[1][0]) == {"p0", "p1", "p2", "p3"} - first
        assert sorted(q for q, _ in resumed) == sorted(first)
        assert all(sent == 2 for _, sent in resumed)
        # The first group's claimers ran their jobs and ask again while the
        # second group is on the server: sent at once, two in flight.
        again = [asyncio.create_task(batcher.claim(q, 2, "s")) for q in sorted(first)]
        await turns()
        assert len(st_.sent) == 3 and set(st_.sent[2][0]) == first
        assert st_.max_in_flight == 2 and st_.overlap == []
        st_.answer(1)
        st_.answer(2)
        await asyncio.gather(*tasks, *again)

    asyncio.run(main())


def test_one_queue_never_has_two_statements_in_flight():
    async def main():
        st_ = Statements()
        batcher = ClaimBatcher(st_.send, groups=2)
        first = asyncio.create_task(batcher.claim("only", 4, "s"))
        await turns()
        second = asyncio.create_task(batcher.claim("only", 4, "s"))  # its claimer asks again meanwhile
        await turns()
        assert len(st_.sent) == 1
        st_.answer(0)
        await turns()
        assert len(st_.sent) == 2 and st_.overlap == []
        st_.answer(1)
        assert len(await first) == 4 and len(await second) == 4

    asyncio.run(main())


def test_a_failed_statement_fails_its_requests_only_and_the_next_ones_still_go():
    async def main():
        st_ = Statements()
        batcher = ClaimBatcher(st_.send, groups=2)
        a = asyncio.create_task(batcher.claim("p0", 1, "s"))
        b = asyncio.create_task(batcher.claim("p1", 1, "s"))
        await turns()
        failing = st_.sent[0][0][0]
        st_.answer(0, error=RuntimeError("connection lost"))
        await turns()
        assert len(st_.sent) == 2  # the other group was sent anyway
        st_.answer(1)
        results = dict(zip(("p0", "p1"), await asyncio.gather(a, b, return_exceptions=True)))
        assert isinstance(results[failing], RuntimeError)
        other = "p1" if failing == "p0" else "p0"
        assert [j.queue for j in results[other]] == [other]

    asyncio.run(main())


def test_settings_batch_separately():
    async def main():
        st_ = Statements()
        batcher = ClaimBatcher(st_.send, groups=1)
        a = asyncio.create_task(batcher.claim("p0", 1, (30_000, 0)))
        b = asyncio.create_task(batcher.claim("p1", 1, (60_000, 0)))
        await turns()
        assert sorted(s for _, _, s in st_.sent) == [(30_000, 0), (60_000, 0)]
        st_.answer(0)
        st_.answer(1)
        await asyncio.gather(a, b)

    asyncio.run(main())


@settings(max_examples=60, deadline=None)
@given(
    groups=st.integers(1, 3),
    script=st.lists(
        st.tuples(st.sampled_from(["q0", "q1", "q2", "q3", "q4"]), st.integers(1, 5), st.booleans()), min_size=1, max_size=25
    ),
    seed=st.randoms(use_true_random=False),
)
def test_every_request_is_answered_with_at_most_its_limit_and_queues_never_overlap(groups, script, seed):
    """Random arrivals and random answer order: every request ends, gets at
    most what it asked for, of its own queue, no row twice; a queue is never in
    two statements at once; no more statements in flight than groups."""

    async def main():
        st_ = Statements()
        batcher = ClaimBatcher(st_.send, groups=groups)
        tasks = []
        answered = 0
        for queue, limit, yield_now in script:
            tasks.append((queue, limit, asyncio.create_task(batcher.claim(queue, limit, "s"))))
            if yield_now:
                await turns(2)
            while answered < len(st_.sent) and seed.random() < 0.5:
                st_.answer(answered)
                answered += 1
                await turns(1)
        while not all(t.done() for _, _, t in tasks):
            await turns(2)
            while answered < len(st_.sent):
                st_.answer(answered)
                answered += 1
        seen: set[FakeJob] = set()
        for queue, limit, task in tasks:
            jobs = task.result()
            assert len(jobs) <= limit and all(j.queue == queue for j in jobs)
            assert seen.isdisjoint(jobs)
            seen.update(jobs)
        assert st_.overlap == []
        assert st_.max_in_flight <= groups

    asyncio.run(main())


@pytest.mark.parametrize("groups", [0, -1, 1.5, True])
def test_groups_must_be_a_positive_int(groups):
    with pytest.raises(ValidationError, match="claim groups must be an int >= 1"):
        ClaimBatcher(Statements().send, groups=groups)


def test_a_group_whose_claimers_are_all_gone_does_not_hold_back_the_others():
    """From idle one group goes first; if every request of the group that would
    go first was cancelled meanwhile, the other group must go instead of
    waiting for a statement that is never sent."""

    async def main():
        st_ = Statements()
        batcher = ClaimBatcher(st_.send, groups=2)
        batcher._offset = 0  # p0 -> group 0, p1 -> group 1, group 0 first from idle
        gone = asyncio.create_task(batcher.claim("p0", 1, "s"))
        alive = asyncio.create_task(batcher.claim("p1", 1, "s"))
        await asyncio.sleep(0)  # both requests are queued, the dispatch not yet run
        gone.cancel()
        await turns()
        assert [q for q, _, _ in st_.sent] == [["p1"]]
        st_.answer(0)
        assert [j.queue for j in await asyncio.wait_for(alive, 1)] == ["p1"]

    asyncio.run(main())


# --- the batcher against its spec (specs/ClaimGroups.tla) ---------------------

OPERATIONS = st.one_of(
    # Several claimers asking in the same loop turn (their dispatch not yet run).
    st.tuples(st.just("ask"), st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=3)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("answer"), st.integers(0, 30)),
    st.tuples(st.just("fail"), st.integers(0, 30)),
    st.tuples(st.just("turn")),  # the event loop runs what is scheduled
)


@settings(max_examples=150, deadline=None)
@given(groups=st.integers(1, 3), offset=st.integers(0, 2), script=st.lists(OPERATIONS, max_size=30))
def test_the_batcher_is_a_behaviour_of_the_claim_groups_spec(groups, offset, script):
    """Every step of the real batcher, seen through the spec's variables
    (``abstract_state``), is a step the spec allows: the environment's asks
    and cancels, each once and in order, plus the batcher's own dispatches
    and answered statements (``explains``); every invariant of
    ClaimGroups.tla holds after it; and once the server has answered
    everything, every request asked has ended (EveryRequestEnds)."""
    from verification.mirrors import claim_groups as spec

    async def main():
        st_ = Statements()
        batcher = ClaimBatcher(st_.send, groups=groups)
        batcher._offset = offset % groups
        names = ["q0", "q1", "q2", "q3"]
        queue_id: dict[str, int] = {}  # spec ids, with GroupOf(id) == batcher.group_of(name)
        asked: list[tuple[int, asyncio.Future]] = []
        tasks: list[asyncio.Task] = []

        def observe(c: spec.ClaimGroupsConstants) -> spec.ClaimGroupsState:
            state = spec.abstract_state(batcher, "s", asked)
            missing = c.num_requests - len(state.queue_of)  # requests not asked yet
            return state._replace(queue_of=state.queue_of + (0,) * missing)

        def open_statements() -> list[int]:
            return [i for i, f in enumerate(st_.pending) if not f.done()]

        async def answer(index: int, fail: bool = False) -> None:
            st_.answer(index, error=RuntimeError("statement failed") if fail else None)

        async def step(environment, action, will_ask: int = 0) -> None:
            c = spec.ClaimGroupsConstants(
                num_queues=4 * groups + 3, num_groups=groups, num_requests=max(len(asked) + will_ask, 1)
            )
            before = observe(c)
            await action()
            after = observe(c)
            assert spec.explains(c, before, after, environment), (
                f"{environment}: {spec.render(before)}  ->  {spec.render(after)}"
            )
            assert spec.violated_invariants(c, after) == [], spec.render(after)

        for op in script:
            if op[0] == "ask":
                env = []
                for q, _ in op[1]:
                    name = names[q]
                    queue_id.setdefault(name, batcher.group_of(name) + groups * (1 + len(queue_id)))
                    env.append(("Ask", (queue_id[name],)))

                async def ask(requests=op[1]):
                    known = {f for _, f in asked}
                    new_tasks = [asyncio.create_task(batcher.claim(names[q], limit, "s")) for q, limit in requests]
                    tasks.extend(new_tasks)
                    await asyncio.sleep(0)  # each claim runs up to its await; their dispatch is only scheduled
                    # The batcher's new futures; each group's list keeps the order the claims ran.
                    new = [(queue, f) for w in batcher._waiting.values() for queue, _, f in w if f not in known]
                    for q, _ in requests:
                        mine = next(entry for entry in new if entry[0] == names[q])
                        new.remove(mine)
                        asked.append((queue_id[names[q]], mine[1]))

                await step(env, ask, will_ask=len(op[1]))
            elif op[0] == "cancel" and asked:
                r = op[1] % len(asked)
                if asked[r][1].done():
                    continue

                async def cancel(r=r):
                    tasks[r].cancel()  # cancels the batcher's future at once

                await step([("Cancel", (r + 1,))], cancel)
            elif op[0] in ("answer", "fail") and open_statements():
                index = open_statements()[op[1] % len(open_statements())]
                await step([], lambda index=index, fail=op[0] == "fail": answer(index, fail))
            elif op[0] == "turn":
                await step([], lambda: turns(4))
        # The loop runs and the server answers everything it is sent, until
        # nothing is left to do; then every request has ended.
        for _ in range(100):
            await step([], lambda: turns(4))
            open_ones = open_statements()
            if not open_ones and not batcher._in_flight and not batcher._dispatch_pending:
                break
            for index in open_ones:
                await step([], lambda index=index: answer(index))
        final = spec.abstract_state(batcher, "s", asked)
        assert final.flight == frozenset() and not final.dispatch_pending
        assert all(r in final.answered or r in final.gone for r in range(1, len(asked) + 1)), spec.render(final)
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
