"""The fill model: when and at what price a paper order trades against bars, trades or quotes.

One model serves replay and live alike. Each function here decides one order against one market
event and returns the price (or None); the paper broker applies latency, volume caps, brackets and
bookkeeping. The rules (documented in the README, "Fill model"):

- Market: the first event after the order reaches the market - a quote (buy at the ask, sell at the
  bid), else a trade (its price), else a bar (its open) - plus slippage.
- Limit: fills only when the price trades *through* the limit; a mere touch fills with probability
  ``touch_fill_probability``. A resting limit fills at the limit, or at the open when a bar gaps
  through it; a limit that is marketable when it arrives fills as a taker at the market price.
- Stop: triggers on touch and fills at the stop, or at the open when a bar gaps through it, plus
  slippage. Stop-limit: triggers like a stop, fills at the trigger price if that respects the limit,
  else rests as a limit.

Imports only the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from robohost.domain.orders import Order
from robohost.domain.values import ZERO, Liquidity, OrderType, Side, dec

NO_FILL: tuple[float, Liquidity] | None = None


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Commissions: per unit traded, a rate of notional (maker or taker) and a minimum per order."""

    per_unit: Decimal = ZERO
    maker_rate: Decimal = ZERO
    taker_rate: Decimal = ZERO
    minimum: Decimal = ZERO

    def raw(self, qty: float, price: float, liquidity: Liquidity) -> Decimal:
        """The fee of one fill before the minimum: per unit plus the maker or taker rate of notional."""
        q = dec(qty)
        rate = self.maker_rate if liquidity is Liquidity.MAKER else self.taker_rate
        return self.per_unit * q + rate * q * dec(price)

    def fee(
        self,
        qty: float,
        price: float,
        liquidity: Liquidity,
        paid_on_order: Decimal = ZERO,
        raw_on_order: Decimal | None = None,
    ) -> Decimal:
        """The fee to charge for one fill, so that an order pays max(its raw fees, minimum) in all.

        ``paid_on_order`` is what the order's earlier fills were charged, ``raw_on_order`` their raw
        fees (the same as ``paid_on_order`` unless a minimum was topped up).
        """
        before = paid_on_order if raw_on_order is None else raw_on_order
        total = max(before + self.raw(qty, price, liquidity), self.minimum)
        return (total - paid_on_order).quantize(Decimal("0.000001"))


@dataclass(frozen=True, slots=True)
class FillRules:
    """Every tunable of the fill model, with its documented default."""

    latency_ns: int = 250_000_000
    slippage_bps: float = 0.0
    slippage_range_fraction: float = 0.0
    touch_fill_probability: float = 0.0
    participation: float = 0.10
    allow_short: bool = False
    tick_size: float = 0.01
    lot_size: float = 1.0
    fees: FeeSchedule = field(default_factory=FeeSchedule)

    def slip(self, price: float, side: Side, bar_range: float = 0.0) -> float:
        """Move ``price`` against the order by the configured slippage."""
        s = price * self.slippage_bps * 1e-4 + bar_range * self.slippage_range_fraction
        return price + s if side is Side.BUY else price - s


Random = Callable[[], float]
Match = tuple[float, Liquidity] | None


def _through_limit(order: Order, price_low: float, price_high: float, rules: FillRules, rnd: Random) -> bool:
    """True when the market went through a limit (or touched it and the touch is granted)."""
    limit = order.limit
    assert limit is not None
    if order.side is Side.BUY:
        if price_low < limit:
            return True
        touched = price_low == limit
    else:
        if price_high > limit:
            return True
        touched = price_high == limit
    return touched and rules.touch_fill_probability > 0.0 and rnd() < rules.touch_fill_probability


def _limit_on_bar(order: Order, o: float, h: float, lo: float, rules: FillRules, rnd: Random) -> Match:
    limit = order.limit
    assert limit is not None
    if not _through_limit(order, lo, h, rules, rnd):
        return NO_FILL
    better_open = o < limit if order.side is Side.BUY else o > limit
    if better_open:
        return o, (Liquidity.MAKER if order.rested else Liquidity.TAKER)
    return limit, Liquidity.MAKER


def _stop_triggered(order: Order, h: float, lo: float) -> bool:
    stop = order.stop
    assert stop is not None
    return h >= stop if order.side is Side.BUY else lo <= stop


def _stop_price_on_bar(order: Order, o: float) -> float:
    stop = order.stop
    assert stop is not None
    gapped = o >= stop if order.side is Side.BUY else o <= stop
    return o if gapped else stop


def _within_limit(order: Order, price: float) -> bool:
    limit = order.limit
    assert limit is not None
    return price <= limit if order.side is Side.BUY else price >= limit


def match_bar(order: Order, o: float, h: float, lo: float, rules: FillRules, rnd: Random) -> Match:
    """Decide ``order`` against one bar; return (price, liquidity) or None."""
    kind = order.type
    if kind is OrderType.MARKET:
        return rules.slip(o, order.side, h - lo), Liquidity.TAKER
    if kind is OrderType.LIMIT or (kind is OrderType.STOP_LIMIT and order.triggered):
        return _limit_on_bar(order, o, h, lo, rules, rnd)
    if not _stop_triggered(order, h, lo):
        return NO_FILL
    trigger = _stop_price_on_bar(order, o)
    if kind is OrderType.STOP:
        return rules.slip(trigger, order.side, h - lo), Liquidity.TAKER
    order.triggered = True  # stop-limit: now a limit order
    if _within_limit(order, trigger):
        return trigger, Liquidity.TAKER
    return NO_FILL


def match_trade(order: Order, price: float, rules: FillRules, rnd: Random) -> Match:
    """Decide ``order`` against one printed trade; return (price, liquidity) or None."""
    kind = order.type
    if kind is OrderType.MARKET:
        return rules.slip(price, order.side), Liquidity.TAKER
    if kind is OrderType.LIMIT or (kind is OrderType.STOP_LIMIT and order.triggered):
        if not _through_limit(order, price, price, rules, rnd):
            return NO_FILL
        limit = order.limit
        assert limit is not None
        return (limit, Liquidity.MAKER) if order.rested else (price, Liquidity.TAKER)
    if not _stop_triggered(order, price, price):
        return NO_FILL
    if kind is OrderType.STOP:
        return rules.slip(price, order.side), Liquidity.TAKER
    order.triggered = True
    return (price, Liquidity.TAKER) if _within_limit(order, price) else NO_FILL


def match_quote(order: Order, bid: float, ask: float, rules: FillRules, rnd: Random) -> Match:
    """Decide ``order`` against top of book; buys meet the ask, sells the bid."""
    touch = ask if order.side is Side.BUY else bid
    kind = order.type
    if kind is OrderType.MARKET:
        return rules.slip(touch, order.side), Liquidity.TAKER
    if kind is OrderType.LIMIT or (kind is OrderType.STOP_LIMIT and order.triggered):
        if not _within_limit(order, touch):
            return NO_FILL
        limit = order.limit
        assert limit is not None
        return (limit, Liquidity.MAKER) if order.rested else (touch, Liquidity.TAKER)
    if not _stop_triggered(order, touch, touch):
        return NO_FILL
    if kind is OrderType.STOP:
        return rules.slip(touch, order.side), Liquidity.TAKER
    order.triggered = True
    return (touch, Liquidity.TAKER) if _within_limit(order, touch) else NO_FILL


def is_adverse_exit(order: Order) -> bool:
    """True for the stop-loss leg of a bracket (the worse outcome of the two exits)."""
    return order.type in (OrderType.STOP, OrderType.STOP_LIMIT)
