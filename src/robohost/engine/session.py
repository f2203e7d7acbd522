"""The run loop: feed -> validation -> broker -> portfolio -> strategy -> risk -> broker, journalled.

One loop serves replay and live runs. Every ``commit_every`` events the session hands the journal
one batch (orders, fills, positions, equity points, risk events, rejected data, journal lines and a
checkpoint of the whole engine state) to write atomically; a run killed at any instant resumes from
its last checkpoint, regenerating the same client order ids, so nothing is lost or sent twice. A live
run may put a due commit off while ``defer_commit()`` says so (the run service's group commit: while the
next event is at hand, for a few milliseconds at most), so that events arriving together share a commit.
No I/O of its own: the feed, journal, clock and logger are ports.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from robohost.domain.market import (
    BAR,
    KIND_NAMES,
    QUOTE,
    TRADE,
    Bar,
    Trade,
    bar_problem,
    quote_problem,
    trade_problem,
)
from robohost.domain.orders import Fill, Order, OrderStatus
from robohost.domain.portfolio import Position
from robohost.engine.clock import TradingDays
from robohost.engine.history import BarHistory, SeqHistory
from robohost.engine.ports import Clock, Journal, LatencyProbe, MarketEvent, MarketFeed
from robohost.engine.pretrade import check_order
from robohost.engine.records import (
    Batch,
    Checkpoint,
    EventRecord,
    FillRecord,
    OrderRecord,
    PositionRecord,
    RejectedDataRecord,
    RiskEventRecord,
    RunRecord,
)
from robohost.engine.state import EngineState, freeze
from robohost.engine.strategy import Context, Logger

_INF = math.inf
_JOURNALLED = frozenset({OrderStatus.PENDING, OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED})
"""Order statuses that get a journal line; fills have their own line, and reaching the market is implied."""


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """How a session runs: commit cadence, reaction to strategy errors, market time zone."""

    commit_every: int = 5000
    on_strategy_error: str = "halt"  # or "skip"
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class SessionResult:
    """How a run ended."""

    status: str  # "completed", "halted", "stopped"
    events_processed: int
    rejected_count: int
    round_trips: int
    halt_reason: str | None
    final_equity: float
    max_drawdown: float  # fraction of the peak, over the stored equity points


class Session:
    """Runs one robot over one feed, from a fresh state or a restored checkpoint."""

    def __init__(
        self,
        run: RunRecord,
        state: EngineState,
        ctx: Context,
        feed: MarketFeed,
        journal: Journal,
        clock: Clock,
        log: Logger,
        settings: SessionSettings,
    ) -> None:
        self.run = run
        self.state = state
        self.ctx = ctx
        self.feed = feed
        self.journal = journal
        self.clock = clock
        self.log = log
        self.settings = settings
        self.batch = Batch(run.id)
        self.days = TradingDays(settings.timezone)
        self.stop_requested = False
        self.progress: Callable[[int], None] | None = None
        self.probe: LatencyProbe | None = None  # told of each accepted order (benchmarks only)
        self.defer_commit: Callable[[], bool] | None = None  # asked when a commit is due: put it off?
        self._marked: dict[str, float] = {}  # the last price each held position was committed with
        self._bars = [Bar(s, 0, 0.0, 0.0, 0.0, 0.0, 0.0) for s in state.symbols]
        self._trades = [Trade(s, 0, 0.0, 0.0) for s in state.symbols]
        self._intervals = [feed.intervals_ns.get(s, 0) for s in state.symbols]
        ctx.event_columns = feed.event_columns()
        kinds = feed.kinds
        for s in state.symbols:
            present = kinds.get(s, frozenset({BAR}))
            state.broker.tiers[s] = QUOTE if QUOTE in present else TRADE if TRADE in present else BAR

    # -- the loop -------------------------------------------------------------------------------
    def execute(self) -> SessionResult:
        """Run until the feed ends, the robot halts, or ``stop_requested`` is set."""
        state = self.state
        if not state.started:
            self._event("run_started", state.seq, self.clock.now_ns(), {"strategy": self.run.strategy})
            self._call(lambda: state.strategy.on_start(self.ctx), "on_start", state.seq)
            state.started = True
        else:
            self._event("run_resumed", state.seq, self.clock.now_ns(), {"from_seq": state.seq + 1})
        if state.halted is None:
            self._loop(self.feed.events(state.seq + 1))
        stopped = self.stop_requested and state.halted is None
        if state.halted is None and not stopped:
            self._call(lambda: state.strategy.on_stop(self.ctx), "on_stop", state.seq)
        if state.equity_point is not None:
            self._push_equity(*state.equity_point)
            state.equity_point = None
        self._commit()
        status = "halted" if state.halted else "stopped" if stopped else "completed"
        return SessionResult(
            status,
            state.seq + 1,
            state.rejected_count,
            state.portfolio.round_trips,
            state.halted,
            state.portfolio.equity_f(),
            state.max_drawdown,
        )

    def _loop(self, events: Iterable[MarketEvent]) -> None:
        state = self.state
        broker = state.broker
        working = broker.working
        portfolio = state.portfolio
        positions = portfolio.positions
        equity_of = portfolio.equity_f
        on_bar = state.strategy.on_bar
        on_trade = state.strategy.on_trade
        ctx = self.ctx
        advance = self.clock.advance
        symbols = state.symbols
        intervals = self._intervals
        bars = self._bars
        seq_appends = [h.seqs.append if isinstance(h, SeqHistory) else None for h in state.histories]
        value_histories = [h if isinstance(h, BarHistory) else None for h in state.histories]
        indicators = state.indicators
        last_bar_ts, last_trade_ts, last_quote_ts = state.last_ts
        last_price = state.last_price
        risk = state.risk
        daily_limit = risk.limits.max_daily_loss
        commit_every = self.settings.commit_every
        defer = self.defer_commit
        day_end_after = self.days.day_end_after
        day_end = state.day_end
        batch = self.batch
        next_commit = state.seq + commit_every
        pt_now, pt_equity, pt_cash = state.equity_point or (-1, 0.0, 0.0)
        now = pt_now
        seq = state.seq
        for seq, kind, si, ts, f1, f2, f3, f4, f5 in events:
            if kind == BAR:
                if not (0.0 < f3 <= f1 <= f2 < _INF and f3 <= f4 <= f2 and 0.0 <= f5 < _INF) or ts <= last_bar_ts[si]:
                    self._reject(
                        si, kind, ts, bar_problem(ts, last_bar_ts[si], f1, f2, f3, f4, f5), (f1, f2, f3, f4, f5)
                    )
                    continue
                last_bar_ts[si] = ts
                now = ts + intervals[si]
                advance(now)
                if now >= day_end:
                    day_end = self._new_day(now)
                symbol = symbols[si]
                if working.get(symbol):
                    broker.on_bar(symbol, ts, now, f1, f2, f3, f5, day_end_after)
                    if broker.changed or broker.fills:
                        self._drain(seq, now)
                last_price[si] = f4
                pos = positions.get(symbol)
                if pos is not None:
                    pos.last_price = f4
                remember = seq_appends[si]
                if remember is not None:
                    remember(seq)  # a replay's history: the event number is enough
                else:
                    hist = value_histories[si]
                    if hist is not None:
                        hist.append(ts, f1, f2, f3, f4, f5)
                for ind in indicators[si]:
                    ind.update(f4)
                bar = bars[si]
                bar.ts = ts
                bar.open = f1
                bar.high = f2
                bar.low = f3
                bar.close = f4
                bar.volume = f5
                try:
                    on_bar(bar, ctx)
                except Exception as exc:
                    self._strategy_failed(exc, "on_bar", seq, now)
            elif kind == TRADE:
                problem = trade_problem(ts, last_trade_ts[si], f1, f2)
                if problem is not None:
                    self._reject(si, kind, ts, problem, (f1, f2))
                    continue
                last_trade_ts[si] = ts
                now = ts
                advance(now)
                if now >= day_end:
                    day_end = self._new_day(now)
                symbol = symbols[si]
                if working.get(symbol):
                    broker.on_trade(symbol, ts, f1, f2, day_end_after)
                    if broker.changed or broker.fills:
                        self._drain(seq, now)
                last_price[si] = f1
                pos = positions.get(symbol)
                if pos is not None:
                    pos.last_price = f1
                trade = self._trades[si]
                trade.ts = ts
                trade.price = f1
                trade.size = f2
                try:
                    on_trade(trade, ctx)
                except Exception as exc:
                    self._strategy_failed(exc, "on_trade", seq, now)
            else:
                problem = quote_problem(ts, last_quote_ts[si], f1, f2, f3, f4)
                if problem is not None:
                    self._reject(si, kind, ts, problem, (f1, f2, f3, f4))
                    continue
                last_quote_ts[si] = ts
                now = ts
                advance(now)
                if now >= day_end:
                    day_end = self._new_day(now)
                symbol = symbols[si]
                if working.get(symbol):
                    broker.on_quote(symbol, ts, f1, f2, f3, f4, day_end_after)
                    if broker.changed or broker.fills:
                        self._drain(seq, now)
                mid = 0.5 * (f1 + f2)
                last_price[si] = mid
                pos = positions.get(symbol)
                if pos is not None:
                    pos.last_price = mid
            if ctx.requests:
                self._submit(seq, now)
            if broker.changed or broker.fills:
                self._drain(seq, now)
            # equity: one point per timestamp, pushed to the batch once its time is over
            if now != pt_now and pt_now >= 0:
                batch.equity_ts.append(pt_now)
                batch.equity.append(pt_equity)
                batch.cash.append(pt_cash)
            pt_now = now
            pt_equity = equity_of()
            pt_cash = portfolio.cash_f
            if daily_limit is not None:
                breach = risk.check_equity(pt_equity)
                if breach is not None:
                    self._halt(breach[0], breach[1], seq, now)
            if seq >= next_commit or state.halted is not None:
                if defer is not None and state.halted is None and defer():
                    continue  # a group commit: the next event is here already
                state.seq = seq
                state.equity_point = (pt_now, pt_equity, pt_cash)
                self._commit()
                batch = self.batch
                next_commit = seq + commit_every
                if state.halted is not None or self.stop_requested:
                    return
        state.seq = seq
        if pt_now >= 0:
            state.equity_point = (pt_now, pt_equity, pt_cash)

    # -- helpers off the hot path ---------------------------------------------------------------
    def _new_day(self, now: int) -> int:
        state = self.state
        state.day_end = self.days.day_end_after(now)
        state.risk.start_day(state.portfolio.equity_f())
        return state.day_end

    def _push_equity(self, ts: int, equity: float, cash: float) -> None:
        self.batch.equity_ts.append(ts)
        self.batch.equity.append(equity)
        self.batch.cash.append(cash)

    def _reject(self, si: int, kind: int, ts: int, reason: str | None, values: tuple[float, ...]) -> None:
        state = self.state
        state.rejected_count += 1
        symbol = state.symbols[si]
        why = reason or "invalid values"
        self.batch.rejected.append(
            RejectedDataRecord(self.run.id, self.run.robot, symbol, KIND_NAMES[kind], ts, why, values)
        )
        if state.rejected_count <= 20 or state.rejected_count % 1000 == 0:
            self.log.warning(
                "rejected %s of %s at %d: %s (%d rejected so far)",
                KIND_NAMES[kind],
                symbol,
                ts,
                why,
                state.rejected_count,
            )

    def _call(self, hook: Callable[[], None], name: str, seq: int) -> None:
        """Call a strategy hook outside the loop, then submit what it queued."""
        now = self.clock.now_ns()
        try:
            hook()
        except Exception as exc:
            self._strategy_failed(exc, name, seq, now)
        if self.ctx.requests:
            self._submit(seq, now)
        self._drain(seq, now)

    def _strategy_failed(self, exc: Exception, hook: str, seq: int, now: int) -> None:
        """Record the robot's exception; drop what it queued; skip or halt by config."""
        self.ctx.requests.clear()
        trace = "".join(traceback.format_exception(exc))
        self._event("strategy_error", seq, now, {"hook": hook, "error": repr(exc), "traceback": trace})
        self.log.error("strategy error in %s: %r", hook, exc)
        if self.settings.on_strategy_error == "halt":
            self._halt("strategy_error", f"the strategy raised in {hook}: {exc!r}", seq, now)

    def _halt(self, rule: str, reason: str, seq: int, now: int) -> None:
        state = self.state
        if state.halted is not None:
            return
        state.halted = reason
        state.broker.cancel_all(now, "robot halted")
        self.batch.risk_events.append(RiskEventRecord(self.run.id, self.run.robot, now, "halt", rule, reason))
        self._event("halted", seq, now, {"rule": rule, "reason": reason})
        self.log.error("robot %s halted: %s", self.run.robot, reason)
        self._drain(seq, now)

    def _submit(self, seq: int, now: int) -> None:
        ctx = self.ctx
        requests = list(ctx.requests)
        ctx.requests.clear()
        broker = self.state.broker
        for request in requests:
            if isinstance(request, str):
                if not broker.cancel(request, now):
                    self._event("cancel_ignored", seq, now, {"order_id": request, "reason": "not open"})
                continue
            self._place(request, seq, now)

    def _place(self, order: Order, seq: int, now: int) -> None:
        broker = self.state.broker
        refusal = check_order(self.state, order, now)
        if refusal is None:
            broker.accept(order)
            if self.probe is not None:
                self.probe.accepted(seq)
            return
        broker.reject(order, now, refusal.reason)
        if refusal.rule is not None:
            self.batch.risk_events.append(
                RiskEventRecord(self.run.id, self.run.robot, now, "rejected", refusal.rule, refusal.reason, order.id)
            )

    def _drain(self, seq: int, now: int) -> None:
        """Turn what the broker reports into records, and tell the robot of its fills."""
        state = self.state
        broker = state.broker
        run_id, robot = self.run.id, self.run.robot
        while broker.changed or broker.fills:
            changed = broker.changed[:]
            broker.changed.clear()
            fills = broker.fills[:]
            broker.fills.clear()
            for order, status in changed:
                self.batch.orders[order.id] = _order_record(order, run_id, robot)
                if status in _JOURNALLED:
                    self._event(f"order_{status}", seq, now, _order_event(order, status))
            for fill, order, realized in fills:
                self._record_fill(fill, order, realized, seq)
            for fill, _, _ in fills:
                try:
                    state.strategy.on_fill(fill, self.ctx)
                except Exception as exc:
                    self._strategy_failed(exc, "on_fill", seq, now)
                if self.ctx.requests:
                    self._submit(seq, now)

    def _record_fill(self, fill: Fill, order: Order, realized: Decimal, seq: int) -> None:
        """Add a booked fill, the position it left and its journal line to the batch."""
        pos = self.state.portfolio.positions[fill.symbol]
        run_id, robot = self.run.id, self.run.robot
        self.batch.fills.append(
            FillRecord(
                fill.id,
                run_id,
                robot,
                fill.order_id,
                fill.symbol,
                str(fill.side),
                fill.qty,
                fill.price,
                fill.fee,
                fill.ts,
                str(fill.liquidity),
                str(fill.tier),
                fill.ambiguous,
                realized,
            )
        )
        self.batch.positions[fill.symbol] = self._position_record(pos, fill.ts)
        self._event(
            "fill",
            seq,
            fill.ts,
            {
                "order_id": order.id,
                "fill_id": fill.id,
                "qty": fill.qty,
                "price": fill.price,
                "fee": str(fill.fee),
                "tier": str(fill.tier),
                "ambiguous": fill.ambiguous,
                "order_status": str(order.status),
            },
        )

    def _position_record(self, pos: Position, ts: int) -> PositionRecord:
        return PositionRecord(
            self.run.id, self.run.robot, pos.symbol, pos.qty, pos.avg_price, pos.realized, pos.last_price, ts
        )

    def _event(self, type_: str, seq: int, ts: int, data: dict[str, Any]) -> None:
        self.batch.events.append(EventRecord(self.run.id, seq, ts, type_, data))

    def _commit(self) -> None:
        state = self.state
        if self.batch.equity:
            curve = np.asarray(self.batch.equity, dtype=np.float64)
            peaks = np.maximum.accumulate(np.maximum(curve, state.peak_equity))
            state.peak_equity = float(peaks[-1])
            state.max_drawdown = max(state.max_drawdown, float((1.0 - curve / peaks).max()))
        state.events_processed = state.seq + 1
        for hist in state.histories:
            if isinstance(hist, SeqHistory):
                hist.trim()
        now = self.clock.now_ns()
        positions, marked = self.batch.positions, self._marked
        for pos in state.portfolio.held:  # those whose last prices moved since their last record
            symbol = pos.symbol
            if symbol in positions or marked.get(symbol) != pos.last_price:
                marked[symbol] = pos.last_price
                positions[symbol] = self._position_record(pos, now)
        self.batch.checkpoint = Checkpoint(
            self.run.id,
            state.seq,
            self.clock.now_ns(),
            state.events_processed,
            state.rejected_count,
            freeze(state, {"ctx": self.ctx, "log": self.log}),
        )
        self.journal.commit(self.batch)
        self.batch = Batch(self.run.id)
        if self.progress is not None:
            self.progress(state.events_processed)


def _order_record(order: Order, run_id: str, robot: str) -> OrderRecord:
    return OrderRecord(
        id=order.id,
        run_id=run_id,
        robot=robot,
        symbol=order.symbol,
        side=str(order.side),
        type=str(order.type),
        qty=order.qty,
        limit_price=order.limit,
        stop_price=order.stop,
        tif=str(order.tif),
        status=str(order.status),
        filled_qty=order.filled_qty,
        avg_fill_price=order.avg_price if order.filled_qty else None,
        fees=order.fees,
        created_ts=order.created_ts,
        updated_ts=order.updated_ts,
        parent_id=order.parent_id,
        oco_id=order.oco_id,
        reason=order.reason,
    )


def _order_event(order: Order, status: OrderStatus) -> dict[str, Any]:
    data: dict[str, Any] = {
        "order_id": order.id,
        "symbol": order.symbol,
        "side": str(order.side),
        "type": str(order.type),
        "qty": order.qty,
    }
    if status is not OrderStatus.PENDING and order.reason:
        data["reason"] = order.reason
    return data
