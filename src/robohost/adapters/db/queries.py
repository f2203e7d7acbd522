"""``ReadModel``: what the CLI, the web app and reports read from the trading database.

Returns plain values (the engine's record dataclasses and the small types here), never ORM objects
or SQLAlchemy rows. Lists come oldest first; a ``limit`` keeps the newest rows. Without a ``run_id``,
per-run reads use the robot's latest run. Must not import ``robohost.config``, ``robohost.cli`` or
``robohost.services``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa

from robohost.adapters.db import tables as t
from robohost.adapters.db.journal import write_robot_state
from robohost.engine.records import (
    EventRecord,
    FillRecord,
    OrderRecord,
    PositionRecord,
    RejectedDataRecord,
    RiskEventRecord,
)

R = TypeVar("R")
COUNTED_TABLES = (
    t.orders,
    t.fills,
    t.positions,
    t.equity_points,
    t.risk_events,
    t.rejected_data,
    t.journal,
)


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as stored, with its progress and (once finished) its summary."""

    id: str
    robot: str
    mode: str
    status: str
    started_at: int
    ended_at: int | None
    seed: int
    starting_cash: Decimal
    strategy: str
    feed_signature: str
    config: dict[str, Any]
    last_seq: int
    last_ts: int | None
    events_processed: int
    rejected_count: int
    summary: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RobotState:
    """A robot's status (idle, running or halted), why, and its latest run."""

    robot: str
    status: str
    reason: str | None
    run_id: str | None
    updated_at: int


class EquityPoint(NamedTuple):
    """Equity and cash at one time (ns since the epoch, UTC)."""

    ts: int
    equity: float
    cash: float


