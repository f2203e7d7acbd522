"""Which jobs are planned when: simulated weeks across a US holiday, an early close and DST changes.

Every test names its times; nothing sleeps. ``simulate`` drives a schedule with the engine's ``SimClock``
the way a scheduler loop would, five simulated minutes per step, a week in well under a second.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from robohost.config.models import DEFAULT_JOBS, RobohostConfig, ScheduleConfig
from robohost.engine.clock import SimClock
from robohost.errors import ConfigError
from robohost.services.scheduling.plan import PlannedJob, Schedule, robot_schedules

NS = 1_000_000_000
TICK = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)


def schedule(**settings: Any) -> Schedule:
    """The schedule of robot 'bot' on the New York Stock Exchange (by default), with ``settings``."""
    values: dict[str, Any] = {"calendar": "XNYS", "session_end": "close"} | settings
    return Schedule("bot", ScheduleConfig.model_validate(values))


def only(*chores: str) -> dict[str, str]:
    """A ``jobs`` table that switches off every default chore but ``chores``."""
    return {name: "off" for name in DEFAULT_JOBS if name not in chores}


def no_health(**settings: Any) -> Schedule:
    """``schedule`` with only the backup and report chores (no health check every 5 minutes), to read the jobs."""
    return schedule(jobs=only("backup", "report") | settings.pop("jobs", {}), **settings)


def timeline(jobs: list[PlannedJob]) -> list[str]:
    """Jobs as short lines: 'Fri 11-27 14:30 session until 18:00' (times in UTC)."""

    def line(job: PlannedJob) -> str:
        until = "" if job.job != "session" else " until " + (f"{job.until:%H:%M}" if job.until else "never")
        return f"{job.at:%a %m-%d %H:%M} {job.job}{until}"

    return [line(job) for job in jobs]


def test_thanksgiving_week_holiday_and_early_close() -> None:
    jobs = no_health().planned(utc(2026, 11, 23), utc(2026, 11, 30))
    assert timeline(jobs) == [
        "Mon 11-23 14:30 session until 21:00",
        "Mon 11-23 21:15 backup",
        "Mon 11-23 21:30 report",
        "Tue 11-24 14:30 session until 21:00",
        "Tue 11-24 21:15 backup",
        "Tue 11-24 21:30 report",
        "Wed 11-25 14:30 session until 21:00",
        "Wed 11-25 21:15 backup",
        "Wed 11-25 21:30 report",
        # Thursday 26: Thanksgiving, nothing. Friday 27: the market closes at 13:00 New York (18:00 UTC)
        "Fri 11-27 14:30 session until 18:00",
        "Fri 11-27 18:15 backup",
        "Fri 11-27 18:30 report",
        # the weekend: nothing
    ]


def test_the_autumn_daylight_saving_change_moves_the_utc_times() -> None:
    jobs = no_health().planned(utc(2026, 10, 29), utc(2026, 11, 3))
    assert timeline(jobs) == [
        "Thu 10-29 13:30 session until 20:00",
        "Thu 10-29 20:15 backup",
        "Thu 10-29 20:30 report",
        "Fri 10-30 13:30 session until 20:00",
        "Fri 10-30 20:15 backup",
        "Fri 10-30 20:30 report",
        # Sunday 1 November: clocks go back; 09:30 New York is now 14:30 UTC
        "Mon 11-02 14:30 session until 21:00",
        "Mon 11-02 21:15 backup",
        "Mon 11-02 21:30 report",
    ]


def test_the_spring_daylight_saving_change_moves_the_utc_times() -> None:
    jobs = no_health(session_start="open - 5m", session_end="close + 10m").planned(utc(2026, 3, 6), utc(2026, 3, 10))
    assert timeline(jobs) == [
        "Fri 03-06 14:25 session until 21:10",
        "Fri 03-06 21:15 backup",
        "Fri 03-06 21:30 report",
        # Sunday 8 March: clocks go forward; 09:30 New York is now 13:30 UTC
        "Mon 03-09 13:25 session until 20:10",
        "Mon 03-09 20:15 backup",
        "Mon 03-09 20:30 report",
    ]


def test_health_runs_every_five_minutes_every_day_across_the_change() -> None:
    jobs = schedule().planned(utc(2026, 10, 26), utc(2026, 11, 9))  # two weeks around 1 November
    health = [job.at for job in jobs if job.job == "health"]
    assert len(health) == 14 * 288
    assert {b - a for a, b in itertools.pairwise(health)} == {timedelta(minutes=5)}
    assert sum(job.job == "session" for job in jobs) == 10


def simulate(plan: Schedule, start: datetime, end: datetime) -> tuple[list[tuple[str, datetime, datetime]], int]:
    """Step a SimClock from ``start`` to ``end`` by 5 minutes, running what is due at each step.

    Return the runs as (job, planned time, time it ran) and how many steps found a session open.
    """
    clock = SimClock(int(start.timestamp()) * NS)
    ran: list[tuple[str, datetime, datetime]] = []
    trading_steps = 0
    done_until = start
    while (now := datetime.fromtimestamp(clock.now_ns() / NS, UTC)) < end:
        ran += [(job.job, job.at, now) for job in plan.planned(done_until, now + TICK)]
        done_until = now + TICK
        trading_steps += plan.session_at(now) is not None
        clock.advance(clock.now_ns() + 300 * NS)
    return ran, trading_steps


def test_a_simulated_thanksgiving_week_runs_exactly_the_planned_jobs_on_time() -> None:
    plan = schedule(jobs=only("backup", "report", "health"))
    ran, trading_steps = simulate(plan, utc(2026, 11, 23), utc(2026, 11, 30))
    assert all(at == when for _, at, when in ran)  # every job ran at the step of its planned time
    assert len(ran) == len({(job, at) for job, at, _ in ran})  # none twice
    assert [f"{at:%a %H:%M} {job}" for job, at, _ in ran if job != "health"] == [
        "Mon 14:30 session",
        "Mon 21:15 backup",
        "Mon 21:30 report",
        "Tue 14:30 session",
        "Tue 21:15 backup",
        "Tue 21:30 report",
        "Wed 14:30 session",
        "Wed 21:15 backup",
        "Wed 21:30 report",
        "Fri 14:30 session",
        "Fri 18:15 backup",
        "Fri 18:30 report",
    ]
    assert sum(job == "health" for job, _, _ in ran) == 7 * 288
    per_day = {day: sum(at.date() == day for job, at, _ in ran if job != "health") for day in _days(23, 30)}
    assert per_day == {
        date(2026, 11, 23): 3,
        date(2026, 11, 24): 3,
        date(2026, 11, 25): 3,
        date(2026, 11, 26): 0,
        date(2026, 11, 27): 3,
        date(2026, 11, 28): 0,
        date(2026, 11, 29): 0,
    }
    # the robot trades 6h30 on Monday to Wednesday and 3h30 on Friday: 1380 minutes, 276 steps of 5
    assert trading_steps * 5 == 3 * 390 + 210


def _days(first: int, end: int) -> list[date]:
    return [date(2026, 11, day) for day in range(first, end)]


def test_a_plan_split_in_windows_is_the_plan_of_the_whole() -> None:
    plan = schedule(session_start="open - 5m")
    whole = plan.planned(utc(2026, 11, 23), utc(2026, 11, 30))
    for cut in (utc(2026, 11, 25, 14, 25), utc(2026, 11, 27, 18, 15), utc(2026, 11, 26, 3, 17, 12)):
        assert plan.planned(utc(2026, 11, 23), cut) + plan.planned(cut, utc(2026, 11, 30)) == whole


def test_planned_jobs_are_keyed_and_sorted() -> None:
    jobs = schedule().planned(utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 14, 31))
    assert jobs == [
        PlannedJob("bot", "health", utc(2026, 11, 27, 14, 30), None, "bot:health:2026-11-27T14:30:00+00:00"),
        PlannedJob(
            "bot",
            "session",
            utc(2026, 11, 27, 14, 30),
            utc(2026, 11, 27, 18),
            "bot:session:2026-11-27T14:30:00+00:00",
        ),
    ]
    assert schedule().planned(utc(2026, 11, 27), utc(2026, 11, 27)) == []


def test_manual_mode_plans_no_sessions_but_keeps_the_chores() -> None:
    plan = no_health(mode="manual")
    assert (plan.automatic, plan.manual_allowed) == (False, True)
    assert timeline(plan.planned(utc(2026, 11, 27), utc(2026, 11, 28))) == [
        "Fri 11-27 18:15 backup",
        "Fri 11-27 18:30 report",
    ]
    assert plan.session_at(utc(2026, 11, 27, 15)) is None
    assert (schedule(mode="auto").automatic, schedule(mode="auto").manual_allowed) == (True, False)
    assert (schedule().automatic, schedule().manual_allowed) == (True, True)


def test_chores_can_be_switched_off_and_added() -> None:
    plan = schedule(jobs=only("report") | {"report": "", "sweep": "open + 1h", "weekly": "0 6 * * sat"})
    assert [rule.job for rule in plan.chore_rules] == ["sweep", "weekly"]
    assert timeline(plan.planned(utc(2026, 11, 26), utc(2026, 11, 29))) == [
        "Fri 11-27 14:30 session until 18:00",
        "Fri 11-27 15:30 sweep",  # market-relative: trading days only (not Thanksgiving)
        "Sat 11-28 11:00 weekly",  # cron: whenever it matches, 06:00 New York
    ]


def test_a_cron_session_start_runs_on_trading_days_until_that_days_end() -> None:
    jobs = no_health(session_start="45 9 * * mon-fri").planned(utc(2026, 11, 23), utc(2026, 11, 30))
    assert [line for line in timeline(jobs) if "session" in line] == [
        "Mon 11-23 14:45 session until 21:00",
        "Tue 11-24 14:45 session until 21:00",
        "Wed 11-25 14:45 session until 21:00",
        "Fri 11-27 14:45 session until 18:00",  # Thursday's 09:45 is a holiday: skipped
    ]


def test_a_session_that_would_start_after_its_end_is_dropped() -> None:
    jobs = no_health(session_start="30 13 * * mon-fri").planned(utc(2026, 11, 25), utc(2026, 11, 28))
    # Wednesday 13:30 New York is before the 16:00 close; Friday 13:30 is after the 13:00 early close
    assert [line for line in timeline(jobs) if "session" in line] == ["Wed 11-25 18:30 session until 21:00"]


def test_session_at_finds_the_open_session_to_start_late_after_a_restart() -> None:
    plan = schedule(session_end="close + 10m")
    friday = plan.session_at(utc(2026, 11, 27, 18, 5))
    assert friday is not None
    assert (friday.at, friday.until) == (utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18, 10))
    assert plan.session_at(utc(2026, 11, 27, 14, 30)) == friday  # from its first instant
    assert plan.session_at(utc(2026, 11, 27, 18, 10)) is None  # not at its end
    assert plan.session_at(utc(2026, 11, 27, 14, 29, 59)) is None
    assert plan.session_at(utc(2026, 11, 26, 16)) is None  # Thanksgiving
    assert plan.session_at(utc(2026, 11, 28, 16)) is None  # Saturday


def test_next_jobs() -> None:
    plan = no_health()
    assert timeline(plan.next_jobs(utc(2026, 11, 25, 21, 15), 5)) == [
        "Wed 11-25 21:15 backup",  # due now: included
        "Wed 11-25 21:30 report",
        "Fri 11-27 14:30 session until 18:00",
        "Fri 11-27 18:15 backup",
        "Fri 11-27 18:30 report",
    ]
    each = schedule(jobs=only("backup", "report", "health")).next_jobs(utc(2026, 11, 25, 21, 15), 2, per_job=True)
    assert timeline(each) == [
        "Wed 11-25 21:15 backup",
        "Wed 11-25 21:15 health",
        "Wed 11-25 21:20 health",
        "Wed 11-25 21:30 report",
        "Fri 11-27 14:30 session until 18:00",
        "Fri 11-27 18:15 backup",
        "Fri 11-27 18:30 report",
        "Mon 11-30 14:30 session until 21:00",
    ]


def test_next_jobs_stop_where_the_calendar_ends() -> None:
    plan = Schedule("bot", ScheduleConfig(calendar="XSHG", session_end="close", jobs=only("backup", "report")))
    jobs = plan.next_jobs(utc(2026, 12, 21), 100)
    assert jobs
    assert plan.plannable_until == utc(2026, 12, 31, 16)  # the midnight after 31 December in Shanghai
    assert max(job.at for job in jobs) < utc(2026, 12, 31, 16)
    assert schedule().plannable_until is None
    assert jobs[-3:] == plan.planned(utc(2026, 12, 31), utc(2026, 12, 31, 16))  # the last day: session, backup, report
    with pytest.raises(ConfigError, match=r"the XSHG calendar knows its sessions only until 2026-12-31: cannot plan"):
        plan.planned(utc(2026, 12, 21), utc(2027, 1, 5))


def test_a_continuous_24_7_session_is_planned_daily_and_never_stops() -> None:
    plan = Schedule("coin", ScheduleConfig(calendar="24/7", session_end="never", jobs=only("backup", "report")))
    assert plan.zone.key == "UTC"
    assert timeline(plan.planned(utc(2026, 11, 26), utc(2026, 11, 28))) == [
        "Thu 11-26 00:00 session until never",  # Thanksgiving: crypto trades
        "Thu 11-26 00:15 backup",  # close + 15m: 15 minutes after the UTC day boundary
        "Thu 11-26 00:30 report",
        "Fri 11-27 00:00 session until never",
        "Fri 11-27 00:15 backup",
        "Fri 11-27 00:30 report",
    ]
    open_now = plan.session_at(utc(2026, 11, 28, 23, 59))
    assert open_now is not None
    assert (open_now.at, open_now.until) == (utc(2026, 11, 28), None)


def test_24_7_sessions_with_an_end_run_between_utc_day_boundaries() -> None:
    plan = Schedule(
        "coin",
        ScheduleConfig(calendar="24/7", session_start="open + 8h", session_end="close - 1h", jobs=only()),
    )
    sessions = [job for job in plan.planned(utc(2026, 11, 28), utc(2026, 11, 30)) if job.job == "session"]
    assert [(job.at, job.until) for job in sessions] == [
        (utc(2026, 11, 28, 8), utc(2026, 11, 28, 23)),
        (utc(2026, 11, 29, 8), utc(2026, 11, 29, 23)),
    ]


def test_a_continuous_session_started_by_cron_stays_open_over_the_weekend() -> None:
    plan = Schedule("coin", ScheduleConfig(calendar="24/7", session_start="0 8 * * mon", session_end="never"))
    open_now = plan.session_at(utc(2026, 11, 29, 12))  # a Sunday: the session began Monday the 23rd
    assert open_now is not None
    assert (open_now.at, open_now.until) == (utc(2026, 11, 23, 8), None)


def test_robot_schedules_resolve_each_robots_calendar() -> None:
    config = RobohostConfig.model_validate(
        {
            "robots": {
                "stocks": {"strategy": "x.py:X", "data": {"path": ["bars.csv"]}},
                "coin": {
                    "strategy": "x.py:X",
                    "data": {"source": "ccxt", "exchange": "binance", "symbols": ["BTC/USDT"]},
                    "schedule": {"mode": "auto", "grace": "5m", "retries": 1, "retry_delay": "30s"},
                },
            }
        }
    )
    schedules = robot_schedules(config)
    assert {name: s.calendar.name for name, s in schedules.items()} == {"stocks": "XNYS", "coin": "24/7"}
    coin = schedules["coin"]
    assert (coin.mode, coin.grace, coin.retries, coin.retry_delay) == (
        "auto",
        timedelta(minutes=5),
        1,
        timedelta(seconds=30),
    )
    assert coin.session_rule.end is None


def test_the_schedule_wants_resolved_settings_and_aware_times() -> None:
    with pytest.raises(ValueError, match="schedule_settings"):
        Schedule("bot", ScheduleConfig())
    with pytest.raises(ValueError, match="must be an aware datetime"):
        schedule().planned(datetime(2026, 11, 27), utc(2026, 11, 28))
