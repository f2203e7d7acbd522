"""The views of the dashboard and its API: pydantic models, read from the stores' dataclasses.

Money as exact decimals, times as ns since the epoch (UTC). The web layer uses them as its response schemas.
Imports pydantic only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict


class View(BaseModel):
    """Base of the views: read from dataclasses' attributes."""

    model_config = ConfigDict(from_attributes=True)


class RobotStatusView(View):
    """A robot at a glance: ``running``, ``stopped``, ``halted`` or ``degraded``, why, and who runs it."""

    robot: str
    status: str
    state: str
    reason: str | None
    run_id: str | None
    mode: str
    served_by: str | None
    server_alive: bool


class RunView(View):
    """A paper run's progress."""

    id: str
    status: str
    mode: str
    started_at: int
    ended_at: int | None
    starting_cash: Decimal
    events_processed: int
    rejected_count: int
    last_ts: int | None


class PositionView(View):
    """A position, marked at its last price."""

    symbol: str
    qty: Decimal
    avg_price: Decimal
    last_price: float
    unrealized_pnl: float
    realized_pnl: Decimal


class OrderView(View):
    """An order's latest state."""

    id: str
    symbol: str
    side: str
    type: str
    qty: float
    limit_price: float | None
    stop_price: float | None
    tif: str
    status: str
    filled_qty: float
    avg_fill_price: float | None
    fees: Decimal
    created_ts: int
    updated_ts: int
    reason: str


class FillView(View):
    """A fill."""

    id: str
    order_id: str
    symbol: str
    side: str
    qty: float
    price: float
    fee: Decimal
    ts: int
    liquidity: str
    tier: str
    ambiguous: bool
    realized_pnl: Decimal


class NextRunView(View):
    """A planned job: when (ns, UTC) and, for a session, until when."""

    job: str
    at: int
    until: int | None


class EquityView(View):
    """The equity curve (sampled to at most about 500 points) and its drawdown from the running peak."""

    t_ms: list[int]
    equity: list[float]
    drawdown: list[float]
    max_drawdown: float


class Overview(View):
    """Everything the overview page shows."""

    robot: str
    status: RobotStatusView
    run: RunView | None
    equity_now: float | None
    cash_now: float | None
    day: str | None
    day_pnl: float | None
    total_pnl: float | None
    equity: EquityView
    positions: list[PositionView]
    working_orders: list[OrderView]
    recent_fills: list[FillView]
    next_runs: list[NextRunView]
    counts: dict[str, int]
    generated_at: int


class JobView(View):
    """A job of the server's history."""

    id: int
    job: str
    trigger: str
    planned_at: int | None
    started_at: int | None
    ended_at: int | None
    outcome: str
    attempts: int
    error: str | None
    run_id: str | None


class RequestView(View):
    """A person's request and the server's answer."""

    id: int
    robot: str
    action: str
    job: str | None
    requested_by: str
    requested_at: int
    handled_at: int | None
    handled_by: str | None
    outcome: str | None


class RiskEventView(View):
    """A risk rejection, halt or resume."""

    ts: int
    kind: str
    rule: str
    reason: str
    order_id: str | None


class RejectedDataView(View):
    """A row of market data refused by validation (NaN and infinities as null)."""

    ts: int
    symbol: str
    kind: str
    reason: str
    values: list[float | None]


class RiskView(View):
    """A run's risk events and rejected data, newest first."""

    run_id: str | None
    risk_events: list[RiskEventView]
    rejected_data: list[RejectedDataView]


class FeedView(View):
    """A robot's market data as the journal saw it: its source, the newest feed lines, how stale it is."""

    robot: str
    source: str
    live: bool
    last_event_ts: int | None
    staleness_s: float | None
    events: list[dict[str, Any]]


class HealthView(View):
    """The server's health: CPU, memory, the home's disk, this process, and each robot's feed."""

    cpu_percent: float
    load_average: list[float]
    memory_percent: float
    memory_used: int
    memory_total: int
    disk_percent: float
    disk_free: int
    disk_total: int
    process_rss: int
    process_uptime_s: float
    feeds: list[FeedView]


class FileView(View):
    """A downloadable file (a report, a backup)."""

    name: str
    size: int
    modified: int
    detail: str | None = None
