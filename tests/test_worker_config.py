"""start() queue-config validation (pure: runs before any connection is opened).

The same texts are also checked end to end through ``client.start`` in
test_worker_runtime.py; here every rule gets its own case.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from awa.errors import ValidationError
from awa.worker.capacity import HardSlots, OverflowPool, TokenBucket, WeightedSlots
from awa.worker.config import RateLimit, plan_queues


def plan(queues, gmw=None, declared=("q",)):
    return plan_queues(queues, global_max_workers=gmw, declared_queues=declared)


def raises(text: str):
    return pytest.raises(ValidationError, match="^" + re.escape(text) + "$")


def test_tuple_and_dict_forms_build_plans():
    p = plan([("q", 3), {"name": "r", "max_workers": 2, "rate_limit": (5.0, 2), "claimers": 2,
                          "claim_batch_size": 7, "deadline_duration_ms": 0, "priority_aging_interval_ms": 0}],
             declared=("q", "r"))
    q, r = p.queues
    assert (q.name, q.max_workers, q.claimers, q.claim_batch_size) == ("q", 3, 1, 512)
    assert (r.max_workers, r.rate_limit, r.claimers, r.claim_batch_size) == (2, RateLimit(5.0, 2), 2, 7)
    assert (r.deadline_duration_ms, r.priority_aging_interval_ms) == (0, 0)
    assert not p.weighted and p.total_claimers == 3


def test_queues_none_infers_declared_queues():
    p = plan(None, declared=("a", "b", "a"))
    assert [(q.name, q.max_workers) for q in p.queues] == [("a", 10), ("b", 10)]


def test_weighted_plan():
    p = plan([{"name": "q", "min_workers": 2, "weight": 3}, {"name": "r"}], gmw=10, declared=("q",))
    assert p.weighted and [(q.min_workers, q.weight) for q in p.queues] == [(2, 3), (0, 1)]


def test_error_missing_name():
    with raises("queue config dict must have 'name' key"):
        plan([{"max_workers": 1}])


def test_error_both_max_and_min():
    with raises("use max_workers for hard-reserved mode or min_workers for weighted mode, not both"):
        plan([{"name": "q", "max_workers": 1, "min_workers": 1}])


def test_error_max_workers_required():
    with raises("max_workers required in hard-reserved mode (no global_max_workers set)"):
        plan([{"name": "q"}])


def test_error_min_workers_without_global_is_rejected_not_defaulted():
    with pytest.raises(ValidationError, match="min_workers for queue 'q' requires global_max_workers"):
        plan([{"name": "q", "min_workers": 2}])


def test_error_max_workers_in_weighted_mode():
    with pytest.raises(ValidationError, match="with global_max_workers set use min_workers/weight"):
        plan([{"name": "q", "max_workers": 2}], gmw=4)


@pytest.mark.parametrize("bad", ["fast", (1.0,), (1.0, 2, 3), ("1", 2), (1.0, 2.5), (True, 1), 5])
def test_error_rate_limit_shape(bad):
    with raises("rate_limit must be a (max_rate: float, burst: int) tuple or None") as info:
        plan([{"name": "q", "max_workers": 1, "rate_limit": bad}])
    assert isinstance(info.value, TypeError)  # awa raises TypeError; ours is both


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_error_rate_limit_max_rate(rate):
    with raises("rate_limit max_rate must be > 0.0"):
        plan([{"name": "q", "max_workers": 1, "rate_limit": (rate, 1)}])


def test_rate_limit_none_is_unlimited():
    assert plan([{"name": "q", "max_workers": 1, "rate_limit": None}]).queues[0].rate_limit is None


def test_error_weighted_needs_queues():
    with raises("weighted mode requires explicit queue configs (global_max_workers set but queues=None)"):
        plan(None, gmw=4)


def test_error_tuple_with_global():
    with raises("tuple queue config is not supported with global_max_workers; use dict form with min_workers/weight"):
        plan([("q", 2)], gmw=4)


def test_error_duplicate_queue():
    with raises("queue 'q' configured more than once"):
        plan([("q", 1), {"name": "q", "max_workers": 2}])


def test_error_sum_min_workers():
    with raises("sum of min_workers (7) exceeds global_max_workers (6)"):
        plan([{"name": "q", "min_workers": 4}, {"name": "r", "min_workers": 3}], gmw=6)


def test_error_undeclared_queues_listed():
    with raises("start() must configure the worker queues declared via @client.task(..., queue=...): a, b"):
        plan([("c", 1)], declared=("a", "c", "b"))


@pytest.mark.parametrize(
    "cfg, text",
    [
        ({"name": "q", "max_workers": 0}, "max_workers must be > 0"),
        ({"name": "q", "max_workers": 1, "claimers": 0}, "claimers must be > 0"),
        ({"name": "q", "max_workers": 1, "claim_batch_size": 0}, "claim_batch_size must be > 0"),
        ({"name": "q", "max_workers": 1, "weight": 0}, "weight must be > 0"),
        ({"name": "q", "max_workers": 1, "deadline_duration_ms": -1}, "deadline_duration_ms must be >= 0"),
        ({"name": "q", "max_workers": 1, "rate_limit": (1.0, -1)}, "rate_limit burst must be >= 0 (0 means ceil(max_rate))"),
    ],
)
def test_error_bounds(cfg, text):
    with raises(text):
        plan([cfg])


def test_error_unknown_key_and_empty():
    with raises("unknown queue config key(s) for queue 'q': max_worker"):
        plan([{"name": "q", "max_worker": 1}])
    with raises("at least one queue must be configured"):
        plan([], declared=())


# --- capacity -----------------------------------------------------------------


def test_hard_slots_never_exceed_limit():
    slots = HardSlots(3)
    assert slots.try_acquire(5) == 3 and slots.try_acquire(1) == 0
    slots.release(2)
    assert slots.available() == 2


def test_overflow_pool_is_work_conserving_and_weighted():
    pool = OverflowPool(12, {"a": 1, "b": 2})
    a, b = WeightedSlots("a", 1, pool), WeightedSlots("b", 1, pool)
    assert a.try_acquire(100) == 13  # alone: its min plus the whole pool
    a.release(13)
    pool.clear_demand("a")
    assert b.try_acquire(100) == 13
    b.release(12)  # b keeps 1 local slot, overflow returns
    # both contend: a gets ceil(12*1/3)=4 of the overflow, b the rest
    assert a.try_acquire(100) == 1 + 4
    assert b.try_acquire(100) == 8


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 20), st.booleans()), max_size=60),
    st.integers(0, 3), st.integers(1, 3), st.integers(0, 10),
)
def test_weighted_slots_respect_global_cap_and_minimums(ops, min_a, weight_b, overflow):
    pool = OverflowPool(overflow, {"a": 1, "b": weight_b, "c": 1})
    slots = {"a": WeightedSlots("a", min_a, pool), "b": WeightedSlots("b", 1, pool), "c": WeightedSlots("c", 0, pool)}
    held = dict.fromkeys(slots, 0)
    for name, n, acquire in ops:
        if acquire:
            held[name] += slots[name].try_acquire(n)
        else:
            give = min(n, held[name])
            slots[name].release(give)
            held[name] -= give
            if held[name] == 0:
                slots[name].idle()
        assert sum(held.values()) <= overflow + min_a + 1
        assert all(slots[k].in_use == held[k] for k in held)
        assert pool.in_use <= overflow
    # a queue's guaranteed minimum is always obtainable
    for name, s in slots.items():
        s.release(held[name])
    assert slots["a"].try_acquire(min_a) == min_a


def test_token_bucket_refills_at_rate():
    now = [0.0]
    bucket = TokenBucket(RateLimit(10.0, 2), clock=lambda: now[0])
    assert bucket.available() == 2
    bucket.consume(2)
    assert bucket.available() == 0 and bucket.seconds_until_token() == pytest.approx(0.1)
    now[0] = 0.35
    assert bucket.available() == 2  # capped at burst
    assert TokenBucket(RateLimit(2.5, 0)).capacity == 3


def test_partitioned_queue_configs_plan_every_partition():
    from awa.routing import PartitionedQueue

    pq = PartitionedQueue("email", 4)
    hard = plan(pq.queue_configs(max_workers_per_partition=3, rate_limit_per_partition=(50.0, 5), claimers=2),
                declared=(pq.physical_queues[0],))
    assert [q.name for q in hard.queues] == pq.physical_queues
    assert all(q.max_workers == 3 and q.claimers == 2 and q.rate_limit == RateLimit(50.0, 5) for q in hard.queues)
    weighted = plan(pq.queue_configs(min_workers_per_partition=1, weight=2), gmw=8, declared=())
    assert all((q.min_workers, q.weight, q.max_workers) == (1, 2, None) for q in weighted.queues)
    with raises(f"queue '{pq.physical_queues[0]}' configured more than once"):
        plan([{"name": pq.physical_queues[0], "max_workers": 1}, *pq.queue_configs(max_workers_per_partition=1)],
             declared=())
    with raises("sum of min_workers (8) exceeds global_max_workers (6)"):
        plan(pq.queue_configs(min_workers_per_partition=2), gmw=6, declared=())


# --- registration ---------------------------------------------------------------


def test_task_registration_kinds_and_errors():
    from dataclasses import dataclass

    from awa.worker.registry import Registry, derive_kind_from_name

    @dataclass
    class SMTPEmail:
        to: str

    reg = Registry()
    reg.decorator(SMTPEmail, queue="mail")(lambda job: None)
    reg.decorator("raw_kind")(lambda job: None)
    assert reg.get("smtp_email").args_type is SMTPEmail and reg.get("raw_kind").args_type is None
    assert reg.declared_queues() == ["mail", "default"]
    assert reg.get("smtp_email").decode_args({"to": "a", "extra": 1}) == SMTPEmail("a")  # unknown keys ignored
    assert [derive_kind_from_name(n) for n in ("SendEmail", "HTTPRequest", "Job2Go", "x")] == [
        "send_email", "http_request", "job2_go", "x"]
    with raises("a handler for job kind 'smtp_email' is already registered"):
        reg.decorator(SMTPEmail, queue="other")(lambda job: None)
    # The same function may be declared for more queues (every partition, say).
    handler = reg.get("smtp_email").func
    reg.decorator(SMTPEmail, queue="mail-1")(handler)
    assert reg.declared_queues() == ["mail", "default", "mail-1"]
    # A bound method is a new object on every access; the same object's method
    # is the same handler, another object's method is not.
    class Counter:
        def run(self, job: object) -> None:
            return None

    first, second = Counter(), Counter()
    reg.decorator("counted", queue="c-0")(first.run)
    reg.decorator("counted", queue="c-1")(first.run)
    assert reg.declared_queues()[-2:] == ["c-0", "c-1"]
    with raises("a handler for job kind 'counted' is already registered"):
        reg.decorator("counted", queue="c-2")(second.run)
    with raises("task() takes an args class or a kind string, got int"):
        reg.decorator(3)
    with raises("queue must be a non-empty string"):
        reg.decorator("k", queue="")


def test_runtime_options_validation_and_awa_aliases():
    from awa.worker.host import runtime_options

    opts = runtime_options({"poll_interval_ms": 50, "heartbeat_rescue_interval_ms": 700, "deadline_rescue_interval_ms": 900})
    assert (opts.poll_interval_ms, opts.rescue_interval_ms) == (50, 700)
    with raises("start() got unknown option(s): poll_interval"):
        runtime_options({"poll_interval": 5})
    with raises("promote_interval_ms must be an int > 0, got 0"):
        runtime_options({"promote_interval_ms": 0})


def test_priority_aging_is_off_unless_configured():
    assert plan([("q", 1)]).queues[0].priority_aging_interval_ms == 0
    assert plan([{"name": "q", "max_workers": 1, "priority_aging_interval_ms": 500}]).queues[0].priority_aging_interval_ms == 500


def test_shared_entry_plans_one_unit_over_every_partition():
    from awa.routing import PartitionedQueue

    pq = PartitionedQueue("email", 4)
    config = pq.shared_queue_config(8, claimers=2, rate_limit=(50.0, 5))
    assert config == {"name": "email", "partitions": 4, "shared_slots": True, "max_workers": 8, "claimers": 2,
                      "rate_limit": (50.0, 5)}
    (entry,) = plan([config], declared=(pq.physical_queues[2],)).queues
    assert entry.physical_queues == tuple(pq.physical_queues)
    assert (entry.name, entry.max_workers, entry.claimers, entry.partitions) == ("email", 8, 2, 4)
    assert plan([("email", 3)], declared=("email",)).queues[0].physical_queues == ("email",)
    weighted = plan([pq.shared_queue_config(min_workers=2, weight=3)], gmw=10, declared=()).queues[0]
    assert (weighted.min_workers, weighted.weight, weighted.max_workers) == (2, 3, None)
    # A partition named on its own as well is configured twice, whichever comes first.
    with raises("queue 'email__p1' configured more than once"):
        plan([config, ("email__p1", 1)], declared=())
    with raises("queue 'email' configured more than once"):
        plan([("email", 1), config], declared=())
    with raises("start() must configure the worker queues declared via @client.task(..., queue=...): other"):
        plan([config], declared=("email__p3", "other"))


@pytest.mark.parametrize(
    "partitions, text",
    [
        (0, "partitions must be > 0"),
        (True, "partitions for queue 'email' must be an int, got bool"),
        ("4", "partitions for queue 'email' must be an int, got str"),
        (1 << 20, "partitioned queue supports at most"),
    ],
)
@pytest.mark.parametrize("shared", [True, False])
def test_entry_partitions_are_checked(partitions, text, shared):
    with pytest.raises(ValidationError, match="^" + re.escape(text)):
        plan([{"name": "email", "partitions": partitions, "shared_slots": shared, "max_workers": 2}], declared=())


def test_partitions_without_shared_slots_plan_each_partition_like_queue_configs():
    """The meaning `partitions` has in `awa work` config files: settings per partition."""
    from awa.routing import PartitionedQueue

    pq = PartitionedQueue("email", 3)
    entry = {"name": "email", "partitions": 3, "max_workers": 2, "claimers": 2}
    assert plan([entry], declared=()) == plan(pq.queue_configs(2, claimers=2), declared=())
    assert plan([{**entry, "shared_slots": False}], declared=()) == plan([entry], declared=())
    assert [q.physical_queues for q in plan([entry], declared=()).queues] == [(q,) for q in pq.physical_queues]
    with raises("shared_slots for queue 'email' needs partitions (the logical queue's width)"):
        plan([{"name": "email", "shared_slots": True, "max_workers": 2}], declared=())
    with raises("shared_slots for queue 'email' must be a bool, got int"):
        plan([{"name": "email", "partitions": 2, "shared_slots": 1, "max_workers": 2}], declared=())
    with raises("shared_slots for queue 'email' must be a bool, got int"):
        plan([{"name": "email", "partitions": 2, "shared_slots": 0, "max_workers": 2}], declared=())


def test_shared_queue_config_refuses_what_start_would_refuse():
    from awa.routing import PartitionedQueue

    pq = PartitionedQueue("email", 2)
    with raises("shared_queue_config requires max_workers or min_workers"):
        pq.shared_queue_config()
    with raises("use max_workers or min_workers, not both"):
        pq.shared_queue_config(2, min_workers=1)
    with raises("max_workers must be > 0"):
        pq.shared_queue_config(0)
    with raises("weight must be > 0"):
        pq.shared_queue_config(min_workers=1, weight=0)
    explicit = PartitionedQueue.from_physical_queues("email", ["email_a", "email_b"])
    with pytest.raises(ValidationError, match="needs the default partition names"):
        explicit.shared_queue_config(2)
