"""The paper broker end to end: a scripted robot run through ``PaperTrading`` on SQLite and PostgreSQL.

Bars are daily (UTC midnight) unless said otherwise, so bar ``k`` starts at day ``k`` and the robot's clock
during it is day ``k + 1``; an order placed on bar ``k`` can fill from bar ``k + 1`` on.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from robohost.adapters.feeds.replay import ReplayFeed
from robohost.engine.records import FillRecord
from support import (
    SYMBOL,
    RobotRun,
    Scripted,
    bars,
    buy,
    cancel,
    flat_bars,
    ns,
    plan,
    quotes,
    replay,
    run_robot,
    sell,
    trades,
)

DAY0 = "2024-01-02"


def day(k: int) -> int:
    """Start of daily bar ``k`` (ns)."""
    return ns(DAY0) + k * 86_400_000_000_000


def arrived(k: int, latency_ms: int = 250) -> int:
    """When an order decided at the close of bar ``k - 1`` reaches the market: bar ``k``'s start plus the latency.

    A fill on the bar it arrives in is priced at that bar (its open, or its limit or stop) but stamped with the
    arrival time, never before it.
    """
    return day(k) + latency_ms * 1_000_000


def summary(fills: list[FillRecord]) -> list[tuple[str, float, float, int]]:
    """(side, qty, price, ts) of each fill."""
    return [(f.side, f.qty, f.price, f.ts) for f in fills]


# -- timing ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("latency_ms", [0, 250])
@pytest.mark.parametrize(
    "order",
    [
        {},  # market
        {"limit": 200.0},  # a buy limit far above the market: marketable at once
        {"stop": 50.0},  # a buy stop far below the market: triggered at once
    ],
    ids=["market", "limit", "stop"],
)
def test_never_a_fill_on_the_signal_bar(db_url: str, latency_ms: int, order: dict[str, float]) -> None:
    frame = bars(SYMBOL, [(100, 110, 90, 105, 1e6), (101, 111, 91, 106, 1e6), (102, 112, 92, 107, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, **order)), fills={"latency_ms": latency_ms})
    fills = run.read.fills("bot")
    assert summary(fills) == [("buy", 10.0, 101.0, arrived(1, latency_ms))]
    assert [f.id for f in run.strategy.fills] == [f.id for f in fills]


def test_latency_longer_than_a_bar_pushes_the_fill_later(db_url: str) -> None:
    rows = [(100.0 + k, 100.5 + k, 99.5 + k, 100.0 + k, 1e6) for k in range(5)]
    frame = bars(SYMBOL, rows, start="2024-01-02 15:00", freq="1min")
    steps = plan(buy(0, 1))
    quick = run_robot(db_url, Scripted, frame, params=steps, fills={"latency_ms": 59_000}, robot="quick")
    slow = run_robot(db_url, Scripted, frame, params=steps, fills={"latency_ms": 90_000}, robot="slow")
    assert summary(quick.read.fills("quick")) == [("buy", 1.0, 101.0, ns("2024-01-02 15:01:59"))]
    assert summary(slow.read.fills("slow")) == [("buy", 1.0, 102.0, ns("2024-01-02 15:02:30"))]


def test_market_fills_at_the_next_open_with_slippage(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6), (100, 102, 98, 101, 1e6), (100, 100, 100, 100, 1e6)] * 2)
    run = run_robot(
        db_url,
        Scripted,
        frame,
        params=plan(buy(0, 10), sell(3, 10)),
        fills={"slippage_bps": 10.0, "slippage_range_fraction": 0.1},
    )
    # 10 bps of 100 plus 10 % of the 4.00 range, against the order
    assert summary(run.read.fills("bot")) == [("buy", 10.0, 100.5, arrived(1)), ("sell", 10.0, 99.5, arrived(4))]
    assert [f.liquidity for f in run.read.fills("bot")] == ["taker", "taker"]


def test_fill_price_is_rounded_to_the_tick(db_url: str) -> None:
    frame = flat_bars(3)
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 1)), fills={"slippage_bps": 3.0, "tick_size": 0.05})
    assert [f.price for f in run.read.fills("bot")] == [100.05]  # 100.03 to the nearest 0.05


# -- limit, stop and stop-limit --------------------------------------------------------------------
def test_limit_waits_for_the_market_to_trade_through_it(db_url: str) -> None:
    frame = bars(
        SYMBOL,
        [(100, 101, 99, 100, 1e6), (100, 101, 99.5, 100, 1e6), (100, 101, 99, 100, 1e6), (100, 101, 98, 99, 1e6)],
    )
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, limit=99.0, tif="gtc")))
    fills = run.read.fills("bot")
    assert summary(fills) == [("buy", 10.0, 99.0, day(3))]  # bar 2 only touched 99
    assert fills[0].liquidity == "maker"


def test_limit_touch_fills_when_the_touch_probability_is_one(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 101, 99, 100, 1e6), (100, 101, 99, 100, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, limit=99.0)), fills={"touch_fill_probability": 1.0})
    assert summary(run.read.fills("bot")) == [("buy", 10.0, 99.0, arrived(1))]


def test_touch_fills_follow_the_seeded_random_source(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 101, 99, 100, 1e6)] * 30)  # every bar touches 99
    steps = plan(*[buy(k, 1, limit=99.0) for k in range(29)])  # a day order per bar, each meets one bar

    def fill_times(robot: str, seed: int) -> list[int]:
        touch = {"touch_fill_probability": 0.5}
        run = run_robot(db_url, Scripted, frame, robot=robot, params=steps, seed=seed, fills=touch)
        return [f.ts for f in run.read.fills(robot)]

    first, again, other = fill_times("a", 1), fill_times("b", 1), fill_times("c", 2)
    assert first == again
    assert first != other
    assert 0 < len(first) < 29


def test_limit_gapped_through_fills_at_the_open(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 101, 99, 100, 1e6), (97, 98, 96, 97, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, limit=99.0)))
    assert summary(run.read.fills("bot")) == [("buy", 10.0, 97.0, arrived(1))]


def test_sell_limit_fills_when_the_high_goes_through(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6)] * 2 + [(100, 101, 99, 100, 1e6), (100, 103, 99, 102, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10), sell(1, 10, limit=102.5, tif="gtc")))
    assert summary(run.read.fills("bot"))[1] == ("sell", 10.0, 102.5, day(3))


def test_stop_triggers_on_touch_and_fills_at_the_stop(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6), (100, 100.9, 99, 100, 1e6), (100, 101, 99, 100.5, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, stop=101.0, tif="gtc")))
    fills = run.read.fills("bot")
    assert summary(fills) == [("buy", 10.0, 101.0, day(2))]
    assert fills[0].liquidity == "taker"


def test_stop_gapped_through_fills_at_the_open(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6), (104, 105, 103, 104, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, stop=101.0)))
    assert summary(run.read.fills("bot")) == [("buy", 10.0, 104.0, arrived(1))]


def test_sell_stop_gapped_down_fills_at_the_open(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6)] * 2 + [(90, 91, 89, 90, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10), sell(1, 10, stop=95.0)))
    assert summary(run.read.fills("bot"))[1] == ("sell", 10.0, 90.0, arrived(2))


def test_stop_limit_triggers_and_fills_at_the_stop(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6), (100, 102, 99, 101.5, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, stop=101.0, limit=101.5)))
    assert summary(run.read.fills("bot")) == [("buy", 10.0, 101.0, arrived(1))]
    assert run.read.orders("bot")[0].type == "stop_limit"


def test_stop_limit_gapping_past_its_limit_rests_as_a_limit(db_url: str) -> None:
    frame = bars(
        SYMBOL,
        [
            (100, 100, 100, 100, 1e6),
            (103, 104, 102.5, 103, 1e6),
            (102, 103, 101.6, 102, 1e6),
            (102, 102, 101, 101, 1e6),
        ],
    )
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, stop=101.0, limit=101.5, tif="gtc")))
    fills = run.read.fills("bot")
    assert summary(fills) == [("buy", 10.0, 101.5, day(3))]
    assert fills[0].liquidity == "maker"


# -- brackets --------------------------------------------------------------------------------------
def test_bracket_exits_start_after_the_entry_and_the_stop_wins_an_ambiguous_bar(db_url: str) -> None:
    frame = bars(
        SYMBOL,
        [
            (100, 100, 100, 100, 1e6),
            (100, 116, 90, 100, 1e6),  # entry fills; its exits are not working yet, though both lie inside
            (100, 111, 94, 100, 1e6),  # both exits inside the bar: the stop is assumed first
            (100, 111, 94, 100, 1e6),
        ],
    )
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, stop_loss=95.0, take_profit=110.0)))
    entry, stop, target = run.read.orders("bot")
    assert (entry.type, entry.status, entry.parent_id) == ("market", "filled", None)
    assert (stop.type, stop.side, stop.stop_price, stop.parent_id) == ("stop", "sell", 95.0, entry.id)
    assert (target.type, target.side, target.limit_price, target.parent_id) == ("limit", "sell", 110.0, entry.id)
    assert (stop.oco_id, target.oco_id) == (target.id, stop.id)
    assert stop.status == "filled"
    assert target.status == "cancelled"
    assert "one-cancels-other" in target.reason
    fills = run.read.fills("bot")
    assert [(f.order_id, f.side, f.qty, f.price, f.ts, f.ambiguous) for f in fills] == [
        (entry.id, "buy", 10.0, 100.0, arrived(1), False),
        (stop.id, "sell", 10.0, 95.0, day(2), True),
    ]
    assert run.read.positions(run.run_id)[0].qty == 0


def test_a_stop_and_a_limit_on_one_side_inside_one_bar_fill_stop_first(db_url: str) -> None:
    """Not a bracket: a robot that may sell short placed a sell stop and a sell limit; one bar holds both."""
    frame = bars(
        SYMBOL,
        [
            (100, 100, 100, 100, 1e6),
            (100, 100, 100, 100, 1e6),  # the entry fills
            (100, 100, 100, 100, 1e6),  # the sells reach the market
            (100, 111, 94, 100, 1e6),  # both inside the bar
        ],
    )
    steps = plan(buy(0, 10), sell(1, 10, limit=110.0, tif="gtc"), sell(1, 10, stop=95.0, tif="gtc"))
    run = run_robot(db_url, Scripted, frame, params=steps, fills={"allow_short": True})
    _, target, stop = run.read.orders("bot")
    fills = run.read.fills("bot")[1:]
    assert [(f.order_id, f.price, f.ambiguous) for f in fills] == [(stop.id, 95.0, True), (target.id, 110.0, False)]
    assert run.read.positions(run.run_id)[0].qty == -10


def test_bracket_take_profit_cancels_the_stop(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6)] * 2 + [(100, 111, 99, 105, 1e6), (100, 100, 80, 90, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, stop_loss=95.0, take_profit=110.0)))
    _, stop, target = run.read.orders("bot")
    assert (stop.status, target.status) == ("cancelled", "filled")
    last = run.read.fills("bot")[-1]
    assert (last.order_id, last.price, last.liquidity, last.ambiguous) == (target.id, 110.0, "maker", False)
    assert run.read.positions(run.run_id)[0].realized_pnl == Decimal(100)


def test_bracket_with_a_bad_pair_of_exits_is_rejected(db_url: str) -> None:
    run = run_robot(db_url, Scripted, flat_bars(2), params=plan(buy(0, 10, stop_loss=110.0, take_profit=95.0)))
    (order,) = run.read.orders("bot")
    assert order.status == "rejected"
    assert "stop_loss < take_profit" in order.reason


# -- partial fills ---------------------------------------------------------------------------------
def test_partial_fills_are_capped_by_participation_and_the_rest_fills_later(db_url: str) -> None:
    frame = bars(SYMBOL, [(100 + k, 100 + k, 100 + k, 100 + k, 305) for k in range(6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 100, tif="gtc")), fills={"participation": 0.1})
    fills = run.read.fills("bot")
    # 10 % of 305 is 30.5, floored to whole lots
    assert summary(fills) == [
        ("buy", 30.0, 101.0, arrived(1)),
        ("buy", 30.0, 102.0, day(2)),
        ("buy", 30.0, 103.0, day(3)),
        ("buy", 10.0, 104.0, day(4)),
    ]
    (order,) = run.read.orders("bot")
    assert (order.status, order.filled_qty) == ("filled", 100.0)
    assert order.avg_fill_price == pytest.approx((30 * 101 + 30 * 102 + 30 * 103 + 10 * 104) / 100)
    assert run.read.positions(run.run_id)[0].qty == 100


def test_a_partly_filled_day_order_expires_with_its_remainder(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 100)] * 3)
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 50)), fills={"participation": 0.2})
    (order,) = run.read.orders("bot")
    assert (order.status, order.filled_qty) == ("expired", 20.0)
    assert [f.qty for f in run.read.fills("bot")] == [20.0]


# -- time in force and cancel ----------------------------------------------------------------------
def test_day_orders_expire_at_the_end_of_their_trading_day_and_gtc_orders_stay(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 101, 99, 100, 1e6)] * 8, start="2024-01-02 20:00", freq="1h")
    run = run_robot(
        db_url, Scripted, frame, params=plan(buy(0, 10, limit=50.0, tif="day"), buy(0, 10, limit=50.0, tif="gtc"))
    )
    day_order, gtc_order = run.read.orders("bot")
    assert day_order.status == "expired"
    assert day_order.updated_ts == ns("2024-01-03 00:00")
    assert "day order expired" in day_order.reason
    assert gtc_order.status == "working"


def test_day_orders_follow_the_robots_time_zone(db_url: str) -> None:
    # 04:00 UTC is 23:00 in New York: the New York trading day ends an hour later
    frame = bars(SYMBOL, [(100, 101, 99, 100, 1e6)] * 4, start="2024-01-03 03:00", freq="1h")
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, limit=50.0)), timezone="America/New_York")
    (order,) = run.read.orders("bot")
    assert (order.status, order.updated_ts) == ("expired", ns("2024-01-03 05:00"))


def test_cancel_takes_a_working_order_off_the_market(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 101, 99, 100, 1e6)] * 3 + [(95, 96, 90, 92, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, limit=95.0, tif="gtc"), cancel(2, 0)))
    (order,) = run.read.orders("bot")
    assert (order.status, order.reason, order.updated_ts) == ("cancelled", "cancelled by the robot", day(3))
    assert run.read.fills("bot") == []


def test_cancelling_a_filled_order_is_journalled_and_ignored(db_url: str) -> None:
    run = run_robot(db_url, Scripted, flat_bars(4), params=plan(buy(0, 10), cancel(2, 0)))
    (order,) = run.read.orders("bot")
    assert order.status == "filled"
    ignored = run.read.journal(run.run_id, ["cancel_ignored"])
    assert [e.data["order_id"] for e in ignored] == [order.id]


def order_journal(run: RobotRun, order_id: str) -> list[str]:
    """The types of the journal lines about one order, in order."""
    return [e.type for e in run.read.journal(run.run_id) if e.data.get("order_id") == order_id]


def test_the_journal_has_one_line_per_order_event(db_url: str) -> None:
    run = run_robot(db_url, Scripted, flat_bars(3), params=plan(buy(0, 10), buy(0, 5, limit=50.0)))
    filled, expired = run.read.orders("bot")
    assert order_journal(run, filled.id) == ["order_pending", "fill"]
    assert order_journal(run, expired.id) == ["order_pending", "order_expired"]


def test_an_order_cancelled_as_it_reaches_the_market_is_journalled_once(db_url: str) -> None:
    # affordable at the last price, but the market opens too high for the cash there is
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6), (200, 200, 200, 200, 1e6), (200, 200, 200, 200, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 1)), starting_cash=150)
    (order,) = run.read.orders("bot")
    assert (order.status, order.reason) == ("cancelled", "insufficient cash at fill")
    assert order_journal(run, order.id) == ["order_pending", "order_cancelled"]


# -- account rules ---------------------------------------------------------------------------------
def test_insufficient_buying_power_is_rejected_with_the_reason(db_url: str) -> None:
    run = run_robot(db_url, Scripted, flat_bars(3), params=plan(buy(0, 20)), starting_cash=1000)
    (order,) = run.read.orders("bot")
    assert order.status == "rejected"
    assert order.reason == "insufficient buying power: needs 2,000.00, available 1,000.00"
    assert run.read.fills("bot") == []
    rejected = run.read.journal(run.run_id, ["order_rejected"])
    assert [e.data["reason"] for e in rejected] == [order.reason]


def test_buying_power_counts_cash_reserved_by_open_orders(db_url: str) -> None:
    run = run_robot(
        db_url,
        Scripted,
        flat_bars(2),
        params=plan(buy(0, 6, limit=99.0, tif="gtc"), buy(0, 5)),
        starting_cash=1000,
    )
    first, second = run.read.orders("bot")
    assert first.status != "rejected"
    assert second.status == "rejected"
    assert "available 406.00" in second.reason


def test_short_selling_is_rejected_by_default(db_url: str) -> None:
    run = run_robot(db_url, Scripted, flat_bars(3), params=plan(sell(0, 10)))
    (order,) = run.read.orders("bot")
    assert order.status == "rejected"
    assert order.reason == "short selling is off: selling 10 with 0 available"
    assert run.read.fills("bot") == []


def test_selling_more_than_held_is_rejected_by_default(db_url: str) -> None:
    run = run_robot(db_url, Scripted, flat_bars(4), params=plan(buy(0, 10), sell(2, 15)))
    assert [o.status for o in run.read.orders("bot")] == ["filled", "rejected"]


def test_short_selling_is_allowed_by_config(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6)] * 2 + [(90, 90, 90, 90, 1e6)] * 2)
    run = run_robot(db_url, Scripted, frame, params=plan(sell(0, 10), buy(2, 10)), fills={"allow_short": True})
    assert summary(run.read.fills("bot")) == [("sell", 10.0, 100.0, arrived(1)), ("buy", 10.0, 90.0, arrived(3))]
    (position,) = run.read.positions(run.run_id)
    assert (position.qty, position.realized_pnl) == (0, Decimal(100))
    assert run.outcome.summary.final_equity == 100_100.0
    assert run.outcome.summary.round_trips == 1


def test_fills_in_one_event_never_spend_more_cash_than_there_is(db_url: str) -> None:
    # each buy is affordable at the last price (80) and both together too; the market then opens at 100
    frame = bars(SYMBOL, [(80, 80, 80, 80, 1e6), (100, 100, 100, 100, 1e6), (100, 100, 100, 100, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 60), buy(0, 60)), starting_cash=10_000)
    assert sum(f.qty for f in run.read.fills("bot")) <= 100
    assert min(p.cash for p in run.read.equity("bot")) >= 0


def test_a_take_profit_placed_with_its_entry_is_not_cancelled_when_both_trade_in_one_bar(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6), (100, 106, 99, 100, 1e6), (100, 100, 100, 100, 1e6)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10), sell(0, 10, limit=105.0, tif="gtc")))
    entry, exit_ = run.read.orders("bot")
    assert entry.status == "filled"
    assert (exit_.status, exit_.reason) in {("working", ""), ("filled", "")}


# -- fees ------------------------------------------------------------------------------------------
def test_fees_are_stored_on_fills_and_orders_and_charged_to_cash(db_url: str) -> None:
    frame = bars(SYMBOL, [(100, 100, 100, 100, 1e6)] * 2 + [(100, 101, 99, 100, 1e6)] * 2)
    run = run_robot(
        db_url,
        Scripted,
        frame,
        params=plan(buy(0, 10), buy(0, 300), sell(1, 100, limit=100.5, tif="gtc")),
        fees={"per_share": "0.005", "minimum": "1", "maker_percent": "0.1", "taker_percent": "0.2"},
    )
    fills = run.read.fills("bot")
    # taker: 0.005 x 10 + 0.2 % of 1,000 = 2.05; taker: 1.50 + 60 = 61.50; maker: 0.50 + 0.1 % of 10,050 = 10.55
    assert [(f.qty, f.liquidity, f.fee) for f in fills] == [
        (10.0, "taker", Decimal("2.05")),
        (300.0, "taker", Decimal("61.5")),
        (100.0, "maker", Decimal("10.55")),
    ]
    assert [o.fees for o in run.read.orders("bot")] == [f.fee for f in fills]
    assert run.outcome.summary.fees == pytest.approx(74.10)
    final = run.read.equity("bot")[-1]
    assert final.cash == pytest.approx(100_000 - 1_000 - 30_000 + 10_050 - 74.10)


def test_fee_minimum_applies_to_a_small_fill(db_url: str) -> None:
    run = run_robot(db_url, Scripted, flat_bars(3), params=plan(buy(0, 10)), fees={"per_share": "0.01", "minimum": 1})
    assert [f.fee for f in run.read.fills("bot")] == [Decimal(1)]


# -- tiers -----------------------------------------------------------------------------------------
def test_trades_data_fill_at_the_next_trade(db_url: str) -> None:
    frame = trades(SYMBOL, [(50.0, 100), (50.5, 100), (51.0, 100), (51.5, 100)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, on="trade"), sell(2, 10, on="trade")))
    fills = run.read.fills("bot")
    assert [(f.side, f.price, f.tier, f.ts) for f in fills] == [
        ("buy", 50.5, "trade", ns("2024-01-02 14:30:01")),
        ("sell", 51.5, "trade", ns("2024-01-02 14:30:03")),
    ]
    assert len(run.strategy.trades) == 4
    assert run.strategy.bars == []


def test_trades_data_cap_each_fill_by_participation_of_the_print(db_url: str) -> None:
    frame = trades(SYMBOL, [(50.0, 100), (50.5, 100), (51.0, 300)])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 25, on="trade", tif="gtc")))
    assert [(f.qty, f.price) for f in run.read.fills("bot")] == [(10.0, 50.5), (15.0, 51.0)]


def minute_bars_and_quotes(tmp_path: Path, rows: list[tuple[float, float, float, float]]) -> ReplayFeed:
    """Two one-minute bars from 14:30 (to decide on), and quotes from 14:31:01, one a second (to fill on)."""
    decide = bars(SYMBOL, [(100, 100, 100, 100, 1e6)] * 2, start="2024-01-02 14:30", freq="1min")
    return replay(tmp_path, decide, quotes(SYMBOL, rows, start="2024-01-02 14:31:01"))


def test_quotes_data_buy_at_the_ask_and_sell_at_the_bid(db_url: str, tmp_path: Path) -> None:
    feed = minute_bars_and_quotes(tmp_path, [(99.9, 100.1, 500, 500)] * 60 + [(99.8, 100.2, 500, 500)] * 2)
    run = run_robot(db_url, Scripted, feed, params=plan(buy(0, 5), sell(1, 5)))
    fills = run.read.fills("bot")
    assert [(f.side, f.price, f.tier, f.ts) for f in fills] == [
        ("buy", 100.1, "quote", ns("2024-01-02 14:31:01")),  # bar 0 closes at 14:31, the order arrives 0.25 s later
        ("sell", 99.8, "quote", ns("2024-01-02 14:32:01")),
    ]


def test_quotes_cap_fills_at_the_displayed_size(db_url: str, tmp_path: Path) -> None:
    feed = minute_bars_and_quotes(tmp_path, [(99.9, 100.1, 500, 3), (99.8, 100.2, 500, 500)])
    run = run_robot(db_url, Scripted, feed, params=plan(buy(0, 5, tif="gtc")))
    assert [(f.qty, f.price) for f in run.read.fills("bot")] == [(3.0, 100.1), (2.0, 100.2)]


def test_bars_do_not_fill_orders_when_quotes_exist(db_url: str, tmp_path: Path) -> None:
    decide = bars(SYMBOL, [(100, 100, 90, 95, 1e6)] * 3, start="2024-01-02 14:30", freq="1min")
    feed = replay(tmp_path, decide, quotes(SYMBOL, [(99.9, 100.1, 500, 500)] * 3, start="2024-01-02 14:29:57"))
    run = run_robot(db_url, Scripted, feed, params=plan(buy(0, 5, limit=99.0)))
    assert run.read.fills("bot") == []  # the bars went through 99, but quotes decide and never reached it
