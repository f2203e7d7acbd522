"""Risk limits end to end: each limit rejects with a risk event; the daily-loss kill switch halts the robot."""

from __future__ import annotations

import time
from typing import Any

import pytest

from robohost.errors import RobotHaltedError
from support import SYMBOL, Scripted, Step, bars, buy, flat_bars, plan, run_robot

LIMIT_CASES: dict[str, tuple[dict[str, Any], list[Step], int, str]] = {
    # limit, the robot's steps, which order is rejected, the reason
    "max_order_notional": (
        {"max_order_notional": 1000},
        [buy(0, 10), buy(0, 11)],
        1,
        "order notional 1,100.00 exceeds 1,000.00",
    ),
    "max_position": (
        {"max_position": 100},
        [buy(0, 60), buy(2, 50)],
        1,
        "position would reach 110 (limit 100)",
    ),
    "max_position_notional": (
        {"max_position_notional": 5000},
        [buy(0, 50), buy(2, 1)],
        1,
        "position value would reach 5,100.00 (limit 5,000.00)",
    ),
    "max_gross_exposure": (
        {"max_gross_exposure": 10_000},
        [buy(0, 60), buy(2, 41)],
        1,
        "gross exposure would reach 10,100.00 (limit 10,000.00)",
    ),
    "max_orders_per_minute": (
        {"max_orders_per_minute": 2},
        [buy(0, 1), buy(0, 1), buy(0, 1)],
        2,
        "more than 2 orders in a minute",
    ),
}


@pytest.mark.parametrize("rule", list(LIMIT_CASES))
def test_each_risk_limit_rejects_with_a_risk_event(db_url: str, rule: str) -> None:
    limits, steps, rejected_index, reason = LIMIT_CASES[rule]
    run = run_robot(db_url, Scripted, flat_bars(4), params=plan(*steps), risk=limits)
    orders = run.read.orders("bot")
    rejected = orders[rejected_index]
    assert rejected.status == "rejected"
    assert rejected.reason == f"risk limit {rule}: {reason}"
    assert [o.status for i, o in enumerate(orders) if i != rejected_index] == ["filled"] * (len(orders) - 1)
    (event,) = run.read.risk_events(run.run_id)
    assert (event.kind, event.rule, event.order_id) == ("rejected", rule, rejected.id)
    assert event.reason.endswith(reason)
    assert run.outcome.status == "completed"


@pytest.mark.parametrize("rule", ["max_position", "max_position_notional", "max_gross_exposure"])
def test_exposure_limits_count_orders_still_open(db_url: str, rule: str) -> None:
    # two buys in one bar: each fits the limit alone, together they pass it
    limit = {"max_position": 100, "max_position_notional": 10_000, "max_gross_exposure": 10_000}[rule]
    run = run_robot(db_url, Scripted, flat_bars(3), params=plan(buy(0, 60), buy(0, 41)), risk={rule: limit})
    assert [o.status for o in run.read.orders("bot")] == ["filled", "rejected"]
    assert [e.rule for e in run.read.risk_events(run.run_id)] == [rule]


def test_orders_within_every_limit_pass(db_url: str) -> None:
    limits = {
        "max_order_notional": 1000,
        "max_position": 10,
        "max_position_notional": 1000,
        "max_gross_exposure": 1000,
        "max_orders_per_minute": 1,
    }
    run = run_robot(db_url, Scripted, flat_bars(4), params=plan(buy(0, 10), buy(2, 0.5)), risk=limits)
    assert [o.status for o in run.read.orders("bot")] == ["filled", "rejected"]  # 0.5 is below the lot size
    assert run.read.risk_events(run.run_id) == []


def test_an_order_placed_before_any_price_still_respects_max_order_notional(db_url: str) -> None:
    run = run_robot(db_url, Scripted, flat_bars(3), params=plan(buy("start", 900)), risk={"max_order_notional": 5000})
    assert sum(f.qty * f.price for f in run.read.fills("bot")) <= 5000
    (order,) = run.read.orders("bot")
    assert (order.status, order.reason) == ("rejected", f"no market price for {SYMBOL} yet: wait for its first bar")


