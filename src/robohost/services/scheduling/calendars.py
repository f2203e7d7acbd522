"""Trading sessions of a market, as UTC datetimes: exchange_calendars for exchanges, arithmetic for 24/7.

A session is one trading day: its label (the date in the exchange's zone), its open and its close.
Holidays have no session; early closes have their early close; daylight-saving changes are in the UTC
times. Lunch breaks (XHKG, XTKS…) are ignored: a session runs from its open to its close.

Building an exchange_calendars calendar takes a tenth of a second, so each is built once per process
(``market_calendar``) and rebuilt only when asked for dates outside the range it holds. Imports
exchange_calendars, the standard library, ``robohost.config`` and ``robohost.errors`` only.
"""

from __future__ import annotations

import threading
import warnings
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import exchange_calendars

from robohost.config.schedule_syntax import ALWAYS_OPEN, check_calendar
from robohost.errors import ConfigError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_DAY = 86_400 * 1_000_000_000
# exchange_calendars 4.13 reads pandas in ways pandas 3.1 deprecates (Pandas4Warning, a DeprecationWarning).
# They are exchange_calendars' to fix, harmless for us, and only raised while a calendar is built: ignore
# exactly these two messages, exactly there (under a lock, as warning filters are process-wide).
_XCALS_PANDAS_DEPRECATIONS = (
    r"(Series\.values returning an ndarray that drops timezone|DatetimeIndex\.weekday is deprecated)"
)
_BUILD_LOCK = threading.Lock()
_MARGIN = timedelta(days=366)  # build a calendar this far around what was asked, so that it is rebuilt rarely


@dataclass(frozen=True, slots=True)
class TradingSession:
    """One trading session: its label date (in the exchange's zone) and its open and close (UTC)."""

    day: date
    open: datetime
    close: datetime


class SessionCalendar(Protocol):
    """What the schedule needs of a calendar."""

    @property
    def name(self) -> str:
        """The calendar's name: '24/7' or an exchange_calendars name."""
        ...

    @property
    def zone(self) -> ZoneInfo:
        """The exchange's time zone: schedule times and cron expressions are read in it."""
        ...

    @property
    def known_until(self) -> date | None:
        """The last day the calendar knows sessions for (None: no limit)."""
        ...

    def sessions(self, start: datetime, end: datetime) -> list[TradingSession]:
        """The sessions that overlap ``[start, end)``, in order."""
        ...


class AlwaysOpenCalendar:
    """A market that never closes (crypto): one session per UTC day, from 00:00 to the next 00:00 UTC."""

    name = ALWAYS_OPEN
    zone = ZoneInfo("UTC")
    known_until: date | None = None

    def sessions(self, start: datetime, end: datetime) -> list[TradingSession]:
        """The UTC days that overlap ``[start, end)``."""
        day = start.astimezone(UTC).date()
        out: list[TradingSession] = []
        while (opens := datetime(day.year, day.month, day.day, tzinfo=UTC)) < end:
            out.append(TradingSession(day, opens, opens + timedelta(days=1)))
            day += timedelta(days=1)
        return out


class MarketCalendar:
    """An exchange's sessions from exchange_calendars, held as plain lists for fast look-ups."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        calendar = self._build(None, None)  # exchange_calendars' default range: 20 years back, 1 ahead
        self.zone: ZoneInfo = ZoneInfo(str(calendar.tz))
        self._bound_min = _day_or_none(type(calendar).bound_min())
        self._bound_max = _day_or_none(type(calendar).bound_max())
        self._load(calendar)

    @property
    def known_until(self) -> date | None:
        """The last day exchange_calendars records this exchange's holidays for (None: computed by rule)."""
        return self._bound_max

    def sessions(self, start: datetime, end: datetime) -> list[TradingSession]:
        """The sessions that overlap ``[start, end)``, early closes included, holidays excluded.

        Only those the calendar knows: none after ``known_until`` (the schedule checks its windows against it).
        """
        self._ensure((start - timedelta(days=2)).date(), (end + timedelta(days=2)).date())
        with self._lock:
            days, opens, closes = self._days, self._opens, self._closes
        out: list[TradingSession] = []
        i = bisect_right(closes, start)
        while i < len(days) and opens[i] < end:
            out.append(TradingSession(days[i], opens[i], closes[i]))
            i += 1
        return out

    def _ensure(self, first: date, last: date) -> None:
        first, last = self._clip(first), self._clip(last)
        with self._lock:
            if self._first <= first and last <= self._last:
                return
            lo = self._clip(min(first, self._first) - _MARGIN)
            hi = self._clip(max(last, self._last) + _MARGIN)
            self._load(self._build(lo, hi), lo, hi)

    def _clip(self, day: date) -> date:
        if self._bound_min is not None and day < self._bound_min:
            return self._bound_min
        if self._bound_max is not None and day > self._bound_max:
            return self._bound_max
        return day

    def _build(self, start: date | None, end: date | None) -> Any:
        bounds = {} if start is None or end is None else {"start": start.isoformat(), "end": end.isoformat()}
        try:
            with _BUILD_LOCK, warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_XCALS_PANDAS_DEPRECATIONS, category=DeprecationWarning)
                return exchange_calendars.get_calendar(self.name, **bounds)
        except ValueError as exc:  # out-of-range dates, holidays not recorded that far
            where = f" from {start} to {end}" if bounds else ""
            raise ConfigError(f"the {self.name} calendar cannot give sessions{where}: {exc}") from None

    def _load(self, calendar: Any, first: date | None = None, last: date | None = None) -> None:
        """Hold the sessions of ``calendar``, built for the days ``first`` to ``last`` (None: its own range)."""
        self._days = [(_EPOCH + timedelta(days=int(ns // _NS_PER_DAY))).date() for ns in calendar.sessions_nanos]
        self._opens = [_EPOCH + timedelta(microseconds=int(ns // 1000)) for ns in calendar.opens_nanos]
        self._closes = [_EPOCH + timedelta(microseconds=int(ns // 1000)) for ns in calendar.closes_nanos]
        self._first = first or (self._days[0] if self._days else date.max)
        self._last = last or (self._days[-1] if self._days else date.min)


def _day_or_none(value: Any) -> date | None:
    return None if value is None else date(value.year, value.month, value.day)


_CALENDARS: dict[str, SessionCalendar] = {}
_CALENDARS_LOCK = threading.Lock()


def market_calendar(name: str) -> SessionCalendar:
    """The calendar called ``name`` ('24/7' or an exchange_calendars name), built once per process."""
    with _CALENDARS_LOCK:
        calendar = _CALENDARS.get(name)
        if calendar is None:
            try:
                check_calendar(name)
            except ValueError as exc:
                raise ConfigError(f"calendar {name!r}: {exc}") from None
            calendar = AlwaysOpenCalendar() if name == ALWAYS_OPEN else MarketCalendar(name)
            _CALENDARS[name] = calendar
        return calendar
