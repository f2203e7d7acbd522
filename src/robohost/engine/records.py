"""Plain records the session hands to a journal, and the journal gives back on resume.

These are the persistence contract between the engine and any Journal adapter (SQLite,
PostgreSQL): flat values only, no ORM, no domain behaviour. Imports only the standard library.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter
from typing import Any, ClassVar


class _FastPickle:
    """Pickle a frozen slotted record as (class, field values): several times cheaper than the default."""

    __slots__ = ()
    _getters: ClassVar[dict[type, attrgetter[Any]]] = {}

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        cls = type(self)
        getter = _FastPickle._getters.get(cls)
        if getter is None:
            names: tuple[str, ...] = cls.__slots__  # a slotted dataclass: the field names, in order
            getter = _FastPickle._getters[cls] = attrgetter(*names)
        return cls, getter(self)


@dataclass(frozen=True, slots=True)
class RunRecord(_FastPickle):
    """One paper-trading run of one robot."""

    id: str
    robot: str
    mode: str  # "replay" or "live"
    started_at: int  # ns since the epoch, UTC (wall clock)
    seed: int
    starting_cash: Decimal
    strategy: str  # the configured reference, e.g. "strategies/sma_cross.py:SmaCross"
    feed_signature: str  # identifies the market data, so a resume can refuse different data
    config: dict[str, Any] = field(default_factory=dict)  # the robot's effective configuration


@dataclass(frozen=True, slots=True)
class OrderRecord(_FastPickle):
    """The latest state of an order (upserted by its client order id)."""

    id: str
    run_id: str
    robot: str
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
    parent_id: str | None
    oco_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class FillRecord(_FastPickle):
    """One fill, as stored."""

    id: str
    run_id: str
    robot: str
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


@dataclass(frozen=True, slots=True)
class PositionRecord(_FastPickle):
    """The latest state of one position (upserted by run and symbol)."""

    run_id: str
    robot: str
    symbol: str
    qty: Decimal
    avg_price: Decimal
    realized_pnl: Decimal
    last_price: float
    updated_ts: int


@dataclass(frozen=True, slots=True)
class RiskEventRecord(_FastPickle):
    """A risk rejection, a halt (kill switch) or a resume."""

    run_id: str
    robot: str
    ts: int
    kind: str  # "rejected", "halt", "resume"
    rule: str
    reason: str
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class RejectedDataRecord(_FastPickle):
    """A market-data row refused by validation, with the rule it broke."""

    run_id: str
    robot: str
    symbol: str
    kind: str  # "bar", "trade", "quote"
    ts: int
    reason: str
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class EventRecord(_FastPickle):
    """One line of the run's journal: what happened, when, with details."""

    run_id: str
    seq: int  # the market-event position it belongs to
    ts: int
    type: str  # e.g. "order_submitted", "order_filled", "strategy_error", "halted", "run_started"
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Checkpoint(_FastPickle):
    """Everything needed to resume a run exactly after its last committed event."""

    run_id: str
    seq: int  # the last market event fully processed (-1 before any)
    ts: int
    events_processed: int
    rejected_count: int
    state: bytes  # the pickled engine state (portfolio, orders, strategy, indicators, RNG)


@dataclass(slots=True)
class Batch:
    """What one commit writes, atomically: everything since the previous commit."""

    run_id: str
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    fills: list[FillRecord] = field(default_factory=list)
    positions: dict[str, PositionRecord] = field(default_factory=dict)
    equity_ts: array[int] = field(default_factory=lambda: array("q"))  # arrays: cheap to append and to pickle
    equity: array[float] = field(default_factory=lambda: array("d"))
    cash: array[float] = field(default_factory=lambda: array("d"))
    risk_events: list[RiskEventRecord] = field(default_factory=list)
    rejected: list[RejectedDataRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    checkpoint: Checkpoint | None = None

    def clear(self) -> None:
        """Empty the batch after a successful commit."""
        self.orders.clear()
        self.fills.clear()
        self.positions.clear()
        del self.equity_ts[:]
        del self.equity[:]
        del self.cash[:]
        self.risk_events.clear()
        self.rejected.clear()
        self.events.clear()
        self.checkpoint = None
