"""One robot's runner inside ``robohost serve``: lease, schedule, sessions, chores, requests, retries.

The server calls ``tick(now)`` from its main loop; the runner never sleeps. Sessions and chores run on
worker threads; their rows in ``jobs`` are written here, on the loop's thread. The policy, in order:

1. **Lease.** Without the robot's lease the runner is a standby and does nothing else; it tries again
   every tick, so it takes over within one tick of the holder's death (PostgreSQL notices a vanished
   host within its keepalive time). A runner that loses its lease stops its session at once.
2. **Recovery on taking the lease.** Jobs the previous holder left ``running`` are marked ``interrupted``;
   its latest session, if its window is still open, is started again and resumes the paper run from
   its last commit. Jobs planned while nobody held the lease are **late** if due no longer ago than the
   schedule's ``grace`` (a session: while its window is open) and run now; older ones are recorded as
   **missed** and alerted.
3. **Schedule.** A planned job runs once: its row's unique key is claimed first. A session stops at its
   window's end.
4. **Requests** (``robohost trigger``, the dashboard): ``run`` (refused in ``auto`` mode, where only the
   schedule runs the robot), ``stop`` (any mode), ``job`` (a chore now).
5. **Retries.** A failed job is retried ``retries`` times, ``retry_delay`` apart (a session only while its
   window is open), then recorded ``failed`` and alerted. A halted robot is not retried: a person must
   resume it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from robohost.adapters.db.jobs import JobRow, JobStore, RequestRow, RequestStore
from robohost.adapters.db.lease import RobotLease
from robohost.errors import ConfigError, RobotHaltedError, StrategyError
from robohost.services.paper import PaperTrading, RunOutcome
from robohost.services.server.chores import Chore, UnavailableChore

Alert = Callable[[str, dict[str, Any]], None]
"""``alert(kind, details)``: tell the owner (the alerting issue wires it to e-mail and webhooks)."""
_NOT_RETRIED = (RobotHaltedError, ConfigError, StrategyError)
_FAR = datetime.max.replace(tzinfo=UTC)


class Planned(Protocol):
    """A job the schedule plans (see ``robohost.services.scheduling``)."""

    robot: str
    job: str
    at: datetime
    until: datetime | None
    key: str


class Plan(Protocol):
    """A robot's schedule."""

    def planned(self, start: datetime, end: datetime) -> list[Any]:
        """Jobs due in ``[start, end)``, in order."""
        ...

    def session_at(self, now: datetime) -> Any | None:
        """The session whose window holds ``now``."""
        ...


@dataclass(frozen=True, slots=True)
class RunnerPolicy:
    """How a runner treats people's requests, late jobs and failures."""

    mode: str = "both"
    grace: timedelta = timedelta(minutes=15)
    retries: int = 2
    retry_delay: timedelta = timedelta(minutes=1)


@dataclass(slots=True)
class _Active:
    """A job in progress on a worker thread."""

    row_id: int
    job: str
    until: datetime | None
    future: Future[Any]
    service: PaperTrading | None = None
    stop_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def ns(moment: datetime) -> int:
    """A datetime as ns since the epoch."""
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def from_ns(value: int) -> datetime:
    """ns since the epoch as a UTC datetime."""
    return datetime.fromtimestamp(value // 1_000_000_000, tz=UTC) + timedelta(
        microseconds=value % 1_000_000_000 // 1000
    )


