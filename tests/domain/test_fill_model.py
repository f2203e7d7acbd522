"""Unit tests of the fill model: each order type and side against bars, trades and quotes, and the fees."""

from __future__ import annotations

from decimal import Decimal

import pytest

from robohost.domain.fill_model import FeeSchedule, FillRules, is_adverse_exit, match_bar, match_quote, match_trade
from robohost.domain.orders import Order
from robohost.domain.values import Liquidity, OrderType, Side

NO_SLIP = FillRules(slippage_bps=0.0)


def never() -> float:
    """A random source that never grants a chance (always 1.0, above any probability below 1)."""
    return 0.999999


def always() -> float:
    """A random source that always grants a chance."""
    return 0.0


def order(
    side: Side,
    kind: OrderType = OrderType.MARKET,
    *,
    limit: float | None = None,
    stop: float | None = None,
    rested: bool = False,
) -> Order:
    """An order of 10 units of XYZ."""
    o = Order("o-1", "XYZ", side, 10.0, kind, created_ts=0, active_ts=0, limit=limit, stop=stop)
    o.rested = rested
    return o


BUY, SELL = Side.BUY, Side.SELL
LIMIT, STOP, STOP_LIMIT = OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT


# -- market orders ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("side", "expected"), [(BUY, 100.0 + 0.1 + 0.4), (SELL, 100.0 - 0.1 - 0.4)])
def test_market_fills_at_the_open_moved_against_the_order_by_slippage(side: Side, expected: float) -> None:
    rules = FillRules(slippage_bps=10.0, slippage_range_fraction=0.1)  # 10 bps of 100 + 10 % of a 4.0 range
    assert match_bar(order(side), 100.0, 102.0, 98.0, rules, never) == (pytest.approx(expected), Liquidity.TAKER)


@pytest.mark.parametrize("side", [BUY, SELL])
def test_market_without_slippage_fills_exactly_at_the_open(side: Side) -> None:
    assert match_bar(order(side), 100.0, 102.0, 98.0, NO_SLIP, never) == (100.0, Liquidity.TAKER)


# -- limit orders ----------------------------------------------------------------------------------
def test_buy_limit_traded_through_fills_at_the_limit_as_maker() -> None:
    assert match_bar(order(BUY, LIMIT, limit=99.0), 100.0, 101.0, 98.5, NO_SLIP, never) == (99.0, Liquidity.MAKER)


def test_sell_limit_traded_through_fills_at_the_limit_as_maker() -> None:
    got = match_bar(order(SELL, LIMIT, limit=101.0), 100.0, 101.5, 99.0, NO_SLIP, never)
    assert got == (101.0, Liquidity.MAKER)


@pytest.mark.parametrize(
    ("side", "limit", "bar"),
    [(BUY, 99.0, (100.0, 101.0, 99.5)), (SELL, 101.0, (100.0, 100.5, 99.0))],
)
def test_limit_not_reached_does_not_fill(side: Side, limit: float, bar: tuple[float, float, float]) -> None:
    assert match_bar(order(side, LIMIT, limit=limit), *bar, NO_SLIP, always) is None


@pytest.mark.parametrize(
    ("side", "limit", "bar"),
    [(BUY, 99.0, (100.0, 101.0, 99.0)), (SELL, 101.0, (100.0, 101.0, 99.0))],
)
def test_limit_touch_with_probability_zero_never_fills(
    side: Side, limit: float, bar: tuple[float, float, float]
) -> None:
    rules = FillRules(slippage_bps=0.0, touch_fill_probability=0.0)
    assert match_bar(order(side, LIMIT, limit=limit), *bar, rules, always) is None


@pytest.mark.parametrize(
    ("side", "limit", "bar"),
    [(BUY, 99.0, (100.0, 101.0, 99.0)), (SELL, 101.0, (100.0, 101.0, 99.0))],
)
def test_limit_touch_with_probability_one_fills_at_the_limit(
    side: Side, limit: float, bar: tuple[float, float, float]
) -> None:
    rules = FillRules(slippage_bps=0.0, touch_fill_probability=1.0)
    assert match_bar(order(side, LIMIT, limit=limit), *bar, rules, never) == (limit, Liquidity.MAKER)


