"""The operations record of a report: runs, incidents (halts, feed trouble, errors), risk events, rejected data.

Built by one function, ``operations_record``, from the database. The server's figures (scheduled versus run
sessions, missed runs, uptime, backups) come from its job history; a robot never run by ``robohost serve``
shows "no scheduler history yet" / "no backup history yet". Nothing here invents a figure. Must not import
``robohost.cli`` or ``robohost.bootstrap``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from robohost.adapters.db.jobs import JobStore
from robohost.adapters.db.queries import ReadModel, RunRow

RUNS_LOOKED_AT = 10_000
ROUTINE_FEED_EVENTS = frozenset({"feed_connected", "feed_subscribed", "feed_gap_filled"})
"""Journal lines of a live feed that are business as usual, not incidents."""
OUTAGE_EVENTS = frozenset({"feed_degraded", "feed_disconnected"})
ERROR_EVENTS = frozenset({"strategy_error"})


@dataclass(frozen=True, slots=True)
class RunEntry:
    """One run as the operations record lists it (times in ns since the epoch, UTC, wall clock)."""

    id: str
    mode: str
    status: str
    started_at: int
    ended_at: int | None
    events: int
    halt_reason: str | None


@dataclass(frozen=True, slots=True)
class Incident:
    """A halt, a feed problem or an error, with its time (ns) and what the journal said."""

    ts: int
    kind: str  # "halt", "feed" or "error"
    run_id: str
    what: str  # the journal type, or the run status
    detail: str


@dataclass(frozen=True, slots=True)
class OperationsRecord:
    """What happened to the robot in the period, as the database records it."""

    runs: tuple[RunEntry, ...]
    incidents: tuple[Incident, ...]
    risk_rejections: int
    risk_halts: int
    rejected_data: int
    robot_status: str | None  # the robot's state now ("idle", "halted", …), None if it never ran
    robot_reason: str | None
    # Filled in by the scheduler and the backups once they exist; None means "no history yet".
    scheduled_sessions: int | None = None
    sessions_run: int | None = None
    missed_sessions: int | None = None
    uptime: float | None = None  # fraction of scheduled time the robot was running
    backups: int | None = None
    last_backup_at: int | None = None

    @property
    def halts(self) -> int:
        """Incidents that halted the robot."""
        return sum(1 for i in self.incidents if i.kind == "halt")

    @property
    def feed_outages(self) -> int:
        """Feed degradations and disconnections."""
        return sum(1 for i in self.incidents if i.what in OUTAGE_EVENTS)

    @property
    def errors(self) -> int:
        """Strategy errors and failed runs."""
        return sum(1 for i in self.incidents if i.kind == "error")


def _overlaps(run: RunRow, start: int, end: int) -> bool:
    ended = run.ended_at if run.ended_at is not None else end  # not ended: still going (or interrupted)
    return run.started_at < end and ended >= start


def operations_record(
    read: ReadModel, robot: str, start: int, end: int, include: Collection[str] = ()
) -> OperationsRecord:
    """The operations record of ``robot`` between ``start`` and ``end`` (ns, end exclusive).

    Lists the runs whose wall-clock time overlaps the period, plus the runs named in ``include`` whatever
    their times (a replay's own run: its market times are historical). Journal lines, risk events and
    rejected data of those runs count when their time falls in the period.
    """
    runs = [r for r in read.runs(robot, limit=RUNS_LOOKED_AT) if r.id in include or _overlaps(r, start, end)]
    runs.sort(key=lambda r: (r.started_at, r.id))
    incidents: list[Incident] = []
    rejections = halts = rejected = 0
    for run in runs:
        for line in read.journal(run.id):
            if not start <= line.ts < end:
                continue
            if line.type == "halted":
                incidents.append(Incident(line.ts, "halt", run.id, line.type, str(line.data.get("reason", ""))))
            elif line.type in ERROR_EVENTS:
                detail = f"{line.data.get('hook', '')}: {line.data.get('error', '')}"
                incidents.append(Incident(line.ts, "error", run.id, line.type, detail))
            elif line.type.startswith("feed_") and line.type not in ROUTINE_FEED_EVENTS:
                detail = ", ".join(f"{k}={v}" for k, v in sorted(line.data.items()))
                incidents.append(Incident(line.ts, "feed", run.id, line.type, detail))
        if run.status == "failed":
            incidents.append(Incident(run.ended_at or run.started_at, "error", run.id, "run failed", ""))
        for event in read.risk_events(run.id):
            if start <= event.ts < end:
                rejections += event.kind == "rejected"
                halts += event.kind == "halt"
        rejected += sum(1 for row in read.rejected_data(run.id) if start <= row.ts < end)
    state = read.robot_state(robot)
    return _with_jobs(
        JobStore(read.engine),
        robot,
        start,
        end,
        OperationsRecord(
            runs=tuple(
                RunEntry(
                    r.id,
                    r.mode,
                    r.status,
                    r.started_at,
                    r.ended_at,
                    r.events_processed,
                    (r.summary or {}).get("halt_reason"),
                )
                for r in runs
            ),
            incidents=tuple(sorted(incidents, key=lambda i: (i.ts, i.run_id))),
            risk_rejections=rejections,
            risk_halts=halts,
            rejected_data=rejected,
            robot_status=state.status if state else None,
            robot_reason=state.reason if state else None,
        ),
    )


def _with_jobs(jobs: JobStore, robot: str, start: int, end: int, record: OperationsRecord) -> OperationsRecord:
    """Add the server's job history: sessions scheduled, run and missed, uptime, backups made."""
    if not jobs.any_for(robot):
        return record  # never run by a server: "no scheduler history yet"
    sessions = [j for j in jobs.between(robot, "session", start, end) if j.trigger in ("schedule", "late")]
    ran = [j for j in sessions if j.outcome not in ("missed", "skipped")]
    planned_time = sum(j.until - j.planned_at for j in sessions if j.until is not None and j.planned_at is not None)
    running_time = sum(
        max(0, min(j.ended_at or end, j.until) - j.started_at)
        for j in ran
        if j.until is not None and j.started_at is not None
    )
    backups = [j for j in jobs.between(robot, "backup", start, end) if j.outcome == "ok"]
    return replace(
        record,
        scheduled_sessions=len(sessions),
        sessions_run=len(ran),
        missed_sessions=sum(1 for j in sessions if j.outcome == "missed"),
        uptime=running_time / planned_time if planned_time else None,
        backups=len(backups) if backups else None,
        last_backup_at=max((j.ended_at or 0 for j in backups), default=None) if backups else None,
    )
