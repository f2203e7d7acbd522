"""Run a robot now: start a new paper run or resume an unfinished one, then record how it ended.

The facade over engine + journal that the CLI (and later the scheduler and the web app) call.
Adapters arrive as factories from ``robohost.bootstrap``; nothing here opens files or sockets.
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal, Protocol

from sqlalchemy.engine import make_url

from robohost.adapters.db.journal import SqlJournal
from robohost.adapters.db.queries import ReadModel, RunRow
from robohost.config.models import RobotConfig
from robohost.domain.fill_model import FeeSchedule, FillRules
from robohost.domain.market import BAR
from robohost.domain.portfolio import Portfolio
from robohost.domain.risk import RiskGate, RiskLimits
from robohost.engine.clock import SimClock
from robohost.engine.paper_broker import PaperBroker
from robohost.engine.ports import Journal, LatencyProbe, LiveMarketFeed, MarketFeed, StatusHook
from robohost.engine.records import Batch, Checkpoint, EventRecord, RunRecord
from robohost.engine.session import Session, SessionResult, SessionSettings
from robohost.engine.state import EngineState, thaw
from robohost.engine.strategy import Context, Logger, Strategy
from robohost.errors import RobotHaltedError, StateError
from robohost.services.status import running_reason
from robohost.services.summary import RunSummary

ResumeMode = Literal["auto", "resume", "new"]
LIVE_COMMIT_LINGER_S = 0.002
LIVE_COMMIT_GROUP_S = 0.010
"""A live run commits after every event, except that while the next one is at hand, or comes within
``LIVE_COMMIT_LINGER_S``, it is processed first, for at most ``LIVE_COMMIT_GROUP_S``: a group commit, so that
a burst of events (or a steady stream) shares commits and every event is durable within a few milliseconds."""
_ROUTINE_FEED_STATUSES = frozenset({"connected", "subscribed", "gap_filled"})
FeedFactory = Callable[[RobotConfig], MarketFeed]
StrategyFactory = Callable[[str], type[Strategy]]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What ``PaperTrading.run`` did."""

    run_id: str
    robot: str
    status: str
    resumed_from: int | None  # the event the run resumed after, if it resumed
    result: SessionResult
    summary: RunSummary


def fill_rules(cfg: RobotConfig) -> FillRules:
    """Translate the robot's configuration into the fill model's rules."""
    fees = cfg.fees
    hundred = Decimal(100)
    maker = fees.maker_percent if fees.maker_percent is not None else fees.percent
    taker = fees.taker_percent if fees.taker_percent is not None else fees.percent
    f = cfg.fills
    return FillRules(
        latency_ns=int(f.latency_ms * 1_000_000),
        slippage_bps=f.slippage_bps,
        slippage_range_fraction=f.slippage_range_fraction,
        touch_fill_probability=f.touch_fill_probability,
        participation=f.participation,
        allow_short=f.allow_short,
        tick_size=f.tick_size,
        lot_size=f.lot_size,
        fees=FeeSchedule(
            per_unit=fees.per_share, maker_rate=maker / hundred, taker_rate=taker / hundred, minimum=fees.minimum
        ),
    )


def risk_limits(cfg: RobotConfig) -> RiskLimits:
    """Translate the robot's configuration into risk limits."""
    r = cfg.risk
    return RiskLimits(
        max_position=r.max_position,
        max_position_notional=r.max_position_notional,
        max_gross_exposure=r.max_gross_exposure,
        max_order_notional=r.max_order_notional,
        max_orders_per_minute=r.max_orders_per_minute,
        max_daily_loss=r.max_daily_loss,
    )


class WriterJournal(Journal, Protocol):
    """A journal the session commits to, which must be flushed and closed after the run."""

    def flush(self) -> None:
        """Wait until every commit handed over is durable."""
        ...

    def close(self) -> None:
        """Flush, then release the writer."""
        ...


class InlineWriter:
    """Commits in the calling thread: the simplest writer, used where no writer process is wanted."""

    def __init__(self, journal: SqlJournal) -> None:
        self.journal = journal

    def start_run(self, run: RunRecord) -> None:
        """Record a new run."""
        self.journal.start_run(run)

    def commit(self, batch: Batch) -> None:
        """Commit ``batch`` now."""
        self.journal.commit(batch)

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The run's last checkpoint."""
        return self.journal.load_checkpoint(run_id)

    def finish_run(self, run_id: str, status: str, ended_at: int, summary: dict[str, object]) -> None:
        """Mark the run finished."""
        self.journal.finish_run(run_id, status, ended_at, summary)

    def flush(self) -> None:
        """Nothing is ever pending."""

    def close(self) -> None:
        """Nothing to release."""


