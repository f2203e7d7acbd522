"""Orders, their life cycle (an explicit transition table) and fills.

Imports only the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from robohost.domain.values import ZERO, FillTier, Liquidity, OrderType, Side, TimeInForce
from robohost.errors import IllegalTransitionError


class OrderStatus(StrEnum):
    """Where an order is in its life."""

    PENDING = "pending"  # submitted, travelling to the simulated market (latency)
    WORKING = "working"  # resting in the simulated market
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"


_OPEN = frozenset({OrderStatus.PENDING, OrderStatus.WORKING, OrderStatus.PARTIALLY_FILLED})

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.WORKING, OrderStatus.REJECTED, OrderStatus.CANCELLED}),
    OrderStatus.WORKING: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}
"""The only legal status moves; anything else raises ``IllegalTransitionError``."""


class Order:
    """A paper order. Its status changes only through ``move_to``.

    ``id`` is the idempotent client order id: the run id and a sequence number, so a
    resumed run regenerates exactly the same ids and can never send an order twice.
    """

    __slots__ = (
        "active_ts",
        "avg_price",
        "created_ts",
        "day_end_ts",
        "fees",
        "filled_qty",
        "id",
        "limit",
        "oco_id",
        "parent_id",
        "qty",
        "raw_fees",
        "reason",
        "rested",
        "side",
        "status",
        "stop",
        "stop_loss",
        "symbol",
        "take_profit",
        "tif",
        "triggered",
        "type",
        "updated_ts",
    )

    def __init__(
        self,
        id: str,
        symbol: str,
        side: Side,
        qty: float,
        type: OrderType,
        created_ts: int,
        active_ts: int,
        limit: float | None = None,
        stop: float | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        parent_id: str | None = None,
        status: OrderStatus = OrderStatus.PENDING,
    ) -> None:
        self.id = id
        self.symbol = symbol
        self.side = side
        self.qty = qty
        self.type = type
        self.limit = limit
        self.stop = stop
        self.tif = tif
        self.created_ts = created_ts
        self.active_ts = active_ts
        self.updated_ts = created_ts
        self.stop_loss = stop_loss
        self.take_profit = take_profit
        self.parent_id = parent_id
        self.oco_id: str | None = None
        self.status = status
        self.filled_qty = 0.0
        self.avg_price = 0.0
        self.fees: Decimal = ZERO  # charged, the minimum included
        self.raw_fees: Decimal = ZERO  # before the minimum
        self.triggered = False
        self.rested = False  # set once the order has met the market without filling
        self.reason = ""
        self.day_end_ts = -1  # for DAY orders: expiry, fixed when the order first meets the market

    @property
    def remaining(self) -> float:
        """Quantity still to fill."""
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        """True while the order can still fill or be cancelled."""
        return self.status in _OPEN

    @property
    def signed_remaining(self) -> float:
        """Remaining quantity, positive for buys and negative for sells."""
        return self.remaining if self.side is Side.BUY else -self.remaining

    def move_to(self, status: OrderStatus, ts: int, reason: str = "") -> None:
        """Change status through the transition table, or raise ``IllegalTransitionError``."""
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransitionError(f"order {self.id}: {self.status} -> {status} is not allowed")
        self.status = status
        self.updated_ts = ts
        if reason:
            self.reason = reason

    def record_fill(self, qty: float, price: float, fee: Decimal, ts: int, raw_fee: Decimal | None = None) -> None:
        """Add a fill to the order's totals and move it to (partially) filled."""
        total = self.filled_qty + qty
        self.avg_price = (self.avg_price * self.filled_qty + price * qty) / total
        self.filled_qty = total
        self.fees += fee
        self.raw_fees += fee if raw_fee is None else raw_fee
        done = self.remaining <= 1e-12
        self.move_to(OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED, ts)

    def __repr__(self) -> str:
        return (
            f"Order({self.id} {self.side} {self.qty} {self.symbol} {self.type} "
            f"limit={self.limit} stop={self.stop} {self.status})"
        )


@dataclass(frozen=True, slots=True)
class Fill:
    """A fact: part or all of an order traded at ``price`` (an OrderFilled event)."""

    id: str
    order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    fee: Decimal
    ts: int
    liquidity: Liquidity
    tier: FillTier
    ambiguous: bool = False
    """Set when a stop-loss and a take-profit both sat inside the bar: the worse was assumed."""

    @property
    def signed_qty(self) -> float:
        """Quantity, positive for buys and negative for sells."""
        return self.qty if self.side is Side.BUY else -self.qty
