"""A failing robot end to end: recorded with its traceback, its queued orders dropped, then halt or skip."""

from __future__ import annotations

from typing import Any

import pytest

from robohost import Bar, Context, Fill, Strategy
from robohost.adapters.db.queries import ReadModel
from robohost.errors import RobotHaltedError, StrategyError
from support import Scripted, buy, database, fail, flat_bars, plan, run_robot


def test_halt_stops_the_run_and_sets_the_kill_switch(db_url: str) -> None:
    run = run_robot(db_url, Scripted, flat_bars(5), params=plan(fail(1, "boom")))
    assert run.outcome.status == "halted"
    assert run.outcome.result.halt_reason == "the strategy raised in on_bar: RuntimeError('boom')"
    assert len(run.strategy.bars) == 2
    assert not run.strategy.stopped
    state = run.read.robot_state("bot")
    assert state is not None
    assert state.status == "halted"
    assert [(e.kind, e.rule) for e in run.read.risk_events(run.run_id)] == [("halt", "strategy_error")]
    with pytest.raises(RobotHaltedError):
        run_robot(db_url, Scripted, flat_bars(5))


def test_skip_records_the_error_and_carries_on(db_url: str) -> None:
    run = run_robot(db_url, Scripted, flat_bars(5), params=plan(fail(1), fail(3)), on_strategy_error="skip")
    assert run.outcome.status == "completed"
    assert len(run.strategy.bars) == 5
    assert run.strategy.stopped
    assert len(run.read.journal(run.run_id, ["strategy_error"])) == 2
    state = run.read.robot_state("bot")
    assert state is not None
    assert state.status == "idle"


@pytest.mark.parametrize("mode", ["halt", "skip"])
def test_the_journal_keeps_the_hook_the_error_and_the_traceback(db_url: str, mode: str) -> None:
    run = run_robot(db_url, Scripted, flat_bars(3), params=plan(fail(1, "bad robot")), on_strategy_error=mode)
    (event,) = run.read.journal(run.run_id, ["strategy_error"])
    assert event.data["hook"] == "on_bar"
    assert event.data["error"] == "RuntimeError('bad robot')"
    trace = event.data["traceback"]
    assert trace.startswith("Traceback (most recent call last):")
    assert "in _perform" in trace
    assert 'raise RuntimeError(step["message"])' in trace
    assert trace.rstrip().endswith("RuntimeError: bad robot")
    assert event.ts == run.strategy.bars[1].ts + 86_400_000_000_000  # the clock at the end of the failing bar


@pytest.mark.parametrize("mode", ["halt", "skip"])
def test_orders_queued_by_the_failing_hook_are_dropped(db_url: str, mode: str) -> None:
    steps = plan(buy(0, 1), buy(1, 10), buy(1, 20, limit=90.0), fail(1), buy(2, 30))
    run = run_robot(db_url, Scripted, flat_bars(4), params=steps, on_strategy_error=mode)
    quantities = [o.qty for o in run.read.orders("bot")]
    assert quantities == ([1.0] if mode == "halt" else [1.0, 30.0])
    assert all(o.status != "rejected" for o in run.read.orders("bot"))


def test_a_cancel_queued_by_the_failing_hook_is_dropped(db_url: str) -> None:
    steps = plan(buy(0, 1, limit=50.0, tif="gtc"), {"at": 1, "do": "cancel", "order": 0}, fail(1))
    run = run_robot(db_url, Scripted, flat_bars(3), params=steps, on_strategy_error="skip")
    assert [o.status for o in run.read.orders("bot")] == ["working"]


class FailsOnStart(Strategy):
    """Raises in on_start after queueing an order."""

    def on_start(self, ctx: Context) -> None:
        ctx.buy(ctx.symbols[0], 1)
        raise ValueError("no start")

    def on_bar(self, bar: Bar, ctx: Context) -> None:
        raise AssertionError("never called after a halt in on_start")


def test_an_error_in_on_start_halts_before_any_bar(db_url: str) -> None:
    run = run_robot(db_url, FailsOnStart, flat_bars(3))
    assert run.outcome.status == "halted"
    assert run.outcome.result.halt_reason == "the strategy raised in on_start: ValueError('no start')"
    assert run.read.orders("bot") == []
    assert [e.data["hook"] for e in run.read.journal(run.run_id, ["strategy_error"])] == ["on_start"]


class FailsOnFill(Strategy):
    """Buys on the first bar, then raises in on_fill after queueing another order."""

    def on_bar(self, bar: Bar, ctx: Context) -> None:
        if not ctx.open_orders() and ctx.position(bar.symbol) == 0:
            ctx.buy(bar.symbol, 1)

    def on_fill(self, fill: Fill, ctx: Context) -> None:
        ctx.buy(fill.symbol, 5)
        raise KeyError("fill")


def test_an_error_in_on_fill_is_recorded_and_its_orders_dropped(db_url: str) -> None:
    run = run_robot(db_url, FailsOnFill, flat_bars(3), on_strategy_error="skip")
    assert [o.qty for o in run.read.orders("bot")] == [1.0]
    (event,) = run.read.journal(run.run_id, ["strategy_error"])
    assert (event.data["hook"], event.data["error"]) == ("on_fill", "KeyError('fill')")


class Typed(Strategy):
    """A robot with one parameter of each kind."""

    params = {"qty": 10, "ratio": 0.5, "name": "x", "flag": False}

    def on_start(self, ctx: Context) -> None:
        self.seen = dict(self.params)


def test_configured_params_override_the_defaults(db_url: str) -> None:
    run = run_robot(db_url, Typed, flat_bars(2), params={"qty": 3, "ratio": 2, "flag": True})
    assert run.strategy.seen == {"qty": 3, "ratio": 2.0, "name": "x", "flag": True}
    assert isinstance(run.strategy.seen["ratio"], float)


def test_an_unknown_param_names_its_dotted_key(db_url: str) -> None:
    with pytest.raises(StrategyError) as caught:
        run_robot(db_url, Typed, flat_bars(2), params={"qyt": 3})
    message = str(caught.value)
    assert message.startswith("robots.bot.params.qyt: ")
    assert "flag, name, qty, ratio" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [("qty", "ten"), ("qty", 2.5), ("qty", True), ("ratio", "half"), ("ratio", True), ("name", 5), ("flag", 1)],
)
def test_a_param_of_the_wrong_type_is_refused(db_url: str, key: str, value: Any) -> None:
    with pytest.raises(StrategyError, match=rf"^robots\.bot\.params\.{key}: expected "):
        run_robot(db_url, Typed, flat_bars(2), params={key: value})


def test_a_refused_param_leaves_no_run_running(db_url: str) -> None:
    with pytest.raises(StrategyError):
        run_robot(db_url, Typed, flat_bars(2), params={"qyt": 3})
    read = ReadModel(database(db_url))
    assert read.unfinished_run("bot") is None
    state = read.robot_state("bot")
    assert state is None or state.status != "running"
    ok = run_robot(db_url, Typed, flat_bars(2))  # a corrected config starts a new run, not the refused one
    assert ok.outcome.resumed_from is None
    assert [r.status for r in ok.read.runs("bot")] == ["completed"]