class PaperTrading:
    """Runs one robot of a home, as a new run or by resuming its unfinished one."""

    def __init__(
        self,
        robot: str,
        cfg: RobotConfig,
        journal: SqlJournal,
        read: ReadModel,
        make_feed: FeedFactory,
        load_strategy: StrategyFactory,
        log: Logger,
        open_writer: Callable[[], WriterJournal] | None = None,
        alert: StatusHook | None = None,
        probe: LatencyProbe | None = None,
    ) -> None:
        self.robot = robot
        self.cfg = cfg
        self.journal = journal
        self.read = read
        self.make_feed = make_feed
        self.load_strategy = load_strategy
        self.log = log
        self.open_writer = open_writer or (lambda: InlineWriter(journal))
        self.alert: StatusHook = alert or (lambda kind, details: log.error("alert: %s %s", kind, details))
        self.probe = probe  # for the session; a probed feed and writer get it from their factories
        self.freeze_gc = False  # a replay too (robohost serve with its dashboard: requests must not wait for it)
        self.session: Session | None = None
        self.feed: MarketFeed | None = None
        self._run_id = ""
        self._stop_requested = False

    def stop(self) -> None:
        """Ask the running session to stop at its next commit (a live feed is closed so that it ends).

        Asked before the session exists (while the feed loads), the session stops at its first commit.
        """
        self._stop_requested = True
        if self.session is not None:
            self.session.stop_requested = True
        if isinstance(self.feed, LiveMarketFeed):
            self.feed.close()

    def _feed_status(self, kind: str, details: dict[str, object]) -> None:
        """What a live feed reports (from its own thread): journal it, mark the robot, alert on trouble."""
        now = time.time_ns()
        seq = self.session.state.seq if self.session is not None else -1
        self.journal.commit(Batch(self._run_id, events=[EventRecord(self._run_id, seq, now, f"feed_{kind}", details)]))
        if kind == "degraded":
            self.read.set_robot_state(self.robot, "degraded", f"live data stale: {details}", now)
            self.log.warning("robot %s degraded: live data stale (%s)", self.robot, details)
            self.alert(kind, details)
        elif kind == "recovered":
            self.read.set_robot_state(self.robot, "running", running_reason(), now)
            self.log.warning("robot %s: live data flow again (%s)", self.robot, details)
            self.alert(kind, details)  # clears the "degraded" alert (a recovery message)
        elif kind in _ROUTINE_FEED_STATUSES:
            self.log.info("feed of robot %s: %s %s", self.robot, kind, details)
        else:
            self.log.warning("feed of robot %s: %s %s", self.robot, kind, details)

    def run(self, mode: ResumeMode = "auto", progress: Callable[[int, int], None] | None = None) -> RunOutcome:
        """Run the robot to the end of its data (or a halt); resume an unfinished run unless ``mode='new'``."""
        state_row = self.read.robot_state(self.robot)
        if state_row is not None and state_row.status == "halted":
            raise RobotHaltedError(
                f"robot {self.robot!r} is halted ({state_row.reason}); "
                f"check it, then run 'robohost resume --robot {self.robot}'"
            )
        unfinished = self.read.unfinished_run(self.robot)
        if mode == "resume" and unfinished is None:
            raise StateError(f"robot {self.robot!r} has no unfinished run to resume")
        if mode == "new" and unfinished is not None:
            self.journal.abandon_run(unfinished.id, time.time_ns())
            self.log.warning("abandoned unfinished run %s to start a new one", unfinished.id)
            unfinished = None
        writer = self.open_writer()  # started early: a writer process boots while the data load
        try:
            run, state, result, resumed_from = self._execute(unfinished, writer, progress)
        finally:
            writer.close()
        summary = self._summary(run, state, result)
        if result.status == "stopped":
            reason = f"run {run.id} stopped after event {state.seq}; 'robohost run' resumes it"
            self.read.set_robot_state(self.robot, "idle", reason, time.time_ns())
            self.log.warning(reason)
        else:
            payload = {**summary.as_dict(), "status": result.status, "rejected": result.rejected_count}
            if result.halt_reason:
                payload["halt_reason"] = result.halt_reason
            self.journal.finish_run(run.id, result.status, time.time_ns(), payload)
        return RunOutcome(run.id, self.robot, result.status, resumed_from, result, summary)

    def _execute(
        self, unfinished: RunRow | None, writer: WriterJournal, progress: Callable[[int, int], None] | None
    ) -> tuple[RunRecord, EngineState, SessionResult, int | None]:
        feed = self.make_feed(self.cfg)
        self.feed = feed
        strategy_cls = self.load_strategy(self.cfg.strategy)
        clock = SimClock()
        ctx = Context(clock.now_ns, self.log)
        resumed_from: int | None = None
        if unfinished is not None:
            run, state, resumed_from = self._restore(unfinished, feed, strategy_cls, ctx, clock)
        else:
            run = self._new_run(feed)
            state = self._fresh_state(run, feed, strategy_cls)  # refuses bad params before a run exists
            self.journal.start_run(run)
        ctx.bind(state)
        self.read.set_robot_state(self.robot, "running", running_reason(), time.time_ns())
        if isinstance(feed, LiveMarketFeed):
            self._run_id = run.id
            feed.on_status = self._feed_status
            feed.resume_after_ts({s: ts for s, ts in zip(state.symbols, state.last_ts[BAR], strict=True) if ts >= 0})
        settings = SessionSettings(
            commit_every=1 if self.cfg.data.live else self.cfg.commit_every,  # live: every bar is durable
            on_strategy_error=self.cfg.on_strategy_error,
            timezone=self.cfg.timezone,
        )
        session = Session(run, state, ctx, feed, writer, clock, self.log, settings)
        self.session = session
        session.stop_requested = session.stop_requested or self._stop_requested  # a stop asked while loading
        session.probe = self.probe
        if isinstance(feed, LiveMarketFeed):
            session.defer_commit = group_commit(feed, LIVE_COMMIT_LINGER_S, LIVE_COMMIT_GROUP_S)
        if progress is not None:
            total = len(feed) if hasattr(feed, "__len__") else 0
            session.progress = lambda done: progress(done, total)
        live = isinstance(feed, LiveMarketFeed)
        if live or self.freeze_gc:  # a full collection walks every object of the libraries: tens of ms while bars wait
            gc.collect()
            gc.freeze()  # what exists now is never collected again during the run
        try:
            result = session.execute()
        finally:
            if live or self.freeze_gc:
                gc.unfreeze()
        writer.flush()
        return run, state, result, resumed_from

    def _new_run(self, feed: MarketFeed) -> RunRecord:
        cfg = self.cfg
        return RunRecord(
            id=uuid.uuid4().hex[:12],
            robot=self.robot,
            mode="live" if cfg.data.live else "replay",
            started_at=time.time_ns(),
            seed=cfg.seed,
            starting_cash=cfg.starting_cash,
            strategy=cfg.strategy,
            feed_signature=feed.signature,
            config=cfg.model_dump(mode="json", by_alias=True),
        )

    def _fresh_state(self, run: RunRecord, feed: MarketFeed, strategy_cls: type[Strategy]) -> EngineState:
        cfg = self.cfg
        portfolio = Portfolio(cfg.starting_cash)
        broker = PaperBroker(run.id, fill_rules(cfg), portfolio, run.seed)
        strategy = strategy_cls(cfg.params, where=f"robots.{self.robot}.params")
        by_seq = feed.event_columns() is not None  # a replay: history reads the feed, not copies of it
        return EngineState(feed.symbols, portfolio, broker, RiskGate(risk_limits(cfg)), strategy, cfg.history, by_seq)

    def _restore(
        self, row: RunRow, feed: MarketFeed, strategy_cls: type[Strategy], ctx: Context, clock: SimClock
    ) -> tuple[RunRecord, EngineState, int]:
        if row.feed_signature != feed.signature:
            raise StateError(
                f"run {row.id} of robot {self.robot!r} was started on different market data; "
                "restore that data, or start over with 'robohost run --new'"
            )
        run = RunRecord(
            id=row.id,
            robot=row.robot,
            mode=row.mode,
            started_at=row.started_at,
            seed=row.seed,
            starting_cash=row.starting_cash,
            strategy=row.strategy,
            feed_signature=row.feed_signature,
            config=row.config,
        )
        checkpoint = self.journal.load_checkpoint(row.id)
        if checkpoint is None:
            self.log.warning("run %s had no checkpoint yet: restarting it from its first event", row.id)
            return run, self._fresh_state(run, feed, strategy_cls), -1
        state = thaw(checkpoint.state, {"ctx": ctx, "log": self.log})
        clock.advance(checkpoint.ts)
        self.log.warning(
            "resuming run %s after event %d (%d events done, %d open orders)",
            row.id,
            checkpoint.seq,
            checkpoint.events_processed,
            len(state.broker.orders),
        )
        return run, state, checkpoint.seq

    def _summary(self, run: RunRecord, state: EngineState, result: SessionResult) -> RunSummary:
        counts = self.read.counts(run.id)
        start = float(run.starting_cash)
        return RunSummary(
            starting_equity=start,
            final_equity=round(result.final_equity, 2),
            total_return=result.final_equity / start - 1.0,
            max_drawdown=result.max_drawdown,
            round_trips=result.round_trips,
            fills=counts.get("fills", 0),
            fees=float(state.portfolio.fees),
            equity_points=counts.get("equity_points", 0),
        )


def group_commit(feed: LiveMarketFeed, linger_s: float, group_s: float) -> Callable[[], bool]:
    """The live session's ``defer_commit``: put a due commit off while the next event comes within ``linger_s``,
    until the first commit put off is ``group_s`` old; then commit as soon as no event is at hand (an event
    at hand would wait for the commit), and at the latest at twice ``group_s``."""
    since: float | None = None

    def defer() -> bool:
        nonlocal since
        now = time.monotonic()
        if since is None:
            since = now
        age = now - since
        if age < 2 * group_s and feed.ready(min(linger_s, group_s - age) if age < group_s else 0.0):
            return True
        since = None
        return False

    return defer


def default_database_note(url: str) -> str:
    """Where the database is, for people: a file path for SQLite, the URL without password otherwise."""
    if url.startswith("sqlite:///"):
        return str(Path(url[len("sqlite:///") :]))
    return make_url(url).render_as_string(hide_password=True)
