"""Round trips (trades) rebuilt from a run's fills, and the slippage each fill paid.

A trade opens when a symbol's position leaves zero and closes when it is back at zero; a fill that flips the
position closes one trade and opens the next with the remainder (its fee is split by quantity). A trade's
P&L is the realised P&L the fills stored (exact, before fees) minus the fees of all its fills. Imports only
``robohost.engine.records`` and the standard library.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from robohost.engine.records import FillRecord

ZERO = Decimal(0)
_FEE_QUANTUM = Decimal("1e-10")
SLIPPED_ORDER_TYPES = frozenset({"market", "stop"})
"""Order types whose fills the fill model moves by ``slippage_bps`` (limit and stop-limit fills are not)."""


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip of one symbol; ``exit_ts``, ``exit_price`` and ``pnl`` are None while it is open."""

    symbol: str
    side: str  # "long" or "short"
    entry_ts: int  # ns since the epoch, UTC: its first fill
    exit_ts: int | None  # the fill that brought the position back to zero
    qty: float  # the quantity opened
    entry_price: float  # volume-weighted
    exit_price: float | None  # volume-weighted
    fees: Decimal
    pnl: Decimal | None  # realised P&L minus fees

    @property
    def holding_ns(self) -> int | None:
        """Time from the first fill to the last, ns (None while open)."""
        return None if self.exit_ts is None else self.exit_ts - self.entry_ts


@dataclass(slots=True)
class _Open:
    symbol: str
    long: bool
    entry_ts: int
    opened: Decimal = ZERO
    entry_notional: Decimal = ZERO
    closed: Decimal = ZERO
    exit_notional: Decimal = ZERO
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    position: Decimal = field(default=ZERO)

    def add(self, qty: Decimal, price: Decimal, fee: Decimal) -> None:
        self.opened += qty
        self.entry_notional += qty * price
        self.fees += fee
        self.position += qty if self.long else -qty

    def trade(self, exit_ts: int | None) -> Trade:
        closed = exit_ts is not None
        return Trade(
            symbol=self.symbol,
            side="long" if self.long else "short",
            entry_ts=self.entry_ts,
            exit_ts=exit_ts,
            qty=float(self.opened),
            entry_price=float(self.entry_notional / self.opened),
            exit_price=float(self.exit_notional / self.closed) if closed and self.closed else None,
            fees=self.fees,
            pnl=self.realized - self.fees if closed else None,
        )


def round_trips(fills: Iterable[FillRecord]) -> list[Trade]:
    """The trades of ``fills`` (one run's, in time order), closed ones then those still open, by entry time."""
    open_trades: dict[str, _Open] = {}
    done: list[Trade] = []
    for fill in fills:
        qty, price, fee = Decimal(repr(fill.qty)), Decimal(repr(fill.price)), fill.fee
        buy = fill.side == "buy"
        current = open_trades.get(fill.symbol)
        if current is None or current.long == buy:
            if current is None:
                current = open_trades[fill.symbol] = _Open(fill.symbol, buy, fill.ts)
            current.add(qty, price, fee)
            continue
        closing = min(qty, abs(current.position))
        fee_share = fee if closing == qty else (fee * closing / qty).quantize(_FEE_QUANTUM)
        current.closed += closing
        current.exit_notional += closing * price
        current.realized += fill.realized_pnl
        current.fees += fee_share
        current.position += closing if buy else -closing
        if current.position == 0:
            done.append(current.trade(fill.ts))
            del open_trades[fill.symbol]
            if closing < qty:  # flipped through flat: the remainder opens the next trade
                flipped = open_trades[fill.symbol] = _Open(fill.symbol, buy, fill.ts)
                flipped.add(qty - closing, price, fee - fee_share)
    still_open = sorted((o.trade(None) for o in open_trades.values()), key=lambda t: (t.entry_ts, t.symbol))
    return sorted(done, key=lambda t: (t.exit_ts or 0, t.entry_ts, t.symbol)) + still_open


def slippage_paid(fill: FillRecord, order_type: str, slippage_bps: float) -> float:
    """What ``slippage_bps`` cost this fill, in money: 0 unless its order type is slipped (market, stop).

    The fill model prices such a fill at ``reference × (1 ± bps / 10,000)``, so the reference price is
    recovered from the stored price; the range part (``slippage_range_fraction`` × the bar's range) is not
    stored and not included, and tick rounding makes it approximate to a fraction of a tick.
    """
    if order_type not in SLIPPED_ORDER_TYPES or slippage_bps <= 0:
        return 0.0
    rate = slippage_bps * 1e-4
    notional = fill.qty * fill.price
    return notional * rate / (1.0 + rate) if fill.side == "buy" else notional * rate / (1.0 - rate)
