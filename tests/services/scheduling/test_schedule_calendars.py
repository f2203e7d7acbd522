"""Trading sessions from exchange_calendars (holidays, early closes, DST) and the 24/7 calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from robohost.errors import ConfigError
from robohost.services.scheduling.calendars import (
    AlwaysOpenCalendar,
    MarketCalendar,
    TradingSession,
    market_calendar,
)


def utc(*args: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)


def test_thanksgiving_week_on_the_new_york_stock_exchange() -> None:
    calendar = market_calendar("XNYS")
    assert calendar.zone.key == "America/New_York"
    sessions = calendar.sessions(utc(2026, 11, 23), utc(2026, 11, 30))
    assert sessions == [
        TradingSession(date(2026, 11, 23), utc(2026, 11, 23, 14, 30), utc(2026, 11, 23, 21)),
        TradingSession(date(2026, 11, 24), utc(2026, 11, 24, 14, 30), utc(2026, 11, 24, 21)),
        TradingSession(date(2026, 11, 25), utc(2026, 11, 25, 14, 30), utc(2026, 11, 25, 21)),
        # 26th: Thanksgiving, closed. 27th: closes early at 13:00 New York time
        TradingSession(date(2026, 11, 27), utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18)),
    ]


def test_open_and_close_move_in_utc_with_daylight_saving() -> None:
    calendar = market_calendar("XNYS")
    autumn = calendar.sessions(utc(2026, 10, 30), utc(2026, 11, 3))
    assert [(s.day.day, s.open.hour, s.open.minute, s.close.hour) for s in autumn] == [
        (30, 13, 30, 20),
        (2, 14, 30, 21),
    ]
    spring = calendar.sessions(utc(2026, 3, 6), utc(2026, 3, 10))
    assert [(s.day.day, s.open.hour, s.close.hour) for s in spring] == [(6, 14, 21), (9, 13, 20)]


def test_sessions_overlapping_a_window_include_the_one_in_progress() -> None:
    sessions = market_calendar("XNYS").sessions(utc(2026, 11, 27, 17), utc(2026, 11, 27, 17, 1))
    assert [s.day for s in sessions] == [date(2026, 11, 27)]
    assert market_calendar("XNYS").sessions(utc(2026, 11, 27, 18), utc(2026, 11, 30, 14, 30)) == []


def test_calendars_are_built_once_per_name() -> None:
    assert market_calendar("XNYS") is market_calendar("XNYS")
    assert isinstance(market_calendar("XNYS"), MarketCalendar)
    assert isinstance(market_calendar("24/7"), AlwaysOpenCalendar)


def test_a_calendar_is_rebuilt_for_dates_outside_the_range_it_holds() -> None:
    calendar = MarketCalendar("XNYS")
    far = calendar.sessions(utc(2031, 11, 26), utc(2031, 11, 29))  # Thanksgiving 2031 is the 27th
    assert [(s.day.day, s.close.hour) for s in far] == [(26, 21), (28, 18)]
    old = calendar.sessions(utc(2001, 9, 10), utc(2001, 9, 18))  # closed after 11 September 2001
    assert [s.day.day for s in old] == [10, 17]


def test_a_calendar_that_ends_gives_the_sessions_it_knows() -> None:
    calendar = market_calendar("XSHG")  # exchange_calendars records its holidays to the end of 2026 only
    assert calendar.known_until == date(2026, 12, 31)
    assert calendar.zone.key == "Asia/Shanghai"
    sessions = calendar.sessions(utc(2026, 12, 28), utc(2027, 1, 10))
    assert [s.day for s in sessions] == [date(2026, 12, d) for d in (28, 29, 30, 31)]
    assert calendar.sessions(utc(2027, 1, 4), utc(2027, 1, 10)) == []


def test_an_unknown_calendar_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"calendar 'NOPE': unknown calendar; .*XNYS \(New York\)"):
        market_calendar("NOPE")


def test_the_24_7_calendar_has_utc_days() -> None:
    calendar = market_calendar("24/7")
    assert calendar.zone.key == "UTC"
    assert calendar.known_until is None
    assert calendar.sessions(utc(2026, 11, 26, 23, 59), utc(2026, 11, 28)) == [
        TradingSession(date(2026, 11, 26), utc(2026, 11, 26), utc(2026, 11, 27)),  # Thanksgiving: open
        TradingSession(date(2026, 11, 27), utc(2026, 11, 27), utc(2026, 11, 28)),
    ]
