"""Schedule times made concrete: market-relative times against sessions, cron expressions in a zone.

The syntax — what may be written in ``robohost.toml`` — is ``robohost.config.schedule_syntax``, where the
config models check it; its parsers are re-exported here so that scheduling code needs one import.

Cron expressions are APScheduler's cron trigger in the calendar's time zone. Across daylight-saving
changes (checked by tests/services/scheduling/test_expressions.py):

- a job with a wildcard minute or hour (``*/5 * * * *``, ``0 * * * *``) follows real time: every
  5 minutes in UTC, with neither a gap nor a duplicate, through both changes;
- when clocks go back, a job at a fixed time of day (``30 1 * * *``) runs once, at the first of the two
  01:30s (APScheduler would fire at both; like cron, robohost drops the second);
- when clocks go forward, a fixed time that does not exist that day (``30 2 * * *``) runs at the same
  UTC offset as before the change (03:30 new time), as APScheduler computes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from robohost.config.schedule_syntax import (
    CronTime,
    MarketTime,
    When,
    format_duration,
    looks_like_cron,
    parse_cron,
    parse_duration,
    parse_market_time,
    parse_when,
)
from robohost.services.scheduling.calendars import TradingSession

__all__ = [
    "CronTime",
    "MarketTime",
    "When",
    "cron_times",
    "cron_trigger",
    "format_duration",
    "looks_like_cron",
    "market_time",
    "parse_cron",
    "parse_duration",
    "parse_market_time",
    "parse_when",
]


def market_time(when: MarketTime, session: TradingSession) -> datetime:
    """The UTC time of ``when`` in ``session``: its open or close plus the offset."""
    return (session.open if when.anchor == "open" else session.close) + when.offset


def cron_trigger(when: CronTime, zone: ZoneInfo) -> CronTrigger:
    """APScheduler's trigger for the expression, read in ``zone``."""
    return CronTrigger.from_crontab(when.expression, timezone=zone)


def cron_times(when: CronTime, zone: ZoneInfo, start: datetime, end: datetime | None = None) -> Iterator[datetime]:
    """Yield the UTC times at which ``when`` fires in ``zone``, ``start <= t < end``, in order, lazily."""
    trigger = cron_trigger(when, zone)
    fields = when.fields
    fixed_time = not fields["minute"].startswith("*") and not fields["hour"].startswith("*")
    previous: datetime | None = None
    now = start
    while (fire := trigger.get_next_fire_time(previous, now)) is not None:
        utc = fire.astimezone(UTC)
        if end is not None and utc >= end:
            return
        previous = now = fire
        if fixed_time and fire.fold == 1 and _ambiguous(fire):
            continue  # the second of two equal wall-clock times when clocks go back: cron runs it once
        yield utc


def _ambiguous(local: datetime) -> bool:
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()
