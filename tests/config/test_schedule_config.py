"""``[robots.NAME.schedule]`` in robohost.toml: defaults by data source, and errors naming file and dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest

from robohost.config.loader import DATABASE_ENV, load_home
from robohost.config.models import DEFAULT_JOBS
from robohost.errors import ConfigError

STOCKS = """
[robots.bot]
strategy = "strategies/bot.py:Bot"

[robots.bot.data]
path = ["data/bars.csv"]
"""
CRYPTO = """
[robots.coin]
strategy = "strategies/bot.py:Bot"

[robots.coin.data]
source = "ccxt"
exchange = "binance"
symbols = ["BTC/USDT"]
"""


@pytest.fixture(autouse=True)
def _no_database_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_ENV, raising=False)


def home_with(tmp_path: Path, text: str) -> Path:
    """Write ``text`` as the home's robohost.toml and return the home."""
    (tmp_path / "robohost.toml").write_text(text)
    return tmp_path


def load_error(home: Path) -> str:
    """The one-line message of the ConfigError that loading ``home`` raises."""
    with pytest.raises(ConfigError) as caught:
        load_home(home)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_defaults_of_a_stock_robot(tmp_path: Path) -> None:
    _, robot = load_home(home_with(tmp_path, STOCKS)).robot("bot")
    schedule = robot.schedule_settings
    assert robot.schedule.calendar is None
    assert robot.calendar_name == schedule.calendar == "XNYS"
    assert (schedule.mode, schedule.session_start, schedule.session_end) == ("both", "open", "close")
    assert (schedule.grace, schedule.retries, schedule.retry_delay) == ("15m", 2, "1m")
    assert schedule.jobs == DEFAULT_JOBS
    assert {name: DEFAULT_JOBS[name] for name in ("backup", "report", "health")} == {
        "backup": "close + 15m",
        "report": "close + 30m",
        "health": "*/5 * * * *",
    }


def test_a_ccxt_robot_defaults_to_a_continuous_24_7_session(tmp_path: Path) -> None:
    _, robot = load_home(home_with(tmp_path, CRYPTO)).robot("coin")
    schedule = robot.schedule_settings
    assert (schedule.calendar, schedule.session_start, schedule.session_end) == ("24/7", "open", "never")


def test_jobs_are_merged_with_the_defaults_and_can_be_switched_off(tmp_path: Path) -> None:
    text = STOCKS + (
        '[robots.bot.schedule]\nmode = "manual"\ncalendar = "XLON"\nsession_start = "30 8 * * mon-fri"\n'
        'session_end = "Close - 5m"\ngrace = "1h30m"\nretries = 0\nretry_delay = 90\n'
        '[robots.bot.schedule.jobs]\nbackup = "off"\nreport = ""\nsweep = "open  -  10m"\n'
    )
    _, robot = load_home(home_with(tmp_path, text)).robot("bot")
    schedule = robot.schedule_settings
    assert (schedule.mode, schedule.calendar, schedule.session_start, schedule.session_end) == (
        "manual",
        "XLON",
        "30 8 * * mon-fri",
        "close - 5m",
    )
    assert (schedule.grace, schedule.retries, schedule.retry_delay) == ("1h30m", 0, "1m30s")
    assert schedule.jobs == DEFAULT_JOBS | {"backup": "off", "report": "off", "sweep": "open - 10m"}
    assert schedule.enabled_jobs == {
        name: when for name, when in DEFAULT_JOBS.items() if name not in ("backup", "report")
    } | {"sweep": "open - 10m"}


def test_an_explicit_calendar_wins_over_the_data_source(tmp_path: Path) -> None:
    text = CRYPTO + '[robots.coin.schedule]\ncalendar = "XNYS"\n'
    _, robot = load_home(home_with(tmp_path, text)).robot("coin")
    assert (robot.schedule_settings.calendar, robot.schedule_settings.session_end) == ("XNYS", "close")


