"""Tests of the run service: config translation, new / resume / abandon, and recovery after a crash."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pandas as pd
import pytest

from robohost.adapters.db.queries import ReadModel
from robohost.adapters.feeds.replay import ReplayFeed
from robohost.config.models import RobotConfig
from robohost.domain.risk import RiskLimits
from robohost.domain.values import Liquidity
from robohost.engine.ports import MarketEvent
from robohost.errors import StateError
from robohost.services.paper import PaperTrading, fill_rules, risk_limits
from support import (
    ROBOT,
    SYMBOL,
    Scripted,
    WrappedFeed,
    bars,
    buy,
    database,
    paper_trading,
    plan,
    robot_config,
    run_robot,
    sell,
)


class FeedCrashError(RuntimeError):
    """The process died in the middle of a run."""


class CrashingFeed(WrappedFeed):
    """A replay feed that dies after ``crash_after`` events and, like a live feed, offers no columns."""

    def __init__(self, feed: ReplayFeed, crash_after: int) -> None:
        super().__init__(feed)
        self.crash_after = crash_after

    def event_columns(self) -> None:
        return None

    def events(self, start_seq: int) -> Iterator[MarketEvent]:
        for event in self.feed.events(start_seq):
            if event[0] >= self.crash_after:
                raise FeedCrashError(f"killed before event {event[0]}")
            yield event


def wavy(n: int = 12) -> pd.DataFrame:
    """Bars that go up and down, so that limits fill on some bars and not on others."""
    rows = []
    for k in range(n):
        mid = 100.0 + (5.0 if k % 4 < 2 else -5.0) + k * 0.5
        rows.append((mid, mid + 2.0, mid - 2.0, mid + 1.0, 10_000.0))
    return bars(SYMBOL, rows)


STEPS = plan(
    buy(0, 10),
    buy(1, 20, limit=99.0, tif="gtc"),
    sell(3, 5, limit=108.0, tif="gtc"),
    buy(5, 7, stop_loss=90.0, take_profit=112.0),
    sell(8, 10),
)


def service(db_url: str, frame: pd.DataFrame, crash_after: int | None = None) -> PaperTrading:
    """The run service of robot ``bot`` over ``frame``, whose feed dies after ``crash_after`` events if given."""
    feed = ReplayFeed.from_frame(frame)
    data = feed if crash_after is None else CrashingFeed(feed, crash_after)
    return paper_trading(db_url, Scripted, data, params=STEPS, commit_every=3)


def test_fill_rules_translate_the_config() -> None:
    cfg = robot_config(
        fills={"latency_ms": 12.5, "participation": 0.25, "allow_short": True, "tick_size": 0.05},
        fees={"per_share": "0.005", "percent": "0.1", "maker_percent": "0.02", "minimum": "1.5"},
    )
    rules = fill_rules(cfg)
    assert rules.latency_ns == 12_500_000
    assert (rules.participation, rules.allow_short, rules.tick_size, rules.slippage_bps) == (0.25, True, 0.05, 0.0)
    fees = rules.fees
    assert (fees.per_unit, fees.maker_rate, fees.taker_rate, fees.minimum) == (
        Decimal("0.005"),
        Decimal("0.0002"),
        Decimal("0.001"),
        Decimal("1.5"),
    )
    assert fees.fee(100.0, 10.0, Liquidity.TAKER, Decimal(0)) == Decimal("1.5")


def test_the_documented_defaults_apply_without_overrides() -> None:
    cfg = RobotConfig.model_validate({"strategy": "robots.py:Bot", "data": {"path": "bars.csv"}})
    rules = fill_rules(cfg)
    assert (rules.latency_ns, rules.slippage_bps, rules.slippage_range_fraction) == (250_000_000, 1.0, 0.0)
    assert (rules.touch_fill_probability, rules.participation, rules.allow_short) == (0.0, 0.1, False)
    assert (rules.tick_size, rules.lot_size) == (0.01, 1.0)
    assert rules.fees.fee(100.0, 50.0, Liquidity.TAKER, Decimal(0)) == 0
    assert risk_limits(cfg) == RiskLimits()
    assert (cfg.timezone, cfg.on_strategy_error, cfg.starting_cash, cfg.data.path) == (
        "America/New_York",
        "halt",
        Decimal(100_000),
        ["bars.csv"],
    )


def test_risk_limits_translate_the_config() -> None:
    limits = risk_limits(robot_config(risk={"max_position": 5, "max_daily_loss": 100}))
    assert (limits.max_position, limits.max_daily_loss, limits.max_order_notional) == (5, 100, None)


def test_resume_without_an_unfinished_run_is_refused(db_url: str) -> None:
    with pytest.raises(StateError, match="no unfinished run"):
        service(db_url, wavy()).run("resume")


def test_a_crashed_run_resumes_from_its_checkpoint_to_the_same_result(db_url: str) -> None:
    frame = wavy()
    clean = run_robot(db_url, Scripted, frame, robot="clean", params=STEPS, commit_every=3)

    with pytest.raises(FeedCrashError):
        service(db_url, frame, crash_after=8).run()
    read = ReadModel(database(db_url))
    crashed = read.unfinished_run(ROBOT)
    assert crashed is not None
    assert crashed.last_seq == 5  # the last commit (every 3 events) before the crash at event 8

    resumed = service(db_url, frame)
    outcome = resumed.run()
    assert (outcome.run_id, outcome.status, outcome.resumed_from) == (crashed.id, "completed", 5)

    def shape(robot: str, run_id: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        orders = [
            (o.id.split("-", 1)[1], o.type, o.side, o.qty, o.status, o.filled_qty, o.avg_fill_price)
            for o in read.orders(robot, run_id)
        ]
        fills = [(f.id.split("-", 1)[1], f.qty, f.price, f.ts, f.fee) for f in read.fills(robot, run_id)]
        return orders, fills

    assert shape(ROBOT, crashed.id) == shape("clean", clean.run_id)
    assert [(p.ts, p.equity) for p in read.equity(ROBOT, crashed.id)] == [
        (p.ts, p.equity) for p in read.equity("clean", clean.run_id)
    ]
    assert read.counts(crashed.id)["fills"] == read.counts(clean.run_id)["fills"] > 0
    assert [e.type for e in read.journal(crashed.id, ["run_started", "run_resumed"])] == ["run_started", "run_resumed"]


def test_a_crashed_run_does_not_resume_on_different_data(db_url: str) -> None:
    with pytest.raises(FeedCrashError):
        service(db_url, wavy(), crash_after=8).run()
    with pytest.raises(StateError, match="different market data"):
        service(db_url, wavy(13)).run()


def test_new_abandons_the_unfinished_run(db_url: str) -> None:
    with pytest.raises(FeedCrashError):
        service(db_url, wavy(), crash_after=8).run()
    read = ReadModel(database(db_url))
    crashed = read.unfinished_run(ROBOT)
    assert crashed is not None
    outcome = service(db_url, wavy()).run("new")
    assert outcome.resumed_from is None
    assert outcome.run_id != crashed.id
    statuses = {r.id: r.status for r in read.runs(ROBOT)}
    assert statuses == {crashed.id: "abandoned", outcome.run_id: "completed"}


def test_a_completed_run_records_its_summary(db_url: str) -> None:
    run = run_robot(db_url, Scripted, wavy(), params=STEPS)
    stored = run.read.run(run.run_id)
    assert stored is not None
    assert stored.status == "completed"
    assert stored.summary is not None
    assert stored.summary["fills"] == len(run.read.fills(ROBOT)) == run.outcome.summary.fills
    assert stored.summary["final_equity"] == round(run.read.equity(ROBOT)[-1].equity, 2)
    assert stored.config["params"] == STEPS
    assert stored.events_processed == 12


def test_the_summary_figures_follow_the_equity_curve(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6)] * 2 + [(80, 80, 80, 80, 1e6), (90, 90, 90, 90, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 100)))
    assert [p.equity for p in run.read.equity(ROBOT)] == [100_000.0, 100_000.0, 98_000.0, 99_000.0]
    summary = run.outcome.summary
    assert (summary.starting_equity, summary.final_equity, summary.fills, summary.equity_points) == (
        100_000.0,
        99_000.0,
        1,
        4,
    )
    assert summary.total_return == pytest.approx(-0.01)
    assert summary.max_drawdown == pytest.approx(0.02)
    assert summary.round_trips == 0
