"""A robot's schedule: which of its jobs are due when, from its config, its market's calendar and cron.

Nothing here reads the clock: every question names its time (``planned(start, end)``,
``next_jobs(now, …)``, ``session_at(now)``), so a scheduler driven by any clock — the wall clock, or a
simulated one stepping through weeks in a test — gets the same answers. All times are aware UTC datetimes.

The jobs of a robot:

- ``session``: the robot trading. Planned in modes ``auto`` and ``both`` only; in ``manual`` mode a
  person starts it (``both`` allows both). Due at ``session_start`` of every trading session and
  ``until`` that session's ``session_end``: holidays have no session, early closes end it early, and the
  UTC times follow daylight-saving changes. A cron ``session_start`` gives the time of day; the session
  still runs on trading days only (a cron time on a day without a session is skipped) and ends at that
  day's ``session_end``. A session whose end is not after its start is dropped. On a 24/7 calendar with
  ``session_end = "never"`` the session is continuous: it is planned once a day at ``session_start``
  (00:00 UTC by default) with ``until = None`` — "make sure it is running" — and never stops by schedule.
- chores (``backup``, ``report``, ``health``, …): planned in every mode. A market-relative chore is
  due on trading days only (``close + 15m`` is 15 minutes after an early close on an early-close day);
  a cron chore is due whenever its expression matches, trading day or not.

Imports the config, the calendars and the expressions of this package only.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice

from robohost.config.models import RobohostConfig, RobotConfig, ScheduleConfig
from robohost.config.schedule_syntax import NEVER
from robohost.errors import ConfigError
from robohost.services.scheduling.calendars import SessionCalendar, TradingSession, market_calendar
from robohost.services.scheduling.expressions import (
    CronTime,
    MarketTime,
    When,
    cron_times,
    market_time,
    parse_duration,
    parse_market_time,
    parse_when,
)

SESSION = "session"
"""The job name of the robot's trading session; every other job is a chore."""
HORIZON = timedelta(days=366)
"""How far ahead ``next_jobs`` looks."""
_PAD = timedelta(hours=25)  # market-relative offsets are at most 24h: sessions this far outside a window matter
_LOOKBACK = timedelta(days=4)  # a session (at most a day plus 24h of offsets) started within this of now


@dataclass(frozen=True, slots=True)
class PlannedJob:
    """One planned run of a job: due ``at`` (UTC); a session must stop ``until`` (UTC, None: never)."""

    robot: str
    job: str
    at: datetime
    until: datetime | None
    key: str


@dataclass(frozen=True, slots=True)
class JobRule:
    """One job of a schedule: its name, when it is due and, for the session, when it ends (None: never)."""

    job: str
    when: When
    end: MarketTime | None = None


def _order(job: PlannedJob) -> tuple[datetime, str]:
    return job.at, job.job


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (UTC or with a zone), got {value!r}")
    return value.astimezone(UTC)


