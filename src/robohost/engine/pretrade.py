"""Pre-trade checks: everything an order must pass before it reaches the paper broker.

In order: a valid order (quantity, prices, bracket), a robot not halted, a known market price, no
short sale unless allowed, enough buying power, and the risk limits. No I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robohost.domain.orders import Order
from robohost.domain.values import ZERO, Liquidity, Side, floor_to_step
from robohost.engine.state import EngineState


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an order was refused; ``rule`` is set when a risk limit refused it."""

    reason: str
    rule: str | None = None


def order_problem(order: Order, lot_size: float) -> str | None:
    """Return what makes the order itself invalid (and round its quantity down to whole lots)."""
    if not (math.isfinite(order.qty) and order.qty > 0):
        return f"quantity must be a positive number, got {order.qty!r}"
    lots = floor_to_step(order.qty, lot_size)
    if lots <= 0:
        return f"quantity {order.qty:g} is below the lot size {lot_size:g}"
    order.qty = lots
    prices = (
        ("limit", order.limit),
        ("stop", order.stop),
        ("stop_loss", order.stop_loss),
        ("take_profit", order.take_profit),
    )
    for name, value in prices:
        if value is not None and not (math.isfinite(value) and value > 0):
            return f"{name} price must be a positive number, got {value!r}"
    sl, tp = order.stop_loss, order.take_profit
    if sl is not None and tp is not None:
        if order.side is Side.BUY and not sl < tp:
            return f"a long bracket needs stop_loss < take_profit, got {sl} and {tp}"
        if order.side is Side.SELL and not sl > tp:
            return f"a short bracket needs stop_loss > take_profit, got {sl} and {tp}"
    return None


def check_order(state: EngineState, order: Order, now: int) -> Refusal | None:
    """Run every pre-trade check; return the first refusal, or None when the order may go."""
    broker = state.broker
    rules = broker.rules
    problem = order_problem(order, rules.lot_size)
    if problem is not None:
        return Refusal(problem)
    if state.halted is not None:
        return Refusal(f"robot halted: {state.halted}")
    last = state.last_price[state.index[order.symbol]]
    reference = order.limit if order.limit is not None else order.stop if order.stop is not None else last
    if reference <= 0.0:
        return Refusal(f"no market price for {order.symbol} yet: wait for its first bar")
    price = last or reference
    signed = order.qty if order.side is Side.BUY else -order.qty
    committed = broker.committed_qty(order.symbol)
    portfolio = state.portfolio
    if order.side is Side.SELL and not rules.allow_short and committed - order.qty < -1e-9:
        return Refusal(f"short selling is off: selling {order.qty:g} with {max(committed, 0.0):g} available")
    if order.side is Side.BUY and committed >= 0.0:
        need = order.qty * reference * (1.0 + rules.slippage_bps * 1e-4)
        need += float(rules.fees.fee(order.qty, reference, Liquidity.TAKER, ZERO))
        available = portfolio.cash_f - broker.reserved_cash()
        if need > available + 1e-9:
            return Refusal(f"insufficient buying power: needs {need:,.2f}, available {available:,.2f}")
    risk = state.risk
    exposure = committed_exposure(state) if risk.limits.max_gross_exposure is not None else 0.0  # O(symbols)
    breach = risk.check_order(now, signed, price, committed + signed, exposure, committed)
    if breach is not None:
        return Refusal(f"risk limit {breach[0]}: {breach[1]}", breach[0])
    return None


def committed_exposure(state: EngineState) -> float:
    """Gross exposure if every open order filled: the sum over symbols of |committed quantity| x last price."""
    broker = state.broker
    symbols = set(broker.working) | {p.symbol for p in state.portfolio.held}
    return sum(abs(broker.committed_qty(s)) * state.last_price[state.index[s]] for s in symbols)