def test_limit_touch_follows_the_random_draw() -> None:
    rules = FillRules(slippage_bps=0.0, touch_fill_probability=0.5)
    buy = order(BUY, LIMIT, limit=99.0)
    assert match_bar(buy, 100.0, 101.0, 99.0, rules, lambda: 0.49) == (99.0, Liquidity.MAKER)
    assert match_bar(buy, 100.0, 101.0, 99.0, rules, lambda: 0.5) is None


@pytest.mark.parametrize(
    ("side", "limit", "bar", "fill"),
    [(BUY, 99.0, (97.0, 98.0, 96.0), 97.0), (SELL, 101.0, (103.0, 104.0, 102.0), 103.0)],
)
def test_limit_gapped_through_fills_at_the_better_open(
    side: Side, limit: float, bar: tuple[float, float, float], fill: float
) -> None:
    assert match_bar(order(side, LIMIT, limit=limit), *bar, NO_SLIP, never) == (fill, Liquidity.TAKER)
    rested = order(side, LIMIT, limit=limit, rested=True)
    assert match_bar(rested, *bar, NO_SLIP, never) == (fill, Liquidity.MAKER)


def test_limit_ignores_slippage() -> None:
    rules = FillRules(slippage_bps=50.0, slippage_range_fraction=0.5)
    assert match_bar(order(BUY, LIMIT, limit=99.0), 100.0, 101.0, 98.0, rules, never) == (99.0, Liquidity.MAKER)


# -- stop orders -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("side", "stop", "bar"),
    [(BUY, 101.0, (100.0, 101.0, 99.0)), (SELL, 99.0, (100.0, 101.0, 99.0))],
)
def test_stop_triggers_on_touch_and_fills_at_the_stop(side: Side, stop: float, bar: tuple[float, float, float]) -> None:
    assert match_bar(order(side, STOP, stop=stop), *bar, NO_SLIP, never) == (stop, Liquidity.TAKER)


@pytest.mark.parametrize(
    ("side", "stop", "bar"),
    [(BUY, 101.0, (100.0, 100.99, 99.0)), (SELL, 99.0, (100.0, 101.0, 99.01))],
)
def test_stop_not_reached_does_not_trigger(side: Side, stop: float, bar: tuple[float, float, float]) -> None:
    o = order(side, STOP, stop=stop)
    assert match_bar(o, *bar, NO_SLIP, never) is None
    assert not o.triggered


@pytest.mark.parametrize(
    ("side", "stop", "bar", "fill"),
    [(BUY, 101.0, (103.0, 104.0, 102.0), 103.0), (SELL, 99.0, (97.0, 98.0, 96.0), 97.0)],
)
def test_stop_gapped_through_fills_at_the_open(
    side: Side, stop: float, bar: tuple[float, float, float], fill: float
) -> None:
    assert match_bar(order(side, STOP, stop=stop), *bar, NO_SLIP, never) == (fill, Liquidity.TAKER)


def test_stop_fill_takes_slippage() -> None:
    rules = FillRules(slippage_bps=100.0)
    got = match_bar(order(BUY, STOP, stop=101.0), 100.0, 102.0, 99.0, rules, never)
    assert got == (pytest.approx(101.0 * 1.01), Liquidity.TAKER)


# -- stop-limit orders -----------------------------------------------------------------------------
def test_buy_stop_limit_triggers_and_fills_at_the_stop_within_the_limit() -> None:
    o = order(BUY, STOP_LIMIT, stop=101.0, limit=101.5)
    assert match_bar(o, 100.0, 102.0, 99.0, NO_SLIP, never) == (101.0, Liquidity.TAKER)
    assert o.triggered


def test_sell_stop_limit_triggers_and_fills_at_the_stop_within_the_limit() -> None:
    o = order(SELL, STOP_LIMIT, stop=99.0, limit=98.5)
    assert match_bar(o, 100.0, 101.0, 98.0, NO_SLIP, never) == (99.0, Liquidity.TAKER)
    assert o.triggered


def test_buy_stop_limit_gapping_past_its_limit_rests_then_fills_as_a_limit() -> None:
    o = order(BUY, STOP_LIMIT, stop=101.0, limit=101.5)
    assert match_bar(o, 103.0, 104.0, 102.0, NO_SLIP, never) is None  # triggered at 103, above the limit
    assert o.triggered
    o.rested = True
    assert match_bar(o, 102.5, 103.0, 101.6, NO_SLIP, never) is None  # still above the limit: no stop logic now
    assert match_bar(o, 102.0, 102.0, 101.0, NO_SLIP, never) == (101.5, Liquidity.MAKER)


