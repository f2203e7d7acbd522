"""Gather what a P&L report needs from the read model: one run's daily equity, fills, trades and operations.

Days are calendar days in the robot's time zone. An equity point belongs to the day of the instant just
before it, so a point stamped exactly at midnight (the close of a daily bar) closes the previous day. The
period runs from ``start`` (inclusive) to ``end`` (exclusive), like ``robohost run --from/--to``. Must not
import ``robohost.cli`` or ``robohost.bootstrap``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from robohost.adapters.db.queries import EquityPoint, ReadModel, RunRow
from robohost.engine.records import FillRecord
from robohost.errors import StateError
from robohost.services.reports.metrics import CALENDAR_DAYS, TRADING_DAYS
from robohost.services.reports.operations import OperationsRecord, operations_record
from robohost.services.reports.trades import Trade, round_trips, slippage_paid

SEVEN_DAY_SOURCES = frozenset({"ccxt"})
"""Data sources of markets open every day: their returns are annualised with 365 periods a year."""


@dataclass(frozen=True, slots=True)
class Slippage:
    """The slippage paid in the period, and how it was worked out."""

    total: float
    by_symbol: dict[str, float]
    method: str


@dataclass(frozen=True)
class ReportData:
    """Everything one P&L report shows, read from the database (not yet computed into metrics)."""

    robot: str
    run: RunRow
    timezone: str
    periods_per_year: int
    first_day: date
    last_day: date
    start_ns: int  # the period in ns: start_ns <= ts < end_ns
    end_ns: int
    equity: pd.Series  # E0 (the equity before the period), then the equity at each day's close
    in_market: np.ndarray  # per day of the period: a position was open at its close
    fills: tuple[FillRecord, ...]  # the fills of the period
    trades: tuple[Trade, ...]  # trades closed in the period, then those open at its end
    open_positions: dict[str, float]  # signed quantity held at the end of the period, by symbol (non-zero only)
    fees: Decimal
    slippage: Slippage
    operations: OperationsRecord

    @property
    def returns_days(self) -> int:
        """Number of daily returns."""
        return len(self.equity) - 1

    @property
    def traded_notional(self) -> float:
        """Sum of |quantity × price| of the period's fills."""
        return float(sum(abs(f.qty * f.price) for f in self.fills))


def local_days(ts: np.ndarray | Sequence[int], timezone: str) -> pd.DatetimeIndex:
    """The calendar day (a naive midnight) in ``timezone`` of each time ``ts`` (ns), taken 1 ns earlier."""
    stamps = pd.to_datetime(np.asarray(ts, dtype=np.int64) - 1, unit="ns", utc=True)
    return pd.DatetimeIndex(stamps.tz_convert(timezone).tz_localize(None).normalize())


def day_start_ns(day: date, timezone: str) -> int:
    """The first instant (ns) belonging to ``day`` in ``timezone``: 1 ns after its midnight."""
    return int(pd.Timestamp(day).tz_localize(timezone).value) + 1


def daily_equity(points: Sequence[EquityPoint], timezone: str) -> pd.Series:
    """The last equity of each day of ``points``, indexed by day."""
    days = local_days([p.ts for p in points], timezone)
    values = pd.Series([p.equity for p in points], index=days, dtype=np.float64)
    return values.groupby(level=0).last()


def periods_per_year(run: RunRow) -> int:
    """365 for a run on a market open every day (a crypto exchange), else 252."""
    source = (run.config.get("data") or {}).get("source", "replay")
    return CALENDAR_DAYS if source in SEVEN_DAY_SOURCES else TRADING_DAYS


def select_run(read: ReadModel, robot: str, run_id: str | None) -> RunRow:
    """The given run of ``robot``, or its latest; StateError when there is none."""
    if run_id is None:
        run = read.latest_run(robot)
        if run is None:
            raise StateError(f"robot {robot!r} has no run yet: robohost run")
        return run
    run = read.run(run_id)
    if run is None or run.robot != robot:
        raise StateError(f"robot {robot!r} has no run {run_id!r}: see 'robohost status'")
    return run