CRASH = [(100, 100, 100, 100, 1e6)] * 2 + [(50, 50, 50, 50, 1e6)] * 2


def test_max_daily_loss_halts_cancels_working_orders_and_sets_the_kill_switch(db_url: str) -> None:
    steps = plan(buy(0, 100), buy(0, 1, limit=10.0, tif="gtc"))
    run = run_robot(db_url, Scripted, bars(SYMBOL, CRASH), params=steps, risk={"max_daily_loss": 1000})
    assert run.outcome.status == "halted"
    reason = run.outcome.result.halt_reason
    assert reason == "daily loss 5,000.00 exceeds 1,000.00: kill switch set"
    assert len(run.strategy.bars) == 3  # the bar that breached the limit was the last the robot saw
    assert not run.strategy.stopped
    entry, resting = run.read.orders("bot")
    assert entry.status == "filled"
    assert (resting.status, resting.reason) == ("cancelled", "robot halted")
    halts = [(e.kind, e.rule, e.reason) for e in run.read.risk_events(run.run_id)]
    assert halts == [("halt", "max_daily_loss", reason)]
    assert [e.data["rule"] for e in run.read.journal(run.run_id, ["halted"])] == ["max_daily_loss"]
    state = run.read.robot_state("bot")
    assert state is not None
    assert (state.status, state.reason, state.run_id) == ("halted", reason, run.run_id)
    stored = run.read.run(run.run_id)
    assert stored is not None
    assert stored.status == "halted"


def test_a_halted_robot_refuses_to_run_until_a_person_resumes_it(db_url: str) -> None:
    first = run_robot(db_url, Scripted, bars(SYMBOL, CRASH), params=plan(buy(0, 100)), risk={"max_daily_loss": 1000})
    assert first.outcome.status == "halted"
    with pytest.raises(RobotHaltedError, match="robohost resume --robot bot"):
        run_robot(db_url, Scripted, bars(SYMBOL, CRASH), risk={"max_daily_loss": 1000})
    assert [r.id for r in first.read.runs("bot")] == [first.run_id]  # the refused run left no trace

    first.read.set_robot_state("bot", "idle", "resumed by a person", time.time_ns())
    second = run_robot(db_url, Scripted, bars(SYMBOL, CRASH), risk={"max_daily_loss": 1000})
    assert second.outcome.status == "completed"
    assert second.run_id != first.run_id
    state = second.read.robot_state("bot")
    assert state is not None
    assert state.status == "idle"


def test_a_loss_within_the_limit_does_not_halt(db_url: str) -> None:
    run = run_robot(db_url, Scripted, bars(SYMBOL, CRASH), params=plan(buy(0, 10)), risk={"max_daily_loss": 1000})
    assert run.outcome.status == "completed"
    assert run.read.risk_events(run.run_id) == []


def test_the_daily_loss_is_measured_from_the_start_of_each_day(db_url: str) -> None:
    # three days each losing 400: 1,200 in all, but never more than 1,000 in one day
    rows = [(100, 100, 100, 100, 1e6)] * 2 + [(96, 96, 96, 96, 1e6), (92, 92, 92, 92, 1e6), (88, 88, 88, 88, 1e6)]
    run = run_robot(db_url, Scripted, bars(SYMBOL, rows), params=plan(buy(0, 100)), risk={"max_daily_loss": 1000})
    assert run.outcome.status == "completed"


def test_a_halt_leaves_no_order_open_not_even_a_brackets_exits(db_url: str) -> None:
    # the bracket entry is half filled (participation) when the loss halts the robot
    rows = [(100, 100, 100, 100, 300), (100, 100, 100, 100, 300), (50, 50, 50, 50, 300), (50, 50, 50, 50, 300)]
    run = run_robot(
        db_url,
        Scripted,
        bars(SYMBOL, rows),
        params=plan(buy(0, 100, tif="gtc", stop_loss=20.0, take_profit=200.0)),
        risk={"max_daily_loss": 500},
    )
    assert run.outcome.status == "halted"
    open_statuses = {"pending", "working", "partially_filled"}
    assert [(o.id, o.status) for o in run.read.orders("bot") if o.status in open_statuses] == []