class Schedule:
    """The planned jobs of one robot (see the module docstring for what is planned when)."""

    def __init__(self, robot: str, config: ScheduleConfig) -> None:
        """Plan ``robot`` by ``config``, whose calendar and session end are resolved (``schedule_settings``)."""
        if config.calendar is None or config.session_end is None:
            raise ValueError("resolve the calendar and the session end first: use RobotConfig.schedule_settings")
        self.robot = robot
        self.config = config
        self.mode = config.mode
        self.calendar: SessionCalendar = market_calendar(config.calendar)
        self.zone = self.calendar.zone
        self.grace: timedelta = parse_duration(config.grace)
        self.retries: int = config.retries
        self.retry_delay: timedelta = parse_duration(config.retry_delay)
        end = None if config.session_end == NEVER else parse_market_time(config.session_end)
        self.session_rule = JobRule(SESSION, parse_when(config.session_start), end)
        self.chore_rules = tuple(JobRule(name, parse_when(when)) for name, when in config.enabled_jobs.items())

    @classmethod
    def for_robot(cls, name: str, robot: RobotConfig) -> Schedule:
        """The schedule of the robot ``name`` configured by ``robot``."""
        return cls(name, robot.schedule_settings)

    @property
    def automatic(self) -> bool:
        """Whether the session is planned (modes ``auto`` and ``both``)."""
        return self.mode != "manual"

    @property
    def manual_allowed(self) -> bool:
        """Whether a person may start the session (modes ``manual`` and ``both``)."""
        return self.mode != "auto"

    @property
    def rules(self) -> tuple[JobRule, ...]:
        """The planned jobs' rules: the session (unless ``manual``), then the chores."""
        return ((self.session_rule,) if self.automatic else ()) + self.chore_rules

    def planned(self, start: datetime, end: datetime) -> list[PlannedJob]:
        """Every job due in ``[start, end)``, sorted by (at, job).

        A ``ConfigError`` if the window goes past what the calendar knows (``plannable_until``).
        """
        start, end = _utc(start, "start"), _utc(end, "end")
        self.check_plannable(end)
        return sorted((job for rule in self.rules for job in self.occurrences(rule, start, end)), key=_order)

    def next_jobs(self, now: datetime, count: int, *, per_job: bool = False) -> list[PlannedJob]:
        """The next ``count`` jobs due at or after ``now`` (``per_job``: the next ``count`` of each job).

        Looks up to a year ahead, and not past the last day the calendar knows.
        """
        now = _utc(now, "now")
        known_end = self.plannable_until
        end = now + HORIZON if known_end is None else min(now + HORIZON, known_end)
        streams = [self.occurrences(rule, now, end) for rule in self.rules]
        if per_job:
            return sorted((job for stream in streams for job in islice(stream, count)), key=_order)
        return list(islice(heapq.merge(*streams, key=_order), count))

    def session_at(self, now: datetime) -> PlannedJob | None:
        """The planned session that is open at ``now`` (started, not yet ended), if any: to start it late."""
        now = _utc(now, "now")
        if not self.automatic:
            return None
        rule = self.session_rule
        lookbacks = [_LOOKBACK]
        if rule.end is None and isinstance(rule.when, CronTime):
            lookbacks.append(HORIZON)  # a continuous session started by a rare cron time may be long open
        for lookback in lookbacks:
            started = list(self.occurrences(rule, now - lookback, now + timedelta(microseconds=1)))
            for job in reversed(started):
                if job.until is None or job.until > now:
                    return job
        return None

    def check_plannable(self, end: datetime) -> None:
        """A ``ConfigError`` if planning up to ``end`` needs days the calendar does not know."""
        known_end = self.plannable_until
        if known_end is not None and end > known_end:
            raise ConfigError(
                f"the {self.calendar.name} calendar knows its sessions only until {self.calendar.known_until}: "
                f"cannot plan robot {self.robot!r} up to {end:%Y-%m-%d %H:%M} UTC; plan fewer days ahead, "
                "or upgrade exchange_calendars"
            )

    @property
    def plannable_until(self) -> datetime | None:
        """How far ``planned`` can see (UTC): the midnight after the calendar's last known day; None: no limit."""
        last = self.calendar.known_until
        if last is None:
            return None
        return datetime.combine(last + timedelta(days=1), time(), self.zone).astimezone(UTC)

    def occurrences(self, rule: JobRule, start: datetime, end: datetime) -> Iterator[PlannedJob]:
        """Yield the runs of ``rule`` due in ``[start, end)`` (UTC), in time order, lazily for cron."""
        if isinstance(rule.when, CronTime):
            if rule.job == SESSION:
                yield from self._cron_sessions(rule, rule.when, start, end)
            else:
                for at in cron_times(rule.when, self.zone, start, end):
                    yield self._job(rule.job, at, None)
            return
        for session in self.calendar.sessions(start - _PAD, end + _PAD):
            at = market_time(rule.when, session)
            if at >= end:
                return
            if at >= start and (job := self._session_job(rule, at, session)) is not None:
                yield job

    def _cron_sessions(self, rule: JobRule, when: CronTime, start: datetime, end: datetime) -> Iterator[PlannedJob]:
        by_day: dict[date, TradingSession] = {s.day: s for s in self.calendar.sessions(start - _PAD, end + _PAD)}
        for at in cron_times(when, self.zone, start, end):
            session = by_day.get(at.astimezone(self.zone).date())
            if session is not None and (job := self._session_job(rule, at, session)) is not None:
                yield job

    def _session_job(self, rule: JobRule, at: datetime, session: TradingSession) -> PlannedJob | None:
        if rule.job != SESSION:
            return self._job(rule.job, at, None)
        until = None if rule.end is None else market_time(rule.end, session)
        if until is not None and until <= at:
            return None
        return self._job(SESSION, at, until)

    def _job(self, job: str, at: datetime, until: datetime | None) -> PlannedJob:
        return PlannedJob(self.robot, job, at, until, f"{self.robot}:{job}:{at.isoformat()}")


def robot_schedules(config: RobohostConfig) -> dict[str, Schedule]:
    """Every robot's schedule, by robot name."""
    return {name: Schedule.for_robot(name, robot) for name, robot in config.robots.items()}


__all__ = ["HORIZON", "SESSION", "JobRule", "PlannedJob", "Schedule", "robot_schedules"]