class ReadModel:
    """Read-only queries over the trading database, plus the robot kill-switch state."""

    def __init__(self, engine: sa.Engine) -> None:
        """Read through ``engine``, whose database must be migrated."""
        self._engine = engine

    @property
    def engine(self) -> sa.Engine:
        """The engine it reads through (for the other stores of the same database)."""
        return self._engine

    def runs(self, robot: str | None = None, limit: int = 20) -> list[RunRow]:
        """Return the newest runs first, of one robot or of all."""
        query = sa.select(t.runs).order_by(t.runs.c.started_at.desc(), t.runs.c.id.desc()).limit(limit)
        if robot is not None:
            query = query.where(t.runs.c.robot == robot)
        return self._all(query, _run_row)

    def run(self, run_id: str) -> RunRow | None:
        """Return one run, or None."""
        return self._first(sa.select(t.runs).where(t.runs.c.id == run_id), _run_row)

    def latest_run(self, robot: str) -> RunRow | None:
        """Return the robot's most recently started run, or None."""
        runs = self.runs(robot, limit=1)
        return runs[0] if runs else None

    def unfinished_run(self, robot: str) -> RunRow | None:
        """Return the robot's newest run still marked running (to resume or abandon), or None."""
        c = t.runs.c
        query = (
            sa.select(t.runs).where(c.robot == robot, c.status == "running").order_by(c.started_at.desc(), c.id.desc())
        )
        return self._first(query, _run_row)

    def orders(self, robot: str, run_id: str | None = None, limit: int | None = None) -> list[OrderRecord]:
        """Return a run's orders in creation order (the latest ``limit`` if given)."""
        c = t.orders.c
        return self._run_rows(t.orders, robot, run_id, limit, (c.created_ts, c.id), _record(OrderRecord))

    def fills(self, robot: str, run_id: str | None = None, limit: int | None = None) -> list[FillRecord]:
        """Return a run's fills in time order (the latest ``limit`` if given)."""
        c = t.fills.c
        return self._run_rows(t.fills, robot, run_id, limit, (c.ts, c.id), _record(FillRecord))

    def equity(self, robot: str, run_id: str | None = None, limit: int | None = None) -> list[EquityPoint]:
        """Return a run's equity curve in time order (the latest ``limit`` points if given)."""
        c = t.equity_points.c
        run = run_id if run_id is not None else self._latest_run_id(robot)
        if run is None:
            return []
        # equity_points has no robot column: check the run belongs to the robot through runs.
        query = (
            sa.select(c.ts, c.equity, c.cash)
            .join(t.runs, t.runs.c.id == c.run_id)
            .where(c.run_id == run, t.runs.c.robot == robot)
        )
        return self._newest(query, (c.ts,), limit, lambda r: EquityPoint(r.ts, r.equity, r.cash))

    def positions(self, run_id: str) -> list[PositionRecord]:
        """Return a run's positions by symbol."""
        c = t.positions.c
        query = sa.select(t.positions).where(c.run_id == run_id).order_by(c.symbol)
        return self._all(query, _record(PositionRecord))

    def risk_events(self, run_id: str) -> list[RiskEventRecord]:
        """Return a run's risk rejections, halts and resumes in the order recorded."""
        c = t.risk_events.c
        columns = [col for col in t.risk_events.c if col.name != "id"]
        query = sa.select(*columns).where(c.run_id == run_id).order_by(c.id)
        return self._all(query, _record(RiskEventRecord))

    def rejected_data(self, run_id: str) -> list[RejectedDataRecord]:
        """Return a run's rejected market-data rows in the order recorded (NaN and inf restored)."""
        c = t.rejected_data.c
        columns = [col for col in t.rejected_data.c if col.name != "id"]
        query = sa.select(*columns).where(c.run_id == run_id).order_by(c.id)
        return self._all(query, _rejected)

    def journal(self, run_id: str, types: Collection[str] | None = None) -> list[EventRecord]:
        """Return a run's journal in the order written, optionally only events of the given types."""
        c = t.journal.c
        query = sa.select(c.run_id, c.seq, c.ts, c.type, c.data).where(c.run_id == run_id).order_by(c.id)
        if types is not None:
            query = query.where(c.type.in_(list(types)))
        return self._all(query, _record(EventRecord))

    def robot_state(self, robot: str) -> RobotState | None:
        """Return the robot's recorded state, or None if it never ran."""
        query = sa.select(t.robot_state).where(t.robot_state.c.robot == robot)
        return self._first(query, _record(RobotState))

    def set_robot_state(self, robot: str, status: str, reason: str | None, ts: int) -> None:
        """Set the robot's status (e.g. back to idle when a person resumes a halted robot)."""
        if status not in t.ROBOT_STATUSES:
            raise ValueError(f"robot status must be one of {t.ROBOT_STATUSES}, not {status!r}")
        with self._engine.begin() as conn:
            write_robot_state(conn, robot, status, reason, ts)

    def counts(self, run_id: str) -> dict[str, int]:
        """Return the number of rows each per-run table holds for the run, by table name."""
        counts = [
            sa.select(sa.func.count()).select_from(table).where(table.c.run_id == run_id).scalar_subquery()
            for table in COUNTED_TABLES
        ]
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(*counts)).one()
        return {table.name: int(n) for table, n in zip(COUNTED_TABLES, row, strict=True)}

    def _latest_run_id(self, robot: str) -> str | None:
        c = t.runs.c
        query = sa.select(c.id).where(c.robot == robot).order_by(c.started_at.desc(), c.id.desc()).limit(1)
        with self._engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def _run_rows(
        self,
        table: sa.Table,
        robot: str,
        run_id: str | None,
        limit: int | None,
        order: Sequence[sa.ColumnElement[Any]],
        convert: Callable[[sa.Row[Any]], R],
    ) -> list[R]:
        run = run_id if run_id is not None else self._latest_run_id(robot)
        if run is None:
            return []
        query = sa.select(table).where(table.c.robot == robot, table.c.run_id == run)
        return self._newest(query, order, limit, convert)

    def _newest(
        self,
        query: sa.Select[Any],
        order: Sequence[sa.ColumnElement[Any]],
        limit: int | None,
        convert: Callable[[sa.Row[Any]], R],
    ) -> list[R]:
        if limit is None:
            return self._all(query.order_by(*order), convert)
        rows = self._all(query.order_by(*(col.desc() for col in order)).limit(limit), convert)
        rows.reverse()
        return rows

    def _all(self, query: sa.Select[Any], convert: Callable[[sa.Row[Any]], R]) -> list[R]:
        with self._engine.connect() as conn:
            return [convert(row) for row in conn.execute(query)]

    def _first(self, query: sa.Select[Any], convert: Callable[[sa.Row[Any]], R]) -> R | None:
        with self._engine.connect() as conn:
            row = conn.execute(query.limit(1)).first()
        return None if row is None else convert(row)


def _record(cls: Callable[..., R]) -> Callable[[sa.Row[Any]], R]:
    def convert(row: sa.Row[Any]) -> R:
        return cls(**row._mapping)

    return convert


_run_row = _record(RunRow)


def _rejected(row: sa.Row[Any]) -> RejectedDataRecord:
    values = tuple(float(v) for v in row._mapping["values"])
    return RejectedDataRecord(**(dict(row._mapping) | {"values": values}))
