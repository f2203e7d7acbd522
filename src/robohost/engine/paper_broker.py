"""The paper broker: working orders meet market events through the domain's fill model.

It owns the order book of one robot's simulated account: pending orders (still travelling, see
``FillRules.latency_ns``), working orders per symbol, brackets (one-cancels-other exits), the
seeded random source, and the fill bookkeeping. It reports what changed through ``changed``
(orders) and ``fills`` lists that the session drains after each event. No I/O.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

from robohost.domain.fill_model import FillRules, Match, is_adverse_exit, match_bar, match_quote, match_trade
from robohost.domain.market import BAR, QUOTE, TRADE
from robohost.domain.orders import Fill, Order, OrderStatus
from robohost.domain.portfolio import Portfolio
from robohost.domain.values import (
    FillTier,
    Liquidity,
    OrderType,
    Side,
    TimeInForce,
    floor_to_step,
    round_to_step,
)

DayEnd = Callable[[int], int]
_UNLIMITED = float("inf")


class PaperBroker:
    """Simulated execution for one account. Deterministic given its seed and the events."""

    def __init__(self, run_id: str, rules: FillRules, portfolio: Portfolio, seed: int) -> None:
        self.run_id = run_id
        self.rules = rules
        self.portfolio = portfolio
        self.rng = random.Random(seed)
        self.order_seq = 0
        self.orders: dict[str, Order] = {}  # every open order, by id
        self.working: dict[str, list[Order]] = {}  # open orders per symbol, in submission order
        self.tiers: dict[str, int] = {}  # symbol -> the event kind that decides its fills
        self.changed: list[tuple[Order, OrderStatus]] = []  # each change, with the status it moved to
        self.fills: list[tuple[Fill, Order, Decimal]] = []  # booked fills, with their realised P&L
        self._fill_seq = 0
        self._release_exits_on_cancel = True

    def _note(self, order: Order) -> None:
        self.changed.append((order, order.status))

    # -- submission ---------------------------------------------------------------------------
    def next_order_id(self) -> str:
        """Return the next idempotent client order id of this run."""
        self.order_seq += 1
        return f"{self.run_id}-{self.order_seq:06d}"

    def reject(self, order: Order, ts: int, reason: str) -> None:
        """Refuse an order before it reaches the market."""
        order.move_to(OrderStatus.REJECTED, ts, reason)
        self._note(order)

    def accept(self, order: Order) -> None:
        """Put a checked order on its way to the simulated market."""
        self.orders[order.id] = order
        self.working.setdefault(order.symbol, []).append(order)
        self._note(order)

    def cancel(self, order_id: str, ts: int, reason: str = "cancelled by the robot") -> bool:
        """Cancel an open order; return False if it is not open.

        Cancelling a partly filled bracket entry releases its exits for the filled quantity.
        """
        order = self.orders.get(order_id)
        if order is None or not order.is_open:
            return False
        self._close(order, OrderStatus.CANCELLED, ts, reason)
        return True

    def cancel_all(self, ts: int, reason: str) -> None:
        """Cancel every open order and release no bracket exit (the kill switch)."""
        self._release_exits_on_cancel = False
        try:
            for order in self.open_orders():
                self.cancel(order.id, ts, reason)
        finally:
            self._release_exits_on_cancel = True

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders, optionally of one symbol, in submission order."""
        if symbol is not None:
            return list(self.working.get(symbol, ()))
        return [o for orders in self.working.values() for o in orders]

    def committed_qty(self, symbol: str) -> float:
        """Position plus the remaining quantity of every open order except bracket exits (signed)."""
        pos = self.portfolio.positions.get(symbol)
        total = pos.qty_f if pos is not None else 0.0
        for o in self.working.get(symbol, ()):
            if o.parent_id is None:
                total += o.signed_remaining
        return total

    def reserved_cash(self) -> float:
        """Cash set aside for open buy orders, at their limit (or last) price."""
        total = 0.0
        for orders in self.working.values():
            for o in orders:
                if o.side is Side.BUY and o.parent_id is None:
                    pos = self.portfolio.positions.get(o.symbol)
                    price = o.limit or o.stop or (pos.last_price if pos else 0.0)
                    total += o.remaining * price
        return total

    # -- matching -----------------------------------------------------------------------------
    def on_bar(self, symbol: str, ts: int, end: int, o: float, h: float, lo: float, v: float, day_end: DayEnd) -> None:
        """Match the symbol's working orders against a bar that covers [ts, end)."""
        if self.tiers.get(symbol, BAR) != BAR:
            return
        rules, rnd = self.rules, self.rng.random
        cap = rules.participation * v
        self._match(
            symbol,
            ts,
            end,
            day_end,
            lambda order: match_bar(order, o, h, lo, rules, rnd),
            cap,
            cap,
            FillTier.BAR,
        )

    def on_trade(self, symbol: str, ts: int, price: float, size: float, day_end: DayEnd) -> None:
        """Match the symbol's working orders against a printed trade."""
        if self.tiers.get(symbol, BAR) != TRADE:
            return
        rules, rnd = self.rules, self.rng.random
        cap = rules.participation * size
        self._match(
            symbol,
            ts,
            ts + 1,
            day_end,
            lambda order: match_trade(order, price, rules, rnd),
            cap,
            cap,
            FillTier.TRADE,
        )

    def on_quote(
        self, symbol: str, ts: int, bid: float, ask: float, bid_size: float, ask_size: float, day_end: DayEnd
    ) -> None:
        """Match the symbol's working orders against top of book."""
        if self.tiers.get(symbol, BAR) != QUOTE:
            return
        rules, rnd = self.rules, self.rng.random
        buy_cap = ask_size if ask_size > 0 else _UNLIMITED  # displayed size, when the source gives it
        sell_cap = bid_size if bid_size > 0 else _UNLIMITED
        self._match(
            symbol,
            ts,
            ts + 1,
            day_end,
            lambda order: match_quote(order, bid, ask, rules, rnd),
            buy_cap,
            sell_cap,
            FillTier.QUOTE,
        )

    def _match(
        self,
        symbol: str,
        ts: int,
        end: int,
        day_end: DayEnd,
        decide: Callable[[Order], Match],
        buy_cap: float,
        sell_cap: float,
        tier: FillTier,
    ) -> None:
        orders = self.working.get(symbol)
        if not orders:
            return
        matches: list[tuple[Order, float, Liquidity]] = []
        for order in list(orders):
            status = order.status
            if order.active_ts >= end or not order.is_open:
                continue  # not yet in the market during this event
            if status is OrderStatus.PENDING:
                order.move_to(OrderStatus.WORKING, ts)
                self._note(order)
                if order.tif is TimeInForce.DAY:
                    order.day_end_ts = day_end(ts)
            elif order.tif is TimeInForce.DAY and ts >= order.day_end_ts:
                self._close(order, OrderStatus.EXPIRED, ts, "day order expired at the end of its trading day")
                continue
            found = decide(order)
            if found is None:
                order.rested = True
                continue
            matches.append((order, found[0], found[1]))
        if not matches:
            return
        ambiguous = self._worse_first(matches, tier)
        for order, price, liquidity in matches:
            if not order.is_open:
                continue
            qty = self._fillable(order, price, buy_cap if order.side is Side.BUY else sell_cap, ts)
            if qty <= 0.0:
                continue
            if order.side is Side.BUY:
                buy_cap -= qty
            else:
                sell_cap -= qty
            self._fill(order, qty, price, liquidity, max(ts, order.active_ts), tier, order.id in ambiguous)

    @staticmethod
    def _worse_first(matches: list[tuple[Order, float, Liquidity]], tier: FillTier) -> set[str]:
        """Order a bar's matches by the worse path; return the ids of the fills to flag ambiguous.

        A bar does not say whether its high or its low came first. Where a stop and a limit on the same side
        could both fill in it (a position's stop-loss and its target, say the two exits of a bracket), the
        stop is assumed to have come first and its fill is flagged; a bracket's target is then cancelled
        (one-cancels-other), a plain limit fills after it if volume and position rules allow.
        """
        if tier is not FillTier.BAR:
            return set()
        ambiguous: set[str] = set()
        for side in (Side.BUY, Side.SELL):
            stops = [m[0].id for m in matches if m[0].side is side and is_adverse_exit(m[0])]
            if stops and any(m[0].side is side and m[0].type is OrderType.LIMIT for m in matches):
                ambiguous.update(stops)
        if ambiguous:
            matches.sort(key=lambda m: m[0].id not in ambiguous)  # stable: the stops first
        return ambiguous

    def _fillable(self, order: Order, price: float, room: float, ts: int) -> float:
        """The quantity that can fill now: volume cap, lot size, cash and short-sale rules."""
        rules = self.rules
        qty = floor_to_step(min(order.remaining, room), rules.lot_size)
        if qty <= 0.0:
            return 0.0
        pos = self.portfolio.positions.get(order.symbol)
        held = pos.qty_f if pos is not None else 0.0
        if order.side is Side.SELL and not rules.allow_short:
            qty = floor_to_step(min(qty, held), rules.lot_size)  # never below flat: wait for the position
            if qty <= 0.0:
                return 0.0
        if order.side is Side.BUY and held >= 0.0:
            cash = self.portfolio.cash_f
            unit = price * (1.0 + float(rules.fees.taker_rate)) + float(rules.fees.per_unit)
            affordable = floor_to_step(max(cash - float(rules.fees.minimum), 0.0) / unit, rules.lot_size)
            if affordable < qty:
                qty = affordable
                if qty <= 0.0:
                    self._close(order, OrderStatus.CANCELLED, ts, "insufficient cash at fill")
        return qty

    def _fill(
        self,
        order: Order,
        qty: float,
        price: float,
        liq: Liquidity,
        ts: int,
        tier: FillTier,
        ambiguous: bool,
    ) -> None:
        price = round_to_step(price, self.rules.tick_size)
        fees = self.rules.fees
        raw = fees.raw(qty, price, liq)
        fee = fees.fee(qty, price, liq, order.fees, order.raw_fees)
        self._fill_seq += 1
        fill = Fill(
            id=f"{self.run_id}-F{self._fill_seq:07d}",  # zero-padded: sorts in the order fills happened
            order_id=order.id,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            fee=fee,
            ts=ts,
            liquidity=liq,
            tier=tier,
            ambiguous=ambiguous,
        )
        order.record_fill(qty, price, fee, ts, raw)
        self._note(order)
        self.fills.append((fill, order, self.portfolio.apply_fill(fill)))
        if order.oco_id is not None:
            self._reduce_sibling(order, ts)
        if order.status is OrderStatus.FILLED:
            self._retire(order, ts)

    def _reduce_sibling(self, order: Order, ts: int) -> None:
        assert order.oco_id is not None
        sibling = self.orders.get(order.oco_id)
        if sibling is None or not sibling.is_open:
            return
        if order.status is OrderStatus.FILLED:
            self._close(sibling, OrderStatus.CANCELLED, ts, f"one-cancels-other: {order.id} filled")
        else:
            sibling.qty = sibling.filled_qty + order.remaining
            self._note(sibling)

    def _close(self, order: Order, status: OrderStatus, ts: int, reason: str) -> None:
        order.move_to(status, ts, reason)
        self._note(order)
        self._retire(order, ts)

    def _retire(self, order: Order, ts: int) -> None:
        """Forget a finished order; release a bracket's exits once its entry is done."""
        if self.orders.pop(order.id, None) is not None:
            self.working[order.symbol].remove(order)
        if order.stop_loss is None and order.take_profit is None:
            return
        cancelled = order.status is OrderStatus.CANCELLED
        if order.filled_qty > 0.0 and (self._release_exits_on_cancel or not cancelled):
            self._release_exits(order, ts)

    def _release_exits(self, entry: Order, ts: int) -> None:
        exit_side = Side.SELL if entry.side is Side.BUY else Side.BUY
        legs: list[Order] = []
        if entry.stop_loss is not None:
            legs.append(self._exit(entry, exit_side, OrderType.STOP, ts, stop=entry.stop_loss))
        if entry.take_profit is not None:
            legs.append(self._exit(entry, exit_side, OrderType.LIMIT, ts, limit=entry.take_profit))
        if len(legs) == 2:
            legs[0].oco_id, legs[1].oco_id = legs[1].id, legs[0].id
        for leg in legs:
            self.accept(leg)

    def _exit(
        self,
        entry: Order,
        side: Side,
        kind: OrderType,
        ts: int,
        *,
        stop: float | None = None,
        limit: float | None = None,
    ) -> Order:
        leg = Order(
            id=self.next_order_id(),
            symbol=entry.symbol,
            side=side,
            qty=entry.filled_qty,
            type=kind,
            created_ts=ts,
            active_ts=ts,  # working from the next event on, never on the entry's own event
            limit=limit,
            stop=stop,
            tif=TimeInForce.GTC,
            parent_id=entry.id,
        )
        leg.rested = True
        return leg