@pytest.mark.parametrize(
    ("schedule", "key", "message"),
    [
        (
            '[robots.bot.schedule.jobs]\nbackup = "clse + 15m"\n',
            "robots.bot.schedule.jobs.backup",
            "expected a market-relative time such as 'open', 'close + 15m' or 'open - 5m', or a cron expression "
            "of 5 fields such as '*/5 * * * *' or '30 9 * * mon-fri' (got 'clse + 15m')",
        ),
        (
            '[robots.bot.schedule.jobs]\nhealth = "*/5 * * *"\n',
            "robots.bot.schedule.jobs.health",
            "expected a market-relative time such as 'open', 'close + 15m' or 'open - 5m', or a cron expression "
            "of 5 fields such as '*/5 * * * *' or '30 9 * * mon-fri' (got '*/5 * * *')",
        ),
        (
            '[robots.bot.schedule.jobs]\nhealth = "*/5 25 * * *"\n',
            "robots.bot.schedule.jobs.health",
            "the hour field '25' is invalid (Error validating expression '25': the last value (25) is higher "
            "than the maximum value (23)) (got '*/5 25 * * *')",
        ),
        (
            '[robots.bot.schedule]\nsession_start = "30 9 * * 1-5"\n',
            "robots.bot.schedule.session_start",
            "the day-of-week field '1-5' uses numbers, which mean different days in cron (0 = Sunday) and "
            "APScheduler (0 = Monday): use names such as 'mon-fri' or 'sat,sun' (got '30 9 * * 1-5')",
        ),
        (
            '[robots.bot.schedule]\nsession_end = "30 16 * * *"\n',
            "robots.bot.schedule.session_end",
            "the session's end is market-relative ('close', 'close + 10m') or 'never', not cron (got '30 16 * * *')",
        ),
        (
            '[robots.bot.schedule]\ncalendar = "XNSE"\n',
            "robots.bot.schedule.calendar",
            "unknown calendar; did you mean ",
        ),
        (
            '[robots.bot.schedule]\ncalendar = "XNYS"\nsession_end = "never"\n',
            "robots.bot.schedule.session_end",
            "'never' (a continuous session) needs calendar = '24/7'",
        ),
        (
            '[robots.bot.schedule]\nsession_end = "never"\n',
            "robots.bot.schedule",
            "session_end = 'never' (a continuous session) needs calendar = '24/7'; this robot's calendar is 'XNYS'",
        ),
        (
            '[robots.bot.schedule]\nsession_start = "close"\nsession_end = "open"\n',
            "robots.bot.schedule.session_end",
            "'open' is not after session_start 'close'",
        ),
        (
            '[robots.bot.schedule]\ngrace = "15 minutes"\n',
            "robots.bot.schedule.grace",
            "expected a duration such as '90s', '15m', '1h' or '1h30m' (got '15 minutes')",
        ),
        ('[robots.bot.schedule]\nmode = "sometimes"\n', "robots.bot.schedule.mode", "Input should be 'auto'"),
        (
            "[robots.bot.schedule]\nretries = -1\n",
            "robots.bot.schedule.retries",
            "Input should be greater than or equal to 0",
        ),
        (
            '[robots.bot.schedule.jobs]\nsession = "close"\n',
            "robots.bot.schedule.jobs.session.[key]",
            "'session' is the robot's own session (session_start, session_end): name the chore otherwise",
        ),
        ("[robots.bot.schedule]\nholidays = []\n", "robots.bot.schedule.holidays", "unknown key"),
    ],
)
def test_schedule_errors_name_the_file_and_the_dotted_key(
    tmp_path: Path, schedule: str, key: str, message: str
) -> None:
    error = load_error(home_with(tmp_path, STOCKS + schedule))
    assert error.startswith(f"{tmp_path.resolve() / 'robohost.toml'}: {key}: {message}"), error


def test_an_unknown_calendar_lists_valid_ones(tmp_path: Path) -> None:
    error = load_error(home_with(tmp_path, STOCKS + '[robots.bot.schedule]\ncalendar = "NYSEE"\n'))
    assert "did you mean NYSE" in error
    assert "use '24/7' or an exchange_calendars name such as XNYS (New York), XNAS, XLON" in error
