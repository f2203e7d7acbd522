"""The syntax of schedule times: durations, market-relative times and cron expressions, and their errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from robohost.config.schedule_syntax import (
    CronTime,
    MarketTime,
    check_calendar,
    format_duration,
    looks_like_cron,
    parse_duration,
    parse_market_time,
    parse_when,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(minutes=90)),
        ("2h5m10s", timedelta(hours=2, minutes=5, seconds=10)),
        (" 0s ", timedelta(0)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "15", "m", "15x", "1.5h", "-5m", "30m1h"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration such as '90s', '15m', '1h' or '1h30m'"):
        parse_duration(text)


def test_format_duration_is_the_inverse() -> None:
    for text in ["90s", "15m", "1h", "1h30m", "2h5m10s"]:
        assert format_duration(parse_duration(text)) == (text if text != "90s" else "1m30s")
    assert format_duration(timedelta(0)) == "0s"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("open", MarketTime("open")),
        ("close", MarketTime("close")),
        ("open - 5m", MarketTime("open", -timedelta(minutes=5))),
        ("close + 10m", MarketTime("close", timedelta(minutes=10))),
        ("close+1h30m", MarketTime("close", timedelta(minutes=90))),
        ("  Open -90s ", MarketTime("open", -timedelta(seconds=90))),
        ("close + 24h", MarketTime("close", timedelta(hours=24))),
    ],
)
def test_market_relative_times(text: str, expected: MarketTime) -> None:
    assert parse_market_time(text) == expected
    assert parse_when(text) == expected


def test_market_times_print_in_their_own_syntax() -> None:
    assert str(parse_market_time("close+1h30m")) == "close + 1h30m"
    assert str(parse_market_time("open - 90s")) == "open - 1m30s"
    assert str(parse_market_time("open")) == "open"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("close + 1d", "the offset '1d' is not a duration"),
        ("open - 25h", "at most 24h"),
        ("open * 5m", "expected 'open' or 'close'"),
        ("opening", "expected 'open' or 'close'"),
    ],
)
def test_bad_market_relative_times(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_market_time(text)


def test_cron_expressions_are_normalised() -> None:
    assert parse_when("*/5  *  * * *") == CronTime("*/5 * * * *")
    assert parse_when("30 9 * * MON-FRI") == CronTime("30 9 * * mon-fri")
    assert CronTime("30 9 * * mon-fri").fields == {
        "minute": "30",
        "hour": "9",
        "day": "*",
        "month": "*",
        "day_of_week": "mon-fri",
    }
    assert looks_like_cron("0 9 * * *")
    assert not looks_like_cron("close + 15m")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 * * * *", r"the minute field '61' is invalid \(.*higher than the maximum value \(59\)\)"),
        ("0 24 * * *", "the hour field '24' is invalid"),
        ("0 9 0 * *", "the day-of-month field '0' is invalid"),
        ("0 9 * 13 *", "the month field '13' is invalid"),
        ("0 9 * * funday", "the day-of-week field 'funday' is invalid"),
        ("0 9 30 feb *", "never matches a date"),
    ],
)
def test_bad_cron_expressions_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_when(text)


def test_numeric_days_of_the_week_are_refused_because_apscheduler_counts_from_monday() -> None:
    with pytest.raises(ValueError, match=r"0 = Sunday.*0 = Monday.*use names such as 'mon-fri'"):
        parse_when("30 9 * * 1-5")


def test_neither_syntax_says_both_are_possible() -> None:
    with pytest.raises(ValueError, match=r"market-relative time such as 'open'.*or a cron expression of 5 fields"):
        parse_when("every day at nine")
    with pytest.raises(ValueError, match="or a cron expression of 5 fields"):
        parse_when("* * * *")


def test_calendar_names() -> None:
    assert check_calendar("XNYS") == "XNYS"
    assert check_calendar("24/7") == "24/7"
    assert check_calendar("NYSE") == "NYSE"  # an exchange_calendars alias
    with pytest.raises(ValueError, match=r"unknown calendar; did you mean XNYS.*such as XNYS \(New York\), XNAS"):
        check_calendar("XNYSS")
