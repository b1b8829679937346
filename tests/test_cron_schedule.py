"""Schedule math of periodic jobs (no database): due ticks, missed-fire
policies, DST transitions in named time zones, and validation texts."""

from __future__ import annotations

import datetime as dt

import pytest

from awa.errors import ValidationError
from awa.worker.cron import due_ticks, periodic_job

UTC = dt.timezone.utc


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def test_coalesce_fires_only_the_latest_missed_tick():
    assert due_ticks("0 * * * *", "UTC", at(2026, 1, 1, 0, 30), at(2026, 1, 1, 5, 10), "coalesce") == [at(2026, 1, 1, 5)]
    assert due_ticks("0 * * * *", "UTC", at(2026, 1, 1, 5), at(2026, 1, 1, 5, 59), "coalesce") == []
    assert due_ticks("0 * * * *", "UTC", at(2026, 1, 1, 5), at(2026, 1, 1, 5), "coalesce") == []
    # the tick exactly at `now` is due
    assert due_ticks("0 * * * *", "UTC", at(2026, 1, 1, 5), at(2026, 1, 1, 6), "coalesce") == [at(2026, 1, 1, 6)]


def test_catch_up_fires_each_missed_tick_in_order_up_to_the_limit():
    ticks = due_ticks("0 * * * *", "UTC", at(2026, 1, 1, 0, 30), at(2026, 1, 1, 3), "catch_up")
    assert ticks == [at(2026, 1, 1, 1), at(2026, 1, 1, 2), at(2026, 1, 1, 3)]
    assert len(due_ticks("* * * * *", "UTC", at(2026, 1, 1), at(2026, 1, 2), "catch_up", limit=7)) == 7


def test_named_zone_daily_tick_is_local_time():
    # 09:00 in Auckland (NZDT, UTC+13 in January) is 20:00 UTC the day before
    assert due_ticks("0 9 * * *", "Pacific/Auckland", at(2026, 1, 1), at(2026, 1, 2), "catch_up") == [at(2026, 1, 1, 20)]


def test_spring_forward_a_skipped_local_time_fires_once_after_the_gap():
    # Europe/London 2026-03-29: 01:00 GMT jumps to 02:00 BST; 01:30 never happens
    ticks = due_ticks("30 1 * * *", "Europe/London", at(2026, 3, 28, 12), at(2026, 3, 31, 12), "catch_up")
    assert ticks == [at(2026, 3, 29, 1, 0), at(2026, 3, 30, 0, 30), at(2026, 3, 31, 0, 30)]


def test_fall_back_a_repeated_local_time_fires_once():
    # 2026-10-25: 02:00 BST falls back to 01:00 GMT; 01:30 happens twice, fires once
    ticks = due_ticks("30 1 * * *", "Europe/London", at(2026, 10, 24, 12), at(2026, 10, 26, 12), "catch_up")
    assert ticks == [at(2026, 10, 25, 0, 30), at(2026, 10, 26, 1, 30)]
    assert due_ticks("30 1 * * *", "Europe/London", at(2026, 10, 25, 0, 30), at(2026, 10, 25, 2), "coalesce") == []


def test_fall_back_every_half_hour_keeps_both_hours():
    # a schedule of every 30 minutes runs in both 01:xx hours: real time keeps going
    ticks = due_ticks("*/30 * * * *", "Europe/London", at(2026, 10, 24, 23, 50), at(2026, 10, 25, 2), "catch_up")
    assert ticks == [at(2026, 10, 25, 0), at(2026, 10, 25, 0, 30), at(2026, 10, 25, 1), at(2026, 10, 25, 1, 30),
                     at(2026, 10, 25, 2)]
    assert len(set(ticks)) == len(ticks)


def test_us_spring_forward_and_fall_back_in_new_york():
    # 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST
    spring = due_ticks("30 2 * * *", "America/New_York", at(2026, 3, 7, 12), at(2026, 3, 9, 12), "catch_up")
    assert spring == [at(2026, 3, 8, 7, 0), at(2026, 3, 9, 6, 30)]  # 02:30 on the 8th is 03:00 EDT
    fall = due_ticks("30 1 * * *", "America/New_York", at(2026, 10, 31, 12), at(2026, 11, 2, 12), "catch_up")
    assert fall == [at(2026, 11, 1, 5, 30), at(2026, 11, 2, 6, 30)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cron_expr": "61 * * * *"}, "invalid cron expression: '61 * * * *'"),
        ({"cron_expr": 5}, "invalid cron expression: 5"),
        ({"timezone": "Mars/Olympus"}, "invalid timezone: 'Mars/Olympus'"),
        ({"timezone": ""}, "invalid timezone: ''"),
        ({"missed_fire_policy": "all"}, "invalid cron missed fire policy 'all'"),
        ({"priority": 9}, "priority must be"),
        ({"max_attempts": 0}, "max_attempts must be"),
        ({"name": ""}, "cron job name must not be empty"),
    ],
)
def test_validation_texts(kwargs, message):
    base = {"name": "n", "cron_expr": "* * * * *", "kind": "k", "args": {}}
    base.update(kwargs)
    name, expr, kind, args = base.pop("name"), base.pop("cron_expr"), base.pop("kind"), base.pop("args")
    with pytest.raises(ValidationError) as info:
        periodic_job(name, expr, kind, args, **base)
    assert str(info.value).startswith(message)
