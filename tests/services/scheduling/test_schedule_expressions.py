"""Cron expressions in the exchange's zone across daylight-saving changes, and market-relative times.

The behaviour asserted here is the one documented in ``robohost.services.scheduling.expressions``.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from robohost.services.scheduling.calendars import TradingSession
from robohost.services.scheduling.expressions import CronTime, cron_times, market_time, parse_market_time

NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)


def fires(expression: str, start: datetime, end: datetime) -> list[datetime]:
    """The UTC times at which ``expression`` fires in New York in ``[start, end)``."""
    return list(cron_times(CronTime(expression), NEW_YORK, start, end))


def test_every_five_minutes_is_even_in_utc_through_both_daylight_saving_changes() -> None:
    for start in (utc(2026, 10, 31, 12), utc(2026, 3, 7, 12)):  # clocks go back 1 Nov, forward 8 Mar
        times = fires("*/5 * * * *", start, start + timedelta(days=1))
        assert len(times) == 288
        assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(minutes=5)}
        assert times[0] == start


def test_a_fixed_time_runs_once_when_clocks_go_back() -> None:
    times = fires("30 1 * * *", utc(2026, 10, 31), utc(2026, 11, 3))
    # 01:30 EDT on the 31st; on 1 Nov 01:30 comes twice (05:30 and 06:30 UTC): only the first; then 01:30 EST
    assert times == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_a_fixed_time_starting_inside_the_repeated_hour_is_not_run_again() -> None:
    assert fires("30 1 * * *", utc(2026, 11, 1, 6), utc(2026, 11, 2)) == []


def test_a_job_with_a_wildcard_minute_runs_in_both_repeated_hours() -> None:
    times = fires("*/30 1 * * *", utc(2026, 11, 1), utc(2026, 11, 2))
    assert times == [utc(2026, 11, 1, 5), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6), utc(2026, 11, 1, 6, 30)]


def test_a_time_skipped_when_clocks_go_forward_runs_at_the_old_offset() -> None:
    times = fires("30 2 * * *", utc(2026, 3, 7), utc(2026, 3, 10))
    # 02:30 does not exist on 8 March: it runs at 07:30 UTC (03:30 EDT), the offset before the change
    assert times == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]


def test_cron_reads_names_of_days_in_the_exchange_zone() -> None:
    times = fires("30 9 * * mon-fri", utc(2026, 11, 21), utc(2026, 11, 28))  # Sat 21 .. Fri 27
    assert [t.astimezone(NEW_YORK).strftime("%a %H:%M") for t in times] == [
        "Mon 09:30",
        "Tue 09:30",
        "Wed 09:30",
        "Thu 09:30",  # cron knows no holidays: Thanksgiving included
        "Fri 09:30",
    ]
    assert times[0] == utc(2026, 11, 23, 14, 30)


def test_cron_times_are_lazy_and_start_inclusive() -> None:
    stream = cron_times(CronTime("*/5 * * * *"), NEW_YORK, utc(2026, 11, 27, 15))
    assert next(stream) == utc(2026, 11, 27, 15)
    assert next(stream) == utc(2026, 11, 27, 15, 5)


def test_market_times_are_offsets_from_the_session() -> None:
    session = TradingSession(date(2026, 11, 27), utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18))
    assert market_time(parse_market_time("open - 5m"), session) == utc(2026, 11, 27, 14, 25)
    assert market_time(parse_market_time("close + 1h30m"), session) == utc(2026, 11, 27, 19, 30)
