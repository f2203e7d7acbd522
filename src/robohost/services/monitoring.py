"""What the runs and the server report to the metrics and the alerts, without touching the engine's hot path.

- ``ObservedWriter`` wraps a run's journal writer: at each commit (every ``commit_every`` events; every bar
  live) it counts the batch's events, orders, rejections, fills and halts for the metrics, notes equity and
  P&L, and sends the opt-in trading notifications (each fill, a halt).
- ``LatencyMetricsProbe`` is the engine's ``LatencyProbe``: a live bar's arrival at the socket to the order
  it caused being accepted, into the latency histogram.
- ``ObservedJobStore`` is the runner's ``JobStore`` that also reports each job's outcome (metrics; a job
  that succeeds clears its failure alert).
- ``daily_summary`` is the day's P&L message the report chore sends after the close.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from robohost.adapters.db.jobs import JobStore
from robohost.adapters.db.monitoring import day_figures
from robohost.adapters.metrics import Metrics
from robohost.engine.records import Batch, Checkpoint, RunRecord
from robohost.services.paper import WriterJournal

log = logging.getLogger("robohost.monitoring")

Notify = Callable[[str, str, dict[str, Any], str | None], None]
"""``notify(kind, title, details, robot)``: a trading notification (``AlertDispatcher.notify``)."""
MAX_FILL_NOTICES = 20
"""Fill notifications per commit at most; the rest are summed up in one more (a replay fills thousands)."""


class ObservedWriter:
    """A ``WriterJournal`` that reports each commit to the metrics and the trading notifications."""

    def __init__(
        self,
        inner: WriterJournal,
        robot: str,
        starting_cash: Decimal,
        live: bool,
        metrics: Metrics | None = None,
        notify: Notify | None = None,
        fills: bool = False,
        halts: bool = False,
    ) -> None:
        self.inner = inner
        self.robot = robot
        self.starting_cash = float(starting_cash)
        self.live = live
        self.metrics = metrics
        self.notify = notify
        self.notify_fills = fills and notify is not None
        self.notify_halts = halts and notify is not None
        self._events = 0
        self._rate_mark: tuple[float, int] | None = None
        self._realized: dict[str, float] = {}
        self._failed = False
        if metrics is not None:  # every series of the robot exists from the start, at 0
            for counter in (metrics.events, metrics.orders, metrics.fills, metrics.rejections, metrics.halts):
                counter.labels(robot)

    def start_run(self, run: RunRecord) -> None:
        """Record a new run."""
        self.starting_cash = float(run.starting_cash)
        self.inner.start_run(run)

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The run's last checkpoint (its event count is where this run's counting starts)."""
        checkpoint = self.inner.load_checkpoint(run_id)
        if checkpoint is not None:
            self._events = checkpoint.events_processed
        return checkpoint

    def commit(self, batch: Batch) -> None:
        """Report the batch, then hand it on."""
        try:
            self._observe(batch)
        except Exception:  # observation must never cost a commit: said once per run
            if not self._failed:
                self._failed = True
                log.warning(
                    "metrics and notifications of robot %s stopped: cannot read a commit", self.robot, exc_info=True
                )
        self.inner.commit(batch)

    def finish_run(self, run_id: str, status: str, ended_at: int, summary: dict[str, object]) -> None:
        """Mark the run finished."""
        self.inner.finish_run(run_id, status, ended_at, summary)

    def flush(self) -> None:
        """Wait until every commit handed over is durable."""
        self.inner.flush()

    def close(self) -> None:
        """Flush and release the writer; a live run's feed lag is no longer reported."""
        if self.metrics is not None and self.live:
            self.metrics.live_event(self.robot, None)
        self.inner.close()

    def _observe(self, batch: Batch) -> None:
        placed = rejected = 0
        halts: list[dict[str, Any]] = []
        for event in batch.events:
            kind = event.type
            if kind == "order_pending":
                placed += 1
            elif kind == "order_rejected":
                placed += 1
                rejected += 1
            elif kind == "halted":
                halts.append(event.data)
        metrics = self.metrics
        if metrics is not None:
            robot = self.robot
            checkpoint = batch.checkpoint
            if checkpoint is not None:
                done = checkpoint.events_processed - self._events
                self._events = checkpoint.events_processed
                if done > 0:
                    metrics.events.labels(robot).inc(done)
                self._throughput(checkpoint.events_processed)
                if self.live:
                    metrics.live_event(robot, checkpoint.ts / 1e9)
            if placed:
                metrics.orders.labels(robot).inc(placed)
            if rejected:
                metrics.rejections.labels(robot).inc(rejected)
            if batch.fills:
                metrics.fills.labels(robot).inc(len(batch.fills))
            if halts:
                metrics.halts.labels(robot).inc(len(halts))
            if batch.equity:
                equity = batch.equity[-1]
                metrics.equity.labels(robot).set(equity)
                metrics.pnl.labels(robot).set(equity - self.starting_cash)
            if batch.positions:
                for symbol, position in batch.positions.items():
                    self._realized[symbol] = float(position.realized_pnl)
                metrics.realized_pnl.labels(robot).set(sum(self._realized.values()))
        if self.notify is not None:
            self._notifications(batch, halts)

    def _throughput(self, processed: int) -> None:
        assert self.metrics is not None
        now = time.monotonic()
        if self._rate_mark is None:
            self._rate_mark = (now, processed)
            return
        since, count = self._rate_mark
        if now - since >= 1.0:
            self.metrics.throughput.labels(self.robot).set((processed - count) / (now - since))
            self._rate_mark = (now, processed)

    def _notifications(self, batch: Batch, halts: list[dict[str, Any]]) -> None:
        assert self.notify is not None
        if self.notify_fills and batch.fills:
            for fill in batch.fills[:MAX_FILL_NOTICES]:
                title = f"{self.robot}: {fill.side} {fill.qty:g} {fill.symbol} @ {fill.price:g}"
                details = {
                    "order_id": fill.order_id,
                    "fill_id": fill.id,
                    "fee": str(fill.fee),
                    "realized_pnl": str(fill.realized_pnl),
                    "liquidity": fill.liquidity,
                }
                self.notify("fill", title, details, self.robot)
            more = len(batch.fills) - MAX_FILL_NOTICES
            if more > 0:
                self.notify("fill", f"{self.robot}: and {more} more fills", {"fills": len(batch.fills)}, self.robot)
        if self.notify_halts:
            for halt in halts:
                title = f"{self.robot} halted ({halt.get('rule')}): {halt.get('reason')}"
                self.notify("halt", title, dict(halt), self.robot)


