"""Helpers of the runner tests: a fixed plan, an alert recorder, and a harness stepping a runner through time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from robohost.adapters.db.jobs import JobRow, JobStore, RequestStore
from robohost.bootstrap import App
from robohost.services.server.chores import Chore, UnavailableChore
from robohost.services.server.runner import RobotRunner, RunnerPolicy, ns

CONFIG = """
[database]
url = "{url}"

[robots.bot]
strategy = "robohost.examples.sma_cross:SmaCross"
timezone = "UTC"
params = {{ fast = 3, slow = 8, qty = 10 }}

[robots.bot.data]
path = ["data/bars.parquet"]
"""
T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Job:
    """A planned job, as the schedule gives it."""

    robot: str
    job: str
    at: datetime
    until: datetime | None
    key: str


def job(name: str, at: datetime, until: datetime | None = None) -> Job:
    """A planned job of robot ``bot``."""
    return Job("bot", name, at, until, f"bot:{name}:{at.isoformat()}")


@dataclass
class ListPlan:
    """A fixed list of planned jobs (the calendar's own tests cover how they are planned)."""

    jobs: list[Job] = field(default_factory=list)

    def planned(self, start: datetime, end: datetime) -> list[Job]:
        return sorted((j for j in self.jobs if start <= j.at < end), key=lambda j: (j.at, j.job))

    def session_at(self, now: datetime) -> Job | None:
        return next((j for j in self.jobs if j.job == "session" and j.at <= now and j.until and now < j.until), None)


class Alerts(list[tuple[str, dict[str, Any]]]):
    """Alerts raised, in order."""

    def __call__(self, kind: str, details: dict[str, Any]) -> None:
        self.append((kind, details))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self]


class Harness:
    """Builds runners for robot ``bot`` and steps them through time."""

    def __init__(self, app: App, workers: ThreadPoolExecutor) -> None:
        self.app = app
        self.workers = workers
        self.alerts = Alerts()
        self.now = T0
        self.jobs = JobStore(app.engine)
        self.requests = RequestStore(app.engine)

    def runner(
        self,
        plan: ListPlan,
        policy: RunnerPolicy | None = None,
        chores: dict[str, Chore | UnavailableChore] | None = None,
        role: str = "serve",
    ) -> RobotRunner:
        return RobotRunner(
            "bot",
            plan,
            policy or RunnerPolicy(),
            self.app.lease("bot", role, lambda: ns(self.now)),
            self.jobs,
            self.requests,
            lambda alert: self.app._paper_for("bot", self.app.paper("bot").log, alert),
            chores if chores is not None else {"health": lambda robot: f"{robot} fine"},
            self.workers,
            self.app.paper("bot").log,  # type: ignore[arg-type]
            self.alerts,
        )

    def step(self, runner: RobotRunner, at: datetime) -> None:
        """Tick at ``at`` and let the jobs it started end (they are short replays and chores)."""
        self.now = at
        runner.tick(at)
        for future in runner.busy():
            future.exception(timeout=60)
        runner.tick(at)  # record what ended

    def rows(self) -> list[JobRow]:
        return list(reversed(self.jobs.history("bot", 1000)))


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
