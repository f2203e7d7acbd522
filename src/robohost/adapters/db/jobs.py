"""Job history and people's requests: the rows the hands-free server reads and writes.

A planned job is claimed by inserting its row: the ``key`` column is unique, so a job planned once runs at
most once even when two servers race or one takes over from another. Times are ns since the epoch, UTC.
Must not import ``robohost.config``, ``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from robohost.adapters.db.tables import jobs, requests


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job: a robot's session or chore, planned by the schedule or asked for by a person."""

    id: int
    robot: str
    job: str
    key: str
    trigger: str
    planned_at: int | None
    until: int | None
    started_at: int | None
    ended_at: int | None
    outcome: str
    attempts: int
    next_attempt_at: int | None
    error: str | None
    run_id: str | None
    runner: str | None


@dataclass(frozen=True, slots=True)
class RequestRow:
    """A person's request: run or stop the robot, or run a chore now."""

    id: int
    robot: str
    action: str
    job: str | None
    requested_by: str
    requested_at: int
    handled_at: int | None
    handled_by: str | None
    outcome: str | None


class JobStore:
    """Reads and writes ``jobs``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def claim(
        self,
        *,
        robot: str,
        job: str,
        key: str,
        trigger: str,
        planned_at: int | None,
        until: int | None,
        now: int,
        runner: str,
        outcome: str = "running",
        error: str | None = None,
    ) -> int | None:
        """Insert the job's row (``running`` unless told otherwise); None when its key already has one."""
        values: dict[str, Any] = {
            "robot": robot,
            "job": job,
            "key": key,
            "trigger": trigger,
            "planned_at": planned_at,
            "until": until,
            "started_at": now if outcome == "running" else None,
            "ended_at": None if outcome == "running" else now,
            "outcome": outcome,
            "attempts": 1 if outcome == "running" else 0,
            "error": error,
            "runner": runner,
        }
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(sa.insert(jobs).values(**values).returning(jobs.c.id)).scalar_one())
        except IntegrityError:
            return None

    def finish(self, job_id: int, outcome: str, now: int, error: str | None = None, run_id: str | None = None) -> None:
        """Record how the job ended."""
        values: dict[str, Any] = {"outcome": outcome, "ended_at": now, "error": error, "next_attempt_at": None}
        if run_id is not None:
            values["run_id"] = run_id
        self._update(job_id, values)

    def retry_later(self, job_id: int, error: str, at: int) -> None:
        """Mark a failed attempt to be retried at ``at``."""
        self._update(job_id, {"outcome": "retrying", "error": error, "next_attempt_at": at})

    def restart(self, job_id: int, now: int, runner: str) -> None:
        """Start another attempt of a job."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    outcome="running",
                    started_at=now,
                    ended_at=None,
                    next_attempt_at=None,
                    runner=runner,
                    attempts=jobs.c.attempts + 1,
                )
            )

    def set_run(self, job_id: int, run_id: str) -> None:
        """Link the job to the paper run it drives."""
        self._update(job_id, {"run_id": run_id})

    def get(self, job_id: int) -> JobRow | None:
        """One job by id."""
        return self._first(sa.select(jobs).where(jobs.c.id == job_id))

    def in_state(self, robot: str, *outcomes: str) -> list[JobRow]:
        """The robot's jobs whose outcome is one of ``outcomes``, oldest first."""
        query = sa.select(jobs).where(jobs.c.robot == robot, jobs.c.outcome.in_(outcomes)).order_by(jobs.c.id)
        return self._all(query)

    def newest(self, robot: str, job: str) -> JobRow | None:
        """The robot's latest job of this kind."""
        return self._first(sa.select(jobs).where(jobs.c.robot == robot, jobs.c.job == job).order_by(jobs.c.id.desc()))

    def between(self, robot: str, job: str, start: int, end: int) -> list[JobRow]:
        """The robot's jobs of this kind planned (or, if asked for by a person, started) in ``[start, end)``."""
        when = sa.func.coalesce(jobs.c.planned_at, jobs.c.started_at)
        query = (
            sa.select(jobs)
            .where(jobs.c.robot == robot, jobs.c.job == job, when >= start, when < end)
            .order_by(jobs.c.id)
        )
        return self._all(query)

    def any_for(self, robot: str) -> bool:
        """Whether a server ever recorded a job of this robot."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(jobs.c.id).where(jobs.c.robot == robot).limit(1)).first() is not None

    def history(self, robot: str | None = None, limit: int = 50) -> list[JobRow]:
        """The newest jobs first."""
        query = sa.select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        if robot is not None:
            query = query.where(jobs.c.robot == robot)
        return self._all(query)

    def _update(self, job_id: int, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))

    def _all(self, query: sa.Select[Any]) -> list[JobRow]:
        with self.engine.connect() as conn:
            return [JobRow(**row._mapping) for row in conn.execute(query)]

    def _first(self, query: sa.Select[Any]) -> JobRow | None:
        rows = self._all(query.limit(1))
        return rows[0] if rows else None


class RequestStore:
    """Reads and writes ``requests``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, robot: str, action: str, job: str | None, requested_by: str, now: int) -> int:
        """Record a request; returns its id."""
        values = {"robot": robot, "action": action, "job": job, "requested_by": requested_by, "requested_at": now}
        with self.engine.begin() as conn:
            return int(conn.execute(sa.insert(requests).values(**values).returning(requests.c.id)).scalar_one())

    def pending(self, robot: str) -> list[RequestRow]:
        """The robot's unhandled requests, oldest first."""
        query = (
            sa.select(requests)
            .where(requests.c.robot == robot, requests.c.handled_at.is_(None))
            .order_by(requests.c.id)
        )
        with self.engine.connect() as conn:
            return [RequestRow(**row._mapping) for row in conn.execute(query)]

    def handle(self, request_id: int, handled_by: str, outcome: str, now: int) -> bool:
        """Mark a pending request handled; False if someone else already had."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(requests)
                .where(requests.c.id == request_id, requests.c.handled_at.is_(None))
                .values(handled_at=now, handled_by=handled_by, outcome=outcome)
            )
        return done.rowcount == 1

    def get(self, request_id: int) -> RequestRow | None:
        """One request by id."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(requests).where(requests.c.id == request_id)).first()
        return None if row is None else RequestRow(**row._mapping)
