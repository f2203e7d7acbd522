"""Clocks and trading-day boundaries.

``SimClock`` follows the events of a replay; ``WallClock`` reads real time for live sessions.
``TradingDays`` finds where a trading day ends in the robot's time zone (for DAY orders and the
daily-loss limit). Nothing else in the engine or the domain reads the time.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from robohost.domain.values import NS_PER_SECOND


class SimClock:
    """Simulated time: the time of the event being processed."""

    __slots__ = ("_now",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        """Current simulated time, ns since the epoch, UTC."""
        return self._now

    def advance(self, ts: int) -> None:
        """Move to ``ts``; simulated time never goes back."""
        if ts > self._now:
            self._now = ts


class WallClock:
    """Real time, for live sessions."""

    __slots__ = ()

    def now_ns(self) -> int:
        """The wall clock, ns since the epoch, UTC."""
        return time.time_ns()

    def advance(self, ts: int) -> None:
        """Live time moves by itself; events do not move it."""


class TradingDays:
    """Day boundaries (midnight) in a market's time zone, cached: one lookup per day, not per event."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self._start = 1  # the cached day [start, end)
        self._end = 0

    def day_end_after(self, ts: int) -> int:
        """Return the ns timestamp of the first local midnight strictly after ``ts``."""
        if self._start <= ts < self._end:
            return self._end
        local = datetime.fromtimestamp(ts / NS_PER_SECOND, tz=self.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        nxt = midnight + timedelta(days=1)  # wall-clock arithmetic: right across DST changes
        self._start = int(midnight.timestamp()) * NS_PER_SECOND
        self._end = int(nxt.timestamp()) * NS_PER_SECOND
        return self._end
