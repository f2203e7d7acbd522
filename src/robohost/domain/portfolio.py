"""Portfolio accounting: cash, positions with their cost basis, realised and unrealised P&L, fees.

Money that is summed (cash, cost basis, fees, realised P&L) is exact (Decimal); prices and the
per-bar mark to market are floats. Keeping each position's cost basis (not a rounded average price)
makes the identity ``cash + market value == starting cash + realised + unrealised - fees`` exact
after any sequence of fills. Imports only the standard library.
"""

from __future__ import annotations

from decimal import Decimal

from robohost.domain.orders import Fill
from robohost.domain.values import ZERO, Side, dec

COST_QUANTUM = Decimal("1e-10")
"""A partial close takes its share of the cost basis rounded to this (the database's money scale), so every
amount stays a short exact decimal and sums of them never lose a digit."""


class Position:
    """A holding in one symbol: signed quantity, signed cost basis, realised P&L, last price."""

    __slots__ = ("cost", "last_price", "qty", "qty_f", "realized", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.qty: Decimal = ZERO
        self.qty_f = 0.0  # float mirror of qty for the hot path
        self.cost: Decimal = ZERO  # what the open quantity cost: positive long, negative (proceeds) short
        self.realized: Decimal = ZERO
        self.last_price = 0.0

    @property
    def avg_price(self) -> Decimal:
        """Average entry price of the open quantity (0 when flat)."""
        return self.cost / self.qty if self.qty else ZERO

    def apply(self, signed_qty: Decimal, price: Decimal) -> Decimal:
        """Apply a fill; return the realised P&L it produced (before fees)."""
        old = self.qty
        new = old + signed_qty
        realized = ZERO
        if old == 0 or (old > 0) == (signed_qty > 0):
            self.cost += signed_qty * price  # opening or adding
        else:
            closed = min(abs(signed_qty), abs(old))
            removed = self.cost if closed == abs(old) else (self.cost * closed / abs(old)).quantize(COST_QUANTUM)
            direction = 1 if old > 0 else -1
            realized = direction * closed * price - removed
            self.cost -= removed
            if new != 0 and (new > 0) != (old > 0):
                self.cost = new * price  # flipped through flat: the remainder opened at this price
        self.qty = new
        self.qty_f = float(new)
        self.realized += realized
        return realized

    def unrealized(self) -> Decimal:
        """Exact unrealised P&L at the last price."""
        return self.qty * dec(self.last_price) - self.cost if self.qty else ZERO


class Portfolio:
    """Cash and positions of one robot's simulated account."""

    def __init__(self, starting_cash: Decimal) -> None:
        self.starting_cash = starting_cash
        self.cash: Decimal = starting_cash
        self.cash_f = float(starting_cash)
        self.fees: Decimal = ZERO
        self.realized: Decimal = ZERO
        self.round_trips = 0  # positions closed (to flat, or flipped through it)
        self.positions: dict[str, Position] = {}
        self.held: list[Position] = []  # positions with a non-zero quantity, for the mark to market

    def position(self, symbol: str) -> Position:
        """Return the position in ``symbol``, creating a flat one if needed."""
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        return pos

    def apply_fill(self, fill: Fill) -> Decimal:
        """Book a fill: move cash, update the position, charge the fee. Return realised P&L."""
        qty = dec(fill.qty)
        price = dec(fill.price)
        signed = qty if fill.side is Side.BUY else -qty
        pos = self.position(fill.symbol)
        if pos.last_price == 0.0:
            pos.last_price = fill.price
        was = pos.qty
        realized = pos.apply(signed, price)
        if was != 0 and (pos.qty == 0 or (pos.qty > 0) != (was > 0)):
            self.round_trips += 1
        self.cash -= signed * price + fill.fee
        self.cash_f = float(self.cash)
        self.fees += fill.fee
        self.realized += realized
        self.held = [p for p in self.positions.values() if p.qty]
        return realized

    def mark(self, symbol: str, price: float) -> None:
        """Record the latest price of ``symbol`` (mark to market)."""
        pos = self.positions.get(symbol)
        if pos is not None:
            pos.last_price = price

    def equity_f(self) -> float:
        """Cash plus positions at their last prices, as a float (the per-bar mark)."""
        equity = self.cash_f
        for pos in self.held:
            equity += pos.qty_f * pos.last_price
        return equity

    def market_value(self) -> Decimal:
        """Exact value of all positions at their last prices."""
        return sum((p.qty * dec(p.last_price) for p in self.positions.values() if p.qty), ZERO)

    def equity(self) -> Decimal:
        """Exact equity: cash plus positions at market."""
        return self.cash + self.market_value()

    def unrealized(self) -> Decimal:
        """Exact unrealised P&L of all positions."""
        return sum((p.unrealized() for p in self.positions.values()), ZERO)

    def gross_exposure(self) -> float:
        """Sum of the absolute market values of all positions."""
        return sum(abs(p.qty_f * p.last_price) for p in self.held)
