"""Reads the dashboard needs beyond ``ReadModel``: a sampled equity curve, filtered and limited orders and
fills (newest first), working orders, the newest risk events, rejected data, feed lines and requests.

Every list is bounded by a ``limit`` so that a page costs the same whether a run has ten rows or ten
million. Returns the engine's records and plain values. Must not import ``robohost.config``,
``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from robohost.adapters.db import tables as t
from robohost.adapters.db.jobs import RequestRow
from robohost.adapters.db.queries import EquityPoint
from robohost.engine.records import EventRecord, FillRecord, OrderRecord, RejectedDataRecord, RiskEventRecord

R = TypeVar("R")
OPEN_STATUSES = t.OPEN_ORDER_STATUSES
"""Orders still working in the simulated market (``ix_orders_open`` indexes them)."""


class DashboardQueries:
    """Bounded reads for the dashboard and its API."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def equity_span(self, run_id: str) -> tuple[int, int] | None:
        """The times of the run's first and last equity points (two probes of the primary key: no scan)."""
        c = t.equity_points.c
        first = sa.select(c.ts).where(c.run_id == run_id).order_by(c.ts).limit(1)
        last = sa.select(c.ts).where(c.run_id == run_id).order_by(c.ts.desc()).limit(1)
        with self.engine.connect() as conn:
            low = conn.execute(first).scalar_one_or_none()
            high = conn.execute(last).scalar_one_or_none()
        return None if low is None or high is None else (int(low), int(high))

    def equity_last_in(self, run_id: str, windows: Sequence[tuple[int, int]]) -> list[EquityPoint | None]:
        """The last equity point of the run in each ``[start, end)`` window (None for an empty one): one probe of
        the primary key each, however many points the windows hold."""
        c = t.equity_points.c
        query = (
            sa.select(c.ts, c.equity, c.cash)
            .where(c.run_id == run_id, c.ts >= sa.bindparam("lo"), c.ts < sa.bindparam("hi"))
            .order_by(c.ts.desc())
            .limit(1)
        )
        found: list[EquityPoint | None] = []
        with self.engine.connect() as conn:
            for lo, hi in windows:
                row = conn.execute(query, {"lo": lo, "hi": hi}).first()
                found.append(None if row is None else EquityPoint(row.ts, row.equity, row.cash))
        return found

    def equity_count(self, run_id: str) -> int:
        """How many equity points the run has (a scan of its rows: call it rarely)."""
        c = t.equity_points.c
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(c.run_id == run_id)).scalar_one())

    def last_equity(self, run_id: str) -> EquityPoint | None:
        """The run's newest equity point."""
        c = t.equity_points.c
        query = sa.select(c.ts, c.equity, c.cash).where(c.run_id == run_id).order_by(c.ts.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else EquityPoint(row.ts, row.equity, row.cash)

    def equity_before(self, run_id: str, ts: int) -> EquityPoint | None:
        """The run's last equity point strictly before ``ts``."""
        c = t.equity_points.c
        query = sa.select(c.ts, c.equity, c.cash).where(c.run_id == run_id, c.ts < ts).order_by(c.ts.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else EquityPoint(row.ts, row.equity, row.cash)

    def orders(
        self,
        run_id: str,
        *,
        symbol: str | None = None,
        side: str | None = None,
        statuses: Sequence[str] = (),
        limit: int = 100,
    ) -> list[OrderRecord]:
        """The run's orders matching the filters, newest first (the caller checks whose run it is)."""
        c = t.orders.c
        query = sa.select(t.orders).where(c.run_id == run_id)
        query = _filtered(query, c.symbol, symbol, c.side, side)
        if statuses:  # rendered as literals, so that the partial index of working orders applies
            query = query.where(
                c.status.in_(sa.bindparam("statuses", list(statuses), expanding=True, literal_execute=True))
            )
        query = query.order_by(c.created_ts.desc(), c.id.desc()).limit(limit)
        return self._all(query, lambda r: OrderRecord(**r._mapping))

    def fills(
        self, run_id: str, *, symbol: str | None = None, side: str | None = None, limit: int = 100
    ) -> list[FillRecord]:
        """The run's fills matching the filters, newest first (the caller checks whose run it is)."""
        c = t.fills.c
        query = _filtered(sa.select(t.fills).where(c.run_id == run_id), c.symbol, symbol, c.side, side)
        return self._all(query.order_by(c.ts.desc(), c.id.desc()).limit(limit), lambda r: FillRecord(**r._mapping))

    def counts(self, run_id: str) -> dict[str, int]:
        """Rows of the run in the tables the dashboard shows (scans: call it rarely)."""
        tables = (t.orders, t.fills, t.risk_events, t.rejected_data)
        counts = [
            sa.select(sa.func.count()).select_from(table).where(table.c.run_id == run_id).scalar_subquery()
            for table in tables
        ]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*counts)).one()
        return {table.name: int(n) for table, n in zip(tables, row, strict=True)}

    def symbols(self, run_id: str) -> list[str]:
        """The symbols the run placed orders in."""
        c = t.orders.c
        with self.engine.connect() as conn:
            return list(
                conn.execute(sa.select(c.symbol).where(c.run_id == run_id).distinct().order_by(c.symbol)).scalars()
            )

    def risk_events(self, run_id: str, limit: int = 100) -> list[RiskEventRecord]:
        """The run's newest risk rejections, halts and resumes."""
        c = t.risk_events.c
        columns = [col for col in t.risk_events.c if col.name != "id"]
        query = sa.select(*columns).where(c.run_id == run_id).order_by(c.id.desc()).limit(limit)
        return self._all(query, lambda r: RiskEventRecord(**r._mapping))

    def rejected_data(self, run_id: str, limit: int = 100) -> list[RejectedDataRecord]:
        """The run's newest rows of refused market data (values as floats, NaN and inf restored)."""
        c = t.rejected_data.c
        columns = [col for col in t.rejected_data.c if col.name != "id"]
        query = sa.select(*columns).where(c.run_id == run_id).order_by(c.id.desc()).limit(limit)
        return self._all(
            query,
            lambda r: RejectedDataRecord(**(dict(r._mapping) | {"values": tuple(float(v) for v in r.values)})),
        )

    def feed_events(self, run_id: str, limit: int = 20) -> list[EventRecord]:
        """The run's newest ``feed_*`` journal lines (connections, outages, gaps, clock skew)."""
        c = t.journal.c
        query = (
            sa.select(c.run_id, c.seq, c.ts, c.type, c.data)
            .where(c.run_id == run_id, c.type.like("feed\\_%", escape="\\"))
            .order_by(c.id.desc())
            .limit(limit)
        )
        return self._all(query, lambda r: EventRecord(**r._mapping))

    def requests(self, robot: str, limit: int = 20) -> list[RequestRow]:
        """The robot's newest requests (``robohost trigger``, the dashboard) and their answers."""
        c = t.requests.c
        query = sa.select(t.requests).where(c.robot == robot).order_by(c.id.desc()).limit(limit)
        return self._all(query, lambda r: RequestRow(**r._mapping))

    def _all(self, query: sa.Select[Any], convert: Callable[[sa.Row[Any]], R]) -> list[R]:
        with self.engine.connect() as conn:
            return [convert(row) for row in conn.execute(query)]


def _filtered(
    query: sa.Select[Any],
    symbol_col: sa.ColumnElement[Any],
    symbol: str | None,
    side_col: sa.ColumnElement[Any],
    side: str | None,
) -> sa.Select[Any]:
    if symbol:
        query = query.where(symbol_col == symbol)
    if side:
        query = query.where(side_col == side)
    return query