def test_sell_stop_limit_gapping_past_its_limit_rests_then_fills_as_a_limit() -> None:
    o = order(SELL, STOP_LIMIT, stop=99.0, limit=98.5)
    assert match_bar(o, 97.0, 98.0, 96.0, NO_SLIP, never) is None
    assert o.triggered
    o.rested = True
    assert match_bar(o, 98.0, 99.0, 97.5, NO_SLIP, never) == (98.5, Liquidity.MAKER)


def test_stop_limit_not_triggered_stays_untriggered() -> None:
    o = order(BUY, STOP_LIMIT, stop=101.0, limit=101.5)
    assert match_bar(o, 100.0, 100.5, 95.0, NO_SLIP, always) is None  # low far below the limit: not yet a limit
    assert not o.triggered


# -- trades ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("side", "expected"), [(BUY, 50.05), (SELL, 49.95)])
def test_market_against_a_trade_fills_at_its_price_with_slippage(side: Side, expected: float) -> None:
    rules = FillRules(slippage_bps=10.0, slippage_range_fraction=0.5)  # no range on a trade
    assert match_trade(order(side), 50.0, rules, never) == (pytest.approx(expected), Liquidity.TAKER)


def test_limit_against_trades_needs_a_print_through_the_limit() -> None:
    resting = order(BUY, LIMIT, limit=50.0, rested=True)
    assert match_trade(resting, 50.0, NO_SLIP, always) is None  # touch, probability 0
    assert match_trade(resting, 49.9, NO_SLIP, never) == (50.0, Liquidity.MAKER)
    touchy = FillRules(slippage_bps=0.0, touch_fill_probability=1.0)
    assert match_trade(resting, 50.0, touchy, never) == (50.0, Liquidity.MAKER)


def test_marketable_limit_against_a_trade_fills_at_the_trade_as_taker() -> None:
    assert match_trade(order(SELL, LIMIT, limit=50.0), 50.5, NO_SLIP, never) == (50.5, Liquidity.TAKER)


def test_stop_against_trades_triggers_at_or_through_the_stop() -> None:
    assert match_trade(order(SELL, STOP, stop=49.0), 49.5, NO_SLIP, never) is None
    assert match_trade(order(SELL, STOP, stop=49.0), 49.0, NO_SLIP, never) == (49.0, Liquidity.TAKER)
    assert match_trade(order(BUY, STOP, stop=51.0), 51.2, NO_SLIP, never) == (51.2, Liquidity.TAKER)


def test_stop_limit_against_trades_fills_within_the_limit_else_rests() -> None:
    o = order(BUY, STOP_LIMIT, stop=51.0, limit=51.1)
    assert match_trade(o, 51.3, NO_SLIP, never) is None
    assert o.triggered
    assert match_trade(order(BUY, STOP_LIMIT, stop=51.0, limit=51.1), 51.05, NO_SLIP, never) == (
        51.05,
        Liquidity.TAKER,
    )


# -- quotes ----------------------------------------------------------------------------------------
def test_market_buys_at_the_ask_and_sells_at_the_bid() -> None:
    assert match_quote(order(BUY), 99.9, 100.1, NO_SLIP, never) == (100.1, Liquidity.TAKER)
    assert match_quote(order(SELL), 99.9, 100.1, NO_SLIP, never) == (99.9, Liquidity.TAKER)


def test_market_against_a_quote_takes_slippage() -> None:
    rules = FillRules(slippage_bps=100.0)
    assert match_quote(order(BUY), 99.0, 100.0, rules, never) == (pytest.approx(101.0), Liquidity.TAKER)
    assert match_quote(order(SELL), 99.0, 100.0, rules, never) == (pytest.approx(98.01), Liquidity.TAKER)


def test_resting_buy_limit_fills_at_the_limit_when_the_ask_reaches_it() -> None:
    o = order(BUY, LIMIT, limit=100.0, rested=True)
    assert match_quote(o, 100.0, 100.05, NO_SLIP, never) is None
    assert match_quote(o, 99.9, 100.0, NO_SLIP, never) == (100.0, Liquidity.MAKER)


