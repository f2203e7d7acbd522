"""Time for the server: the wall clock in production, a simulated one that tests step through weeks with."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class ServerClock(Protocol):
    """What the server asks of time."""

    def now(self) -> datetime:
        """The current time, UTC, tz-aware."""
        ...

    def sleep_until(self, when: datetime, stop: threading.Event, settle: Callable[[], None]) -> None:
        """Wait until ``when`` or until ``stop`` is set (``settle`` waits for work in progress, in simulations)."""
        ...


class WallClock:
    """Real time: sleeps on the stop event so that a signal wakes the loop at once."""

    def now(self) -> datetime:
        """The system's time."""
        return datetime.now(UTC)

    def sleep_until(self, when: datetime, stop: threading.Event, settle: Callable[[], None]) -> None:
        """Sleep until ``when`` (or ``stop``)."""
        stop.wait(max(0.0, (when - self.now()).total_seconds()))


class SimulatedClock:
    """Simulated time: ``sleep_until`` lets the work in progress finish, then jumps straight to ``when``.

    Weeks of schedule pass in the time the jobs themselves take. ``limit`` ends the simulation: when the
    next wake-up lies beyond it, ``stop`` is set.
    """

    def __init__(self, start: datetime, limit: datetime) -> None:
        self.current = start.astimezone(UTC)
        self.limit = limit.astimezone(UTC)
        self.wakes = 0

    def now(self) -> datetime:
        """The simulated time."""
        return self.current

    def sleep_until(self, when: datetime, stop: threading.Event, settle: Callable[[], None]) -> None:
        """Settle, then advance to ``when`` (at least a microsecond), or stop at the limit."""
        settle()
        self.wakes += 1
        target = max(when, self.current + timedelta(microseconds=1))
        if target > self.limit:
            stop.set()
            return
        self.current = target