def gather(
    read: ReadModel,
    robot: str,
    run_id: str | None = None,
    start: date | None = None,
    end: date | None = None,
    annualization: int | None = None,
) -> ReportData:
    """Read one run of ``robot`` (the latest unless ``run_id``) for the days ``start`` <= day < ``end``."""
    run = select_run(read, robot, run_id)
    timezone = str(run.config.get("timezone") or "UTC")
    points = read.equity(robot, run.id)
    days = local_days([p.ts for p in points], timezone)
    keep = np.ones(len(points), dtype=bool)
    if start is not None:
        keep &= days >= pd.Timestamp(start)
    if end is not None:
        keep &= days < pd.Timestamp(end)
    if not keep.any():
        window = f" from {start or 'the start'} to {end or 'the end'}" if start or end else ""
        raise StateError(f"run {run.id} of robot {robot!r} has no equity points{window}: robohost run")
    chosen = np.flatnonzero(keep)
    first_day, last_day = days[chosen[0]].date(), days[chosen[-1]].date()
    before = chosen[0] - 1  # points are in time order: the last point of an earlier day
    if before >= 0:
        e0, e0_day = points[before].equity, days[before]
    else:
        e0, e0_day = float(run.starting_cash), pd.Timestamp(first_day - timedelta(days=1))
    closes = pd.Series([points[i].equity for i in chosen], index=days[chosen], dtype=np.float64)
    close_ts = pd.Series([points[i].ts for i in chosen], index=days[chosen]).groupby(level=0).last()
    closes = closes.groupby(level=0).last()
    equity = pd.concat([pd.Series([e0], index=pd.DatetimeIndex([e0_day])), closes]).rename("equity")
    start_ns = day_start_ns(first_day, timezone)
    end_ns = day_start_ns(last_day + timedelta(days=1), timezone)

    all_fills = read.fills(robot, run.id)
    fills = tuple(f for f in all_fills if start_ns <= f.ts < end_ns)
    order_types = {o.id: o.type for o in read.orders(robot, run.id)} if fills else {}
    fill_settings = run.config.get("fills") or {}
    bps = float(fill_settings.get("slippage_bps", 0.0))
    by_symbol: dict[str, float] = {}
    for f in fills:
        by_symbol[f.symbol] = by_symbol.get(f.symbol, 0.0) + slippage_paid(f, order_types.get(f.order_id, ""), bps)
    slippage = Slippage(
        sum(by_symbol.values()),
        by_symbol,
        _slippage_method(bps, float(fill_settings.get("slippage_range_fraction", 0.0))),
    )
    return ReportData(
        robot=robot,
        run=run,
        timezone=timezone,
        periods_per_year=annualization or periods_per_year(run),
        first_day=first_day,
        last_day=last_day,
        start_ns=start_ns,
        end_ns=end_ns,
        equity=equity,
        in_market=_in_market(all_fills, close_ts.to_numpy(dtype=np.int64)),
        fills=fills,
        trades=tuple(_trades_of_period(round_trips(all_fills), start_ns, end_ns)),
        open_positions=_held(f for f in all_fills if f.ts < end_ns),
        fees=sum((f.fee for f in fills), Decimal(0)),
        slippage=slippage,
        operations=operations_record(read, robot, start_ns, end_ns, include={run.id}),
    )


def _trades_of_period(trades: list[Trade], start_ns: int, end_ns: int) -> list[Trade]:
    """Trades closed in the period, then trades open at its end (a later exit is not shown)."""
    closed = [t for t in trades if t.exit_ts is not None and start_ns <= t.exit_ts < end_ns]
    still_open = [
        replace(t, exit_ts=None, exit_price=None, pnl=None)
        for t in trades
        if t.entry_ts < end_ns and (t.exit_ts is None or t.exit_ts >= end_ns)
    ]
    return closed + sorted(still_open, key=lambda t: (t.entry_ts, t.symbol))


def _held(fills: Iterable[FillRecord]) -> dict[str, float]:
    """The signed quantity of each symbol after ``fills``, for the symbols still held."""
    held: dict[str, Decimal] = {}
    for fill in fills:
        qty = Decimal(repr(fill.qty))
        held[fill.symbol] = held.get(fill.symbol, Decimal(0)) + (qty if fill.side == "buy" else -qty)
    return {symbol: float(qty) for symbol, qty in sorted(held.items()) if qty}


def _in_market(fills: Sequence[FillRecord], close_ts: np.ndarray) -> np.ndarray:
    """For each close time, whether any position was open just after it."""
    if not fills:
        return np.zeros(len(close_ts), dtype=bool)
    held: dict[str, Decimal] = {}
    fill_ts = np.empty(len(fills), dtype=np.int64)
    open_after = np.empty(len(fills), dtype=bool)
    for i, fill in enumerate(fills):
        qty = Decimal(repr(fill.qty))
        held[fill.symbol] = held.get(fill.symbol, Decimal(0)) + (qty if fill.side == "buy" else -qty)
        fill_ts[i] = fill.ts
        open_after[i] = any(held.values())
    last = np.searchsorted(fill_ts, close_ts, side="right") - 1
    return np.where(last >= 0, open_after[np.maximum(last, 0)], False)


def _slippage_method(bps: float, range_fraction: float) -> str:
    text = (
        f"Estimated, not stored: the run's slippage_bps ({bps:g}) applied to market and stop fills "
        "(the fills the fill model slips), recovered from each fill's price as price × bps / (10,000 ± bps)."
    )
    if range_fraction > 0:
        text += (
            f" The run also slipped fills by slippage_range_fraction ({range_fraction:g}) of each bar's "
            "high-low range, which the database does not keep: that part is not included."
        )
    return text