class RobotRunner:
    """Runs one robot for the server; see the module's docstring for the policy."""

    def __init__(
        self,
        robot: str,
        plan: Plan,
        policy: RunnerPolicy,
        lease: RobotLease,
        jobs: JobStore,
        requests: RequestStore,
        make_paper: Callable[[Alert], PaperTrading],
        chores: Mapping[str, Chore | UnavailableChore],
        workers: ThreadPoolExecutor,
        log: logging.Logger,
        alert: Alert,
    ) -> None:
        self.robot = robot
        self.plan = plan
        self.policy = policy
        self.lease = lease
        self.jobs = jobs
        self.requests = requests
        self.make_paper = make_paper
        self.chores = chores
        self.workers = workers
        self.log = log
        self.alert = alert
        self.runner = lease.holder
        self.cursor: datetime | None = None
        self.session: _Active | None = None
        self.chores_running: dict[int, _Active] = {}
        self._standby_logged = False

    # -- the loop's entry points --------------------------------------------------------------------------------

    def tick(self, now: datetime) -> None:
        """Do whatever is due at ``now``."""
        if not self.lease.held:
            if not self.lease.try_acquire():
                if not self._standby_logged:
                    self.log.info("robot %s: standby (another process holds its lease)", self.robot)
                    self._standby_logged = True
                return
            self._standby_logged = False
            self._took_over(now)
        elif not self.lease.check():
            self._lost_lease()
            return
        self._reap(now)
        self._run_due(now)
        self._handle_requests(now)
        self._retry_due(now)
        if self.session is not None and self.session.until is not None and now >= self.session.until:
            self._stop_session("window ended")

    def next_wake(self, now: datetime) -> datetime:
        """When something is next due (a planned job, a session's end, a retry)."""
        if not self.lease.held:
            return now + timedelta(seconds=1)
        wake = _FAR
        horizon = now + timedelta(days=8)
        limit: datetime | None = getattr(self.plan, "plannable_until", None)  # some calendars end in a year or two
        upcoming = self.plan.planned(now + timedelta(microseconds=1), min(horizon, limit) if limit else horizon)
        if upcoming:
            wake = upcoming[0].at
        if self.session is not None and self.session.until is not None:
            wake = min(wake, self.session.until)
        for row in self.jobs.in_state(self.robot, "retrying"):
            if row.next_attempt_at is not None:
                wake = min(wake, from_ns(row.next_attempt_at))
        return max(wake, now)

    def busy(self) -> list[Future[Any]]:
        """The futures of the jobs in progress."""
        active = [a.future for a in self.chores_running.values()]
        return active + ([self.session.future] if self.session is not None else [])

    def shutdown(self, now: datetime, timeout_s: float) -> None:
        """Stop the session, wait for jobs in progress (bounded), record them, give the lease up."""
        if self.session is not None:
            self._stop_session("server stopping")
        for future in self.busy():
            try:
                future.exception(timeout=timeout_s)
            except TimeoutError:
                self.log.error("robot %s: a job did not stop within %.0f s", self.robot, timeout_s)
        self._reap(now, shutting_down=True)
        for active in [*self.chores_running.values(), *([self.session] if self.session else [])]:
            self.jobs.finish(active.row_id, "interrupted", ns(now), "the server stopped before the job ended")
        self.lease.release()

    def describe(self) -> str:
        """One line for ``systemctl status``."""
        if not self.lease.held:
            return f"{self.robot}: standby"
        if self.session is not None:
            until = f" until {self.session.until:%Y-%m-%d %H:%M}Z" if self.session.until else ""
            return f"{self.robot}: session running{until}"
        return f"{self.robot}: waiting"

    # -- taking and losing the lease --------------------------------------------------------------------------

    def _took_over(self, now: datetime) -> None:
        previous = self.lease.previous
        if previous is not None and previous.released_at is None:
            self.log.warning(
                "robot %s: took over from %r, which stopped without releasing its lease (last seen %s)",
                self.robot,
                previous.holder,
                from_ns(previous.heartbeat_at).isoformat(),
            )
        resumable = self._recover_jobs(now)
        since = from_ns(previous.heartbeat_at) if previous is not None else now
        for planned in self.plan.planned(since, now + timedelta(microseconds=1)):
            self._late_or_missed(planned, now)
        current = self.plan.session_at(now)
        if current is not None and self.policy.mode != "manual":
            self._claim_and_start(current, "late", now)
        if resumable is not None and self.session is None:
            self.jobs.restart(resumable.id, ns(now), self.runner)
            until = from_ns(resumable.until) if resumable.until is not None else None
            self.log.warning("robot %s: resuming session job %d after an interruption", self.robot, resumable.id)
            self._start_session(resumable.id, until)
        self.cursor = now + timedelta(microseconds=1)

    def _recover_jobs(self, now: datetime) -> JobRow | None:
        """Mark jobs left running as interrupted; return the newest session if it may resume."""
        for row in self.jobs.in_state(self.robot, "running"):
            self.jobs.finish(row.id, "interrupted", ns(now), f"its runner ({row.runner}) stopped before it ended")
            self.log.warning("robot %s: job %d (%s) was interrupted", self.robot, row.id, row.job)
        newest = self.jobs.newest(self.robot, "session")
        if newest is None or newest.outcome != "interrupted":
            return None
        return newest if newest.until is None or newest.until > ns(now) else None

    def _late_or_missed(self, planned: Planned, now: datetime) -> None:
        if planned.job == "session":
            if self.policy.mode == "manual":
                return
            if planned.until is None or planned.until > now:
                self._claim_and_start(planned, "late", now)
                return
        elif now - planned.at <= self.policy.grace:
            self._claim_and_start(planned, "late", now)
            return
        row = self.jobs.claim(
            robot=self.robot,
            job=planned.job,
            key=planned.key,
            trigger="schedule",
            planned_at=ns(planned.at),
            until=ns(planned.until) if planned.until else None,
            now=ns(now),
            runner=self.runner,
            outcome="missed",
            error="nobody ran the robot at the time (server down)",
        )
        if row is not None:
            self.log.error("robot %s: %s planned at %s was missed", self.robot, planned.job, planned.at.isoformat())
            self.alert("job_missed", {"robot": self.robot, "job": planned.job, "planned_at": planned.at.isoformat()})

    def _lost_lease(self) -> None:
        self.log.error("robot %s: lost its lease; stopping its work at once", self.robot)
        self.alert("lease_lost", {"robot": self.robot})
        if self.session is not None:
            self._stop_session("lease lost")

    # -- planned jobs ------------------------------------------------------------------------------------------

    def _run_due(self, now: datetime) -> None:
        start = self.cursor or now
        end = now + timedelta(microseconds=1)
        if start < end:
            for planned in self.plan.planned(start, end):
                if planned.job == "session" and self.policy.mode == "manual":
                    continue
                self._claim_and_start(planned, "schedule", now)
        self.cursor = max(end, start)

    def _claim_and_start(self, planned: Planned, trigger: str, now: datetime) -> None:
        if planned.job == "session" and self.session is not None:
            return  # a session is already going (e.g. a person started it): this one is covered
        row_id = self.jobs.claim(
            robot=self.robot,
            job=planned.job,
            key=planned.key,
            trigger=trigger,
            planned_at=ns(planned.at),
            until=ns(planned.until) if planned.until else None,
            now=ns(now),
            runner=self.runner,
        )
        if row_id is None:
            return  # already done (or being done) by this or an earlier runner
        if trigger == "late":
            self.log.warning("robot %s: %s planned at %s runs late", self.robot, planned.job, planned.at.isoformat())
        if planned.job == "session":
            self._start_session(row_id, planned.until)
        else:
            self._start_chore(row_id, planned.job, now)

    # -- sessions and chores on worker threads -------------------------------------------------------------------

    def _start_session(self, row_id: int, until: datetime | None) -> None:
        service = self.make_paper(self.alert)
        future = self.workers.submit(service.run, "auto")
        self.session = _Active(row_id, "session", until, future, service)
        self.log.info("robot %s: session started (job %d)", self.robot, row_id)

    def _stop_session(self, reason: str) -> None:
        if self.session is not None and self.session.stop_reason is None:
            self.session.stop_reason = reason
            assert self.session.service is not None
            self.session.service.stop()
            self.log.info("robot %s: stopping its session (%s)", self.robot, reason)

    def _start_chore(self, row_id: int, name: str, now: datetime) -> None:
        chore = self.chores.get(name)
        if chore is None or isinstance(chore, UnavailableChore):
            why = chore.reason if isinstance(chore, UnavailableChore) else f"no chore named {name!r}"
            self.jobs.finish(row_id, "skipped", ns(now), why)
            self.log.warning("robot %s: %s skipped: %s", self.robot, name, why)
            return
        self.chores_running[row_id] = _Active(row_id, name, None, self.workers.submit(chore, self.robot))

    def _reap(self, now: datetime, shutting_down: bool = False) -> None:
        """Record the jobs that have ended."""
        session = self.session
        if session is not None and session.future.done():
            self.session = None
            error = session.future.exception()
            if error is None:
                outcome: RunOutcome = session.future.result()
                self._session_ended(session, outcome, now)
            else:
                self._failed(session, error, now, retry=not shutting_down)
        for row_id, active in list(self.chores_running.items()):
            if active.future.done():
                del self.chores_running[row_id]
                error = active.future.exception()
                if error is None:
                    self.jobs.finish(row_id, "ok", ns(now), str(active.future.result())[:2000])
                else:
                    self._failed(active, error, now, retry=not shutting_down)

    def _session_ended(self, session: _Active, outcome: RunOutcome, now: datetime) -> None:
        if outcome.status == "halted":
            reason = outcome.result.halt_reason or "halted"
            self.jobs.finish(session.row_id, "failed", ns(now), f"robot halted: {reason}", outcome.run_id)
            self.alert("robot_halted", {"robot": self.robot, "reason": reason, "run_id": outcome.run_id})
            return
        stopped_early = outcome.status == "stopped" and session.stop_reason not in (None, "window ended")
        result = "interrupted" if session.stop_reason == "server stopping" else "stopped" if stopped_early else "ok"
        note = f"run {outcome.run_id} {outcome.status}" + (f" ({session.stop_reason})" if session.stop_reason else "")
        self.jobs.finish(session.row_id, result, ns(now), None if result == "ok" else note, outcome.run_id)
        self.log.info("robot %s: session job %d ended: %s", self.robot, session.row_id, note)

    def _failed(self, active: _Active, error: BaseException, now: datetime, retry: bool) -> None:
        message = f"{type(error).__name__}: {error}"[:2000]
        row = self.jobs.get(active.row_id)
        attempts = row.attempts if row is not None else 1
        when = now + self.policy.retry_delay
        window_open = active.until is None or when < active.until
        if retry and attempts <= self.policy.retries and window_open and not isinstance(error, _NOT_RETRIED):
            self.jobs.retry_later(active.row_id, message, ns(when))
            self.log.warning("robot %s: %s failed (%s); retry at %s", self.robot, active.job, message, when.isoformat())
            return
        self.jobs.finish(active.row_id, "failed", ns(now), message)
        self.log.error("robot %s: %s failed: %s", self.robot, active.job, message)
        self.alert("job_failed", {"robot": self.robot, "job": active.job, "error": message, "attempts": attempts})

    def _retry_due(self, now: datetime) -> None:
        for row in self.jobs.in_state(self.robot, "retrying"):
            if row.next_attempt_at is None or row.next_attempt_at > ns(now):
                continue
            if row.job == "session":
                if self.session is not None or (self.policy.mode == "manual" and row.trigger != "manual"):
                    continue
                self.jobs.restart(row.id, ns(now), self.runner)
                self._start_session(row.id, from_ns(row.until) if row.until is not None else None)
            else:
                self.jobs.restart(row.id, ns(now), self.runner)
                self._start_chore(row.id, row.job, now)

    # -- people's requests -------------------------------------------------------------------------------------

    def _handle_requests(self, now: datetime) -> None:
        for request in self.requests.pending(self.robot):
            outcome = self._answer(request, now)
            self.requests.handle(request.id, self.runner, outcome, ns(now))
            self.log.info("robot %s: request %d (%s) by %s: %s", self.robot, request.id, request.action,
                          request.requested_by, outcome)  # fmt: skip

    def _answer(self, request: RequestRow, now: datetime) -> str:
        key = f"{self.robot}:request:{request.id}"
        if request.action == "stop":
            if self.session is None:
                return "not running"
            self._stop_session(f"stop requested by {request.requested_by}")
            return f"stopping session job {self.session.row_id}"
        if request.action == "run":
            if self.policy.mode == "auto":
                return "refused: the robot is in auto mode (it runs on its schedule only)"
            if self.session is not None:
                return f"already running (job {self.session.row_id})"
            row_id = self.jobs.claim(
                robot=self.robot, job="session", key=key, trigger="manual",
                planned_at=None, until=None, now=ns(now), runner=self.runner,
            )  # fmt: skip
            if row_id is None:
                return "already handled"
            self._start_session(row_id, None)
            return f"started session job {row_id}"
        name = request.job or ""
        if name not in self.chores:
            return f"refused: no job named {name!r} (jobs: {', '.join(sorted(self.chores))})"
        row_id = self.jobs.claim(
            robot=self.robot, job=name, key=key, trigger="manual",
            planned_at=None, until=None, now=ns(now), runner=self.runner,
        )  # fmt: skip
        if row_id is None:
            return "already handled"
        self._start_chore(row_id, name, now)
        return f"started {name} job {row_id}"


def settle(runners: list[RobotRunner], timeout_s: float) -> None:
    """Wait (bounded) until every runner's jobs in progress have ended: simulated time only moves then."""
    for runner in runners:
        for future in runner.busy():
            future.exception(timeout=timeout_s)  # raises TimeoutError when a job outlives the bound