def test_marketable_limit_against_a_quote_fills_at_the_better_quote_as_taker() -> None:
    assert match_quote(order(BUY, LIMIT, limit=101.0), 99.9, 100.1, NO_SLIP, never) == (100.1, Liquidity.TAKER)
    assert match_quote(order(SELL, LIMIT, limit=99.0), 99.9, 100.1, NO_SLIP, never) == (99.9, Liquidity.TAKER)


def test_stops_trigger_on_the_side_of_the_book_they_trade() -> None:
    assert match_quote(order(BUY, STOP, stop=100.1), 100.0, 100.09, NO_SLIP, never) is None
    assert match_quote(order(BUY, STOP, stop=100.1), 100.0, 100.1, NO_SLIP, never) == (100.1, Liquidity.TAKER)
    assert match_quote(order(SELL, STOP, stop=99.9), 99.9, 100.0, NO_SLIP, never) == (99.9, Liquidity.TAKER)


def test_stop_limit_against_a_quote_rests_when_the_book_is_past_the_limit() -> None:
    o = order(SELL, STOP_LIMIT, stop=99.9, limit=99.8)
    assert match_quote(o, 99.5, 99.6, NO_SLIP, never) is None
    assert o.triggered


def test_only_the_stop_leg_is_the_adverse_exit() -> None:
    assert is_adverse_exit(order(SELL, STOP, stop=95.0))
    assert is_adverse_exit(order(SELL, STOP_LIMIT, stop=95.0, limit=94.0))
    assert not is_adverse_exit(order(SELL, LIMIT, limit=110.0))


# -- fees ------------------------------------------------------------------------------------------
def test_fee_is_per_unit_plus_a_rate_of_notional() -> None:
    fees = FeeSchedule(per_unit=Decimal("0.005"), taker_rate=Decimal("0.001"))
    # 100 x 0.005 + 0.001 x 100 x 25.5
    assert fees.fee(100.0, 25.5, Liquidity.TAKER, Decimal(0)) == Decimal("3.05")


def test_maker_and_taker_rates_apply_by_liquidity() -> None:
    fees = FeeSchedule(maker_rate=Decimal("0.001"), taker_rate=Decimal("0.002"))
    assert fees.fee(10.0, 100.0, Liquidity.MAKER, Decimal(0)) == Decimal("1")
    assert fees.fee(10.0, 100.0, Liquidity.TAKER, Decimal(0)) == Decimal("2")


def test_fee_minimum_applies_to_a_small_order() -> None:
    fees = FeeSchedule(per_unit=Decimal("0.01"), minimum=Decimal("1"))
    assert fees.fee(10.0, 50.0, Liquidity.TAKER, Decimal(0)) == Decimal("1")
    assert fees.fee(500.0, 50.0, Liquidity.TAKER, Decimal(0)) == Decimal("5")


def test_fee_minimum_is_topped_up_once_across_partial_fills() -> None:
    """Two partial fills of one order pay max(sum of raw fees, minimum) in all: never the minimum twice."""
    fees = FeeSchedule(per_unit=Decimal("0.01"), minimum=Decimal("1"))
    first = fees.fee(30.0, 50.0, Liquidity.TAKER, Decimal(0))  # raw 0.30, topped up to the minimum
    assert first == Decimal("1")
    raw_first = fees.raw(30.0, 50.0, Liquidity.TAKER)
    second = fees.fee(70.0, 50.0, Liquidity.TAKER, first, raw_first)  # raw 0.70: the order's raw total is 1.00
    assert first + second == Decimal("1")


def test_fee_minimum_top_up_is_not_charged_again_when_the_order_outgrows_it() -> None:
    fees = FeeSchedule(per_unit=Decimal("0.01"), minimum=Decimal("1"))
    first = fees.fee(30.0, 50.0, Liquidity.TAKER, Decimal(0))  # raw 0.30 -> 1.00
    raw_first = fees.raw(30.0, 50.0, Liquidity.TAKER)
    second = fees.fee(170.0, 50.0, Liquidity.TAKER, first, raw_first)  # raw 1.70: raw total 2.00 > minimum
    assert first + second == Decimal("2")


def test_fee_is_quantized_to_a_millionth() -> None:
    fees = FeeSchedule(taker_rate=Decimal("0.0000001"))
    assert fees.fee(3.0, 1.0, Liquidity.TAKER, Decimal(0)) == Decimal("0.000000")
    assert fees.fee(3.0, 1.0, Liquidity.TAKER, Decimal(0)).as_tuple().exponent == -6