class LatencyMetricsProbe:
    """The engine's ``LatencyProbe`` feeding ``robohost_event_to_order_seconds`` (live bars with an arrival time)."""

    def __init__(self, metrics: Metrics, robot: str, keep: int = 4096) -> None:
        self.histogram = metrics.latency.labels(robot)
        self.keep = keep
        self._arrivals: OrderedDict[int, int] = OrderedDict()

    def arrived(self, seq: int, arrival_ns: int) -> None:
        """Remember when bar ``seq`` arrived (the newest ``keep`` only)."""
        self._arrivals[seq] = arrival_ns
        if len(self._arrivals) > self.keep:
            self._arrivals.popitem(last=False)

    def accepted(self, seq: int) -> None:
        """An order caused by bar ``seq`` was accepted now."""
        arrival = self._arrivals.get(seq)
        if arrival:
            self.histogram.observe((time.monotonic_ns() - arrival) / 1e9)

    def committed(self, seq: int, commit_ns: int) -> None:
        """Not measured here."""


class ObservedJobStore(JobStore):
    """The job store that also reports ``(robot, job, outcome)`` when a job ends (or is missed)."""

    def __init__(self, engine: sa.Engine, on_outcome: Callable[[str, str, str], None]) -> None:
        super().__init__(engine)
        self.on_outcome = on_outcome

    def claim(self, **values: Any) -> int | None:
        """Insert the job's row; a job recorded as missed is reported."""
        row_id = super().claim(**values)
        if row_id is not None and values.get("outcome", "running") != "running":
            self._report(values["robot"], values["job"], values["outcome"])
        return row_id

    def finish(self, job_id: int, outcome: str, now: int, error: str | None = None, run_id: str | None = None) -> None:
        """Record how the job ended, and report it."""
        super().finish(job_id, outcome, now, error, run_id)
        row = self.get(job_id)
        if row is not None:
            self._report(row.robot, row.job, outcome)

    def _report(self, robot: str, job: str, outcome: str) -> None:
        try:
            self.on_outcome(robot, job, outcome)
        except Exception:  # reporting must never fail the runner
            log.warning("job outcome of %s %s not reported", robot, job, exc_info=True)


def daily_summary(engine: sa.Engine, robot: str, timezone: str, now: datetime) -> tuple[str, dict[str, Any]] | None:
    """The title and details of the robot's P&L today (in its time zone), or None without a run."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    start = datetime(local.year, local.month, local.day, tzinfo=zone)
    end = start + timedelta(days=1)
    figures = day_figures(engine, robot, int(start.timestamp() * 1e9), int(min(end, now).timestamp() * 1e9))
    if figures is None:
        return None
    before = figures.equity_before if figures.equity_before is not None else figures.starting_cash
    equity = figures.equity_end if figures.equity_end is not None else before
    pnl = equity - before
    change = pnl / before * 100 if before else 0.0
    title = f"{robot} {start:%Y-%m-%d}: P&L {pnl:+,.2f} ({change:+.2f}%), equity {equity:,.2f}"
    details = {
        "day": f"{start:%Y-%m-%d}",
        "run_id": figures.run_id,
        "pnl": round(pnl, 2),
        "pnl_percent": round(change, 4),
        "equity": round(equity, 2),
        "fills": figures.fills,
        "realized_pnl": round(figures.realized, 2),
        "fees": round(figures.fees, 2),
        "total_pnl": round(equity - figures.starting_cash, 2),
    }
    return title, details
