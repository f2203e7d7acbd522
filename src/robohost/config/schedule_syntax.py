"""The syntax of schedule times in ``robohost.toml``: durations, market-relative times, cron expressions.

This module says what may be written (and why something may not); ``robohost.services.scheduling``
turns the parsed values into times. It lives in the config layer because the config models validate
with it. Imports the standard library, APScheduler's cron trigger (to check expressions) and
exchange_calendars (for the calendar names) only.

- A duration: ``"90s"``, ``"15m"``, ``"1h"``, ``"1h30m"``.
- A market-relative time: ``"open"``, ``"close"``, ``"open - 5m"``, ``"close + 1h30m"`` (at most 24h away).
- A cron expression: five fields ``minute hour day month day-of-week`` as APScheduler's cron trigger reads
  them, e.g. ``"*/5 * * * *"`` or ``"30 9 * * mon-fri"``. The day of the week must be given by name:
  APScheduler counts 0 as Monday where cron counts 0 as Sunday, so numbers there would be a trap.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import exchange_calendars
from apscheduler.triggers.cron import CronTrigger

ALWAYS_OPEN = "24/7"
"""The calendar of a market that never closes (crypto): UTC days, 'open' and 'close' at 00:00 UTC."""
NEVER = "never"
"""``session_end`` of a continuous session (24/7 calendars only)."""
OFF = "off"
"""A chore set to this (or to ``""``) is switched off."""

_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
_MARKET = re.compile(r"^(?P<anchor>open|close)(?:\s*(?P<sign>[+-])\s*(?P<offset>\S+))?$")
MAX_OFFSET = timedelta(hours=24)
CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_FIELD_LABEL = {
    "minute": "minute",
    "hour": "hour",
    "day": "day-of-month",
    "month": "month",
    "day_of_week": "day-of-week",
}
_REFERENCE = datetime(2024, 1, 1, tzinfo=UTC)  # a leap year, so '29 2' is reached within the search


@dataclass(frozen=True, slots=True)
class MarketTime:
    """A time relative to a trading session: its open or close, plus a signed offset."""

    anchor: Literal["open", "close"]
    offset: timedelta = timedelta(0)

    def __str__(self) -> str:
        if not self.offset:
            return self.anchor
        sign = "-" if self.offset < timedelta(0) else "+"
        return f"{self.anchor} {sign} {format_duration(abs(self.offset))}"


@dataclass(frozen=True, slots=True)
class CronTime:
    """A cron expression (five fields, single-spaced), read in the calendar's time zone."""

    expression: str

    @property
    def fields(self) -> dict[str, str]:
        """The five fields by APScheduler's names: minute, hour, day, month, day_of_week."""
        return dict(zip(CRON_FIELDS, self.expression.split(), strict=True))

    def __str__(self) -> str:
        return self.expression


When = MarketTime | CronTime
"""When a job is due: relative to the market's sessions, or by a cron expression."""


def parse_duration(text: str) -> timedelta:
    """Parse ``"90s"``, ``"15m"``, ``"1h"``, ``"1h30m"``; a ``ValueError`` says what is expected."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None:
        raise ValueError("expected a duration such as '90s', '15m', '1h' or '1h30m'")
    return timedelta(hours=int(match["h"] or 0), minutes=int(match["m"] or 0), seconds=int(match["s"] or 0))


def format_duration(value: timedelta) -> str:
    """The inverse of ``parse_duration``: ``timedelta(minutes=90)`` -> ``"1h30m"``."""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"


def parse_market_time(text: str) -> MarketTime:
    """Parse ``"open"``, ``"close - 5m"``, ``"close + 1h30m"``; a ``ValueError`` says what is expected."""
    match = _MARKET.match(text.strip().lower())
    if match is None:
        raise ValueError("expected 'open' or 'close', optionally with an offset such as 'open - 5m' or 'close + 1h30m'")
    offset = timedelta(0)
    if match["offset"] is not None:
        try:
            offset = parse_duration(match["offset"])
        except ValueError:
            raise ValueError(
                f"the offset {match['offset']!r} is not a duration (expected e.g. '90s', '5m', '1h30m')"
            ) from None
        if offset > MAX_OFFSET:
            raise ValueError("an offset from the open or the close may be at most 24h")
        if match["sign"] == "-":
            offset = -offset
    anchor: Literal["open", "close"] = "open" if match["anchor"] == "open" else "close"
    return MarketTime(anchor, offset)


def looks_like_cron(text: str) -> bool:
    """True for five whitespace-separated fields that do not start with 'open' or 'close'."""
    parts = text.split()
    return len(parts) == 5 and parts[0].lower() not in ("open", "close")


def parse_cron(text: str) -> CronTime:
    """Check a five-field cron expression the way APScheduler reads it; a ``ValueError`` names the bad field."""
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day month day-of-week), this one has {len(parts)}"
        )
    parts = [p.lower() for p in parts]
    for name, value in zip(CRON_FIELDS, parts, strict=True):
        if name == "day_of_week" and re.search(r"\d", value):
            raise ValueError(
                f"the day-of-week field {value!r} uses numbers, which mean different days in cron (0 = Sunday) "
                "and APScheduler (0 = Monday): use names such as 'mon-fri' or 'sat,sun'"
            )
        try:
            CronTrigger(timezone=UTC, **{name: value})
        except ValueError as exc:
            raise ValueError(f"the {_FIELD_LABEL[name]} field {value!r} is invalid ({exc})") from None
    expression = " ".join(parts)
    trigger = CronTrigger.from_crontab(expression, timezone=UTC)
    if trigger.get_next_fire_time(None, _REFERENCE) is None:
        raise ValueError("the cron expression never matches a date")
    return CronTime(expression)


def parse_when(text: str) -> When:
    """Parse a job's time: a market-relative time or a cron expression (``ValueError`` if neither)."""
    if looks_like_cron(text):
        return parse_cron(text)
    if _MARKET.match(text.strip().lower()):
        return parse_market_time(text)
    raise ValueError(
        "expected a market-relative time such as 'open', 'close + 15m' or 'open - 5m', "
        "or a cron expression of 5 fields such as '*/5 * * * *' or '30 9 * * mon-fri'"
    )


def calendar_names() -> list[str]:
    """The calendars a schedule may name: '24/7' and every exchange_calendars name or alias."""
    return sorted({ALWAYS_OPEN, *exchange_calendars.get_calendar_names(include_aliases=True)})


def check_calendar(name: str) -> str:
    """Return ``name`` if it is a known calendar; else a ``ValueError`` listing close and common ones."""
    names = calendar_names()
    if name in names:
        return name
    close = difflib.get_close_matches(name.upper(), names, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ValueError(
        f"unknown calendar; {hint}use '24/7' or an exchange_calendars name such as "
        "XNYS (New York), XNAS, XLON, XETR, XTKS, XHKG, XASX, XTSE, CMES "
        f"({len(names)} in all: python -c 'import exchange_calendars as x; print(x.get_calendar_names())')"
    )
