"""Tests of the pre-trade risk gate and the daily-loss kill switch."""

from __future__ import annotations

import pytest

from robohost.domain.risk import RiskGate, RiskLimits
from robohost.domain.values import NS_PER_MINUTE, NS_PER_SECOND


def check(
    limits: RiskLimits,
    qty: float,
    price: float = 10.0,
    *,
    position: float = 0.0,
    gross: float = 0.0,
    ts: int = 0,
) -> tuple[str, str] | None:
    """Check one order of signed ``qty`` at ``price`` against a fresh gate."""
    return RiskGate(limits).check_order(ts, qty, price, position + qty, gross, position)


def rule(result: tuple[str, str] | None) -> str | None:
    """The name of the broken rule, or None."""
    return None if result is None else result[0]


def test_no_limits_accept_everything() -> None:
    assert check(RiskLimits(), 1e9, 1e6, gross=1e12) is None


def test_max_order_notional() -> None:
    limits = RiskLimits(max_order_notional=1000.0)
    assert check(limits, 100, 10.0) is None  # exactly at the limit
    breach = check(limits, -101, 10.0)
    assert rule(breach) == "max_order_notional"
    assert breach is not None
    assert "1,010.00" in breach[1]
    assert "1,000.00" in breach[1]


def test_max_position_counts_the_position_after_the_order() -> None:
    limits = RiskLimits(max_position=100)
    assert check(limits, 40, position=60) is None
    breach = check(limits, 41, position=60)
    assert rule(breach) == "max_position"
    assert breach is not None
    assert "101" in breach[1]


def test_max_position_applies_to_shorts() -> None:
    assert rule(check(RiskLimits(max_position=100), -101)) == "max_position"


def test_orders_that_reduce_a_position_over_a_limit_are_allowed() -> None:
    limits = RiskLimits(max_position=10, max_position_notional=100.0, max_gross_exposure=100.0)
    assert check(limits, -50, position=200, gross=2000.0) is None


def test_max_position_notional() -> None:
    limits = RiskLimits(max_position_notional=5000.0)
    assert check(limits, 50, 100.0) is None
    assert rule(check(limits, 51, 100.0)) == "max_position_notional"
    assert rule(check(limits, 1, 100.0, position=50)) == "max_position_notional"


def test_max_gross_exposure_adds_the_increase_to_the_current_exposure() -> None:
    limits = RiskLimits(max_gross_exposure=10_000.0)
    assert check(limits, 10, 100.0, gross=9_000.0) is None
    breach = check(limits, 11, 100.0, gross=9_000.0)
    assert rule(breach) == "max_gross_exposure"
    assert breach is not None
    assert "10,100.00" in breach[1]


def test_max_orders_per_minute_is_a_sliding_window() -> None:
    gate = RiskGate(RiskLimits(max_orders_per_minute=2))
    t0 = 1_000 * NS_PER_MINUTE
    assert gate.check_order(t0, 1, 10.0, 1, 0.0, 0) is None
    assert gate.check_order(t0 + 30 * NS_PER_SECOND, 1, 10.0, 2, 0.0, 1) is None
    assert rule(gate.check_order(t0 + 59 * NS_PER_SECOND, 1, 10.0, 3, 0.0, 2)) == "max_orders_per_minute"
    # the first order leaves the window one minute after it was placed
    assert gate.check_order(t0 + NS_PER_MINUTE, 1, 10.0, 3, 0.0, 2) is None
    assert rule(gate.check_order(t0 + NS_PER_MINUTE, 1, 10.0, 4, 0.0, 3)) == "max_orders_per_minute"


def test_rejected_orders_do_not_use_up_the_order_rate() -> None:
    gate = RiskGate(RiskLimits(max_orders_per_minute=1, max_order_notional=100.0))
    assert rule(gate.check_order(0, 100, 10.0, 100, 0.0, 0)) == "max_order_notional"
    assert gate.check_order(1, 1, 10.0, 1, 0.0, 0) is None


def test_daily_loss_needs_a_day_start() -> None:
    gate = RiskGate(RiskLimits(max_daily_loss=100.0))
    assert gate.check_equity(0.0) is None
    gate.start_day(10_000.0)
    assert gate.check_equity(9_900.0) is None  # a loss of exactly the limit is allowed
    breach = gate.check_equity(9_899.0)
    assert rule(breach) == "max_daily_loss"
    assert breach is not None
    assert "kill switch" in breach[1]
    gate.start_day(9_899.0)
    assert gate.check_equity(9_850.0) is None


@pytest.mark.parametrize("equity", [10_000.0, 20_000.0])
def test_no_daily_loss_limit_never_halts(equity: float) -> None:
    gate = RiskGate(RiskLimits())
    gate.start_day(1e9)
    assert gate.check_equity(equity) is None
