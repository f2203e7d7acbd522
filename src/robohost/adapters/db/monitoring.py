"""What the health checks and metrics read from the trading database: its size and volume, failed jobs,
the last good backup, the live runs' latest events.

Must not import ``robohost.config``, ``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from robohost.adapters.db.tables import backups, equity_points, fills, jobs, runs

_LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True, slots=True)
class FailedJob:
    """A job that ended ``failed``."""

    robot: str
    job: str
    ended_at: int
    error: str | None


@dataclass(frozen=True, slots=True)
class LiveRun:
    """A live run still running, with the time of the last event it committed."""

    robot: str
    run_id: str
    last_ts: int | None


def _sqlite_file(engine: sa.Engine) -> Path | None:
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    return Path(database) if database and database != ":memory:" else None


def database_size(engine: sa.Engine) -> int | None:
    """Bytes the database takes: the SQLite file with its WAL, or PostgreSQL's ``pg_database_size``."""
    file = _sqlite_file(engine)
    if file is not None:
        return sum(p.stat().st_size for p in (file, Path(f"{file}-wal"), Path(f"{file}-shm")) if p.exists())
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())
    return None


def database_volume(engine: sa.Engine) -> Path | None:
    """A folder on the database's file system, when it is on this machine (None for a remote server)."""
    file = _sqlite_file(engine)
    if file is not None:
        return file.parent
    if engine.dialect.name == "postgresql" and engine.url.host in _LOCAL_HOSTS:
        try:
            with engine.connect() as conn:
                folder = Path(str(conn.exec_driver_sql("SHOW data_directory").scalar_one()))
        except sa.exc.DBAPIError:  # needs superuser or pg_read_all_settings
            return None
        return folder if folder.exists() else None
    return None


def ping(engine: sa.Engine) -> None:
    """Raise unless the database answers."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def failed_jobs_since(engine: sa.Engine, since: int, exclude: tuple[str, ...] = ()) -> list[FailedJob]:
    """Jobs that ended ``failed`` at or after ``since`` (ns), newest first."""
    c = jobs.c
    query = (
        sa.select(c.robot, c.job, c.ended_at, c.error)
        .where(c.outcome == "failed", c.ended_at >= since)
        .order_by(c.ended_at.desc())
    )
    if exclude:
        query = query.where(c.job.not_in(exclude))
    with engine.connect() as conn:
        return [FailedJob(r.robot, r.job, int(r.ended_at), r.error) for r in conn.execute(query)]


def last_good_backup(engine: sa.Engine) -> int | None:
    """When the newest backup that ended ``ok`` ended (ns), or None."""
    with engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(backups.c.ended_at)).where(backups.c.outcome == "ok")).scalar()
    return int(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class DayFigures:
    """A run's day: equity before it and at its end, its fills, their realised P&L and fees."""

    run_id: str
    starting_cash: float
    equity_before: float | None
    equity_end: float | None
    fills: int
    realized: float
    fees: float


def day_figures(engine: sa.Engine, robot: str, start: int, end: int) -> DayFigures | None:
    """The robot's latest run between ``start`` and ``end`` (ns); None when it has no run."""
    r, e, f = runs.c, equity_points.c, fills.c
    with engine.connect() as conn:
        run = conn.execute(
            sa.select(r.id, r.starting_cash).where(r.robot == robot).order_by(r.started_at.desc()).limit(1)
        ).first()
        if run is None:
            return None
        before = conn.execute(
            sa.select(e.equity).where(e.run_id == run.id, e.ts < start).order_by(e.ts.desc()).limit(1)
        ).scalar()
        last = conn.execute(
            sa.select(e.equity).where(e.run_id == run.id, e.ts < end).order_by(e.ts.desc()).limit(1)
        ).scalar()
        day = conn.execute(sa.select(f.realized_pnl, f.fee).where(f.run_id == run.id, f.ts >= start, f.ts < end)).all()
    return DayFigures(
        run.id,
        float(run.starting_cash),
        float(before) if before is not None else None,
        float(last) if last is not None else None,
        len(day),
        sum(float(row.realized_pnl) for row in day),
        sum(float(row.fee) for row in day),
    )


def live_runs(engine: sa.Engine) -> list[LiveRun]:
    """The live runs that are running, with their last committed event time."""
    c = runs.c
    query = sa.select(c.robot, c.id, c.last_ts).where(c.mode == "live", c.status == "running")
    with engine.connect() as conn:
        return [LiveRun(r.robot, r.id, int(r.last_ts) if r.last_ts is not None else None) for r in conn.execute(query)]
