"""The report's metrics: a hand-worked example, and empyrical-reloaded on the same returns."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest

from robohost.services.reports import metrics as m


def hand_equity() -> pd.Series:
    """Four daily returns worked by hand.

    Equity 100 (E0, 2024-01-31), then 110, 99, 99, 118.8 at the closes of 2024-02-01, 02-29, 03-01, 03-29.
    Returns: +10 %, -10 %, 0 %, +20 %. Mean 0.05; deviations 0.05, -0.15, -0.05, 0.15, squares summing to
    0.05, sample variance 0.05 / 3, standard deviation 0.1290994. With 4 periods a year (one year in all):
    total return and CAGR 118.8 / 100 - 1 = 18.8 %; volatility 0.1290994 x 2 = 0.2581989; Sharpe
    0.05 / 0.1290994 x 2 = 0.7745967; downside: only -0.1 is below 0, sqrt(0.01 / 4) x 2 = 0.1, Sortino
    0.05 x 4 / 0.1 = 2; maximum drawdown 1 - 99 / 110 = 10 % (peak 02-01, trough 02-29, recovered 03-29,
    57 days); Calmar 0.188 / 0.1 = 1.88. February: 99 / 100 - 1 = -1 %; March: 118.8 / 99 - 1 = +20 %.
    """
    days = pd.to_datetime(["2024-01-31", "2024-02-01", "2024-02-29", "2024-03-01", "2024-03-29"])
    return pd.Series([100.0, 110.0, 99.0, 99.0, 118.8], index=days)


def test_a_hand_worked_example() -> None:
    equity = hand_equity()
    returns = m.daily_returns(equity).to_numpy()
    np.testing.assert_allclose(returns, [0.1, -0.1, 0.0, 0.2], rtol=1e-12)
    got = m.performance(equity, np.array([100.0, -50.0, 30.0, -20.0, 0.0]), np.array([1, 1, 0, 1]), 1000.0, 4)
    assert got.days == 4
    assert (got.starting_equity, got.ending_equity) == (100.0, 118.8)
    assert got.total_return == pytest.approx(0.188, rel=1e-12)
    assert got.cagr == pytest.approx(0.188, rel=1e-12)
    assert got.annual_volatility == pytest.approx(0.2581989, rel=1e-6)
    assert got.sharpe == pytest.approx(0.7745967, rel=1e-6)
    assert got.sortino == pytest.approx(2.0, rel=1e-12)
    assert got.max_drawdown == pytest.approx(0.1, rel=1e-12)
    assert got.calmar == pytest.approx(1.88, rel=1e-12)
    spell = got.drawdown
    assert spell is not None
    assert (spell.peak, spell.trough, spell.recovery) == tuple(
        pd.to_datetime(["2024-02-01", "2024-02-29", "2024-03-29"])
    )
    assert spell.days == 57
    # trades +100, -50, +30, -20, 0: two wins of five, 130 won against 70 lost
    t = got.trades
    assert (t.trades, t.wins, t.losses) == (5, 2, 2)
    assert t.win_rate == 0.4
    assert t.profit_factor == pytest.approx(130 / 70)
    assert (t.average_win, t.average_loss) == (65.0, -35.0)
    assert got.exposure == 0.75
    # 1,000 traded over a mean close of (110 + 99 + 99 + 118.8) / 4 = 106.7, four periods being one year
    assert got.turnover == pytest.approx(1000 / 106.7)

    months = m.monthly_returns(equity)
    assert list(months.index) == [2024]
    assert months.loc[2024, "Feb"] == pytest.approx(-0.01)
    assert months.loc[2024, "Mar"] == pytest.approx(0.2)
    assert months.loc[2024, "Year"] == pytest.approx(0.188)
    assert months.loc[2024, ["Jan", "Apr", "Dec"]].isna().all()


@pytest.mark.parametrize("periods_per_year", [m.TRADING_DAYS, m.CALENDAR_DAYS])
def test_the_ratios_equal_empyrical(periods_per_year: int) -> None:
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0006, 0.012, 700) + rng.standard_t(4, 700) * 0.002
    equity = pd.Series(
        100_000.0 * np.concatenate([[1.0], np.cumprod(1.0 + returns)]),
        index=pd.date_range("2020-01-01", periods=701, freq="D"),
    )
    r = m.daily_returns(equity).to_numpy()
    np.testing.assert_allclose(r, returns, rtol=1e-9)
    ann = {"annualization": periods_per_year}
    pairs = [
        (m.sharpe_ratio(r, periods_per_year), empyrical.sharpe_ratio(returns, **ann)),
        (m.sortino_ratio(r, periods_per_year), empyrical.sortino_ratio(returns, **ann)),
        (m.max_drawdown(equity), -empyrical.max_drawdown(returns)),
        (m.cagr(r, periods_per_year), empyrical.annual_return(returns, **ann)),
        (m.annual_volatility(r, periods_per_year), empyrical.annual_volatility(returns, **ann)),
        (m.calmar_ratio(r, equity, periods_per_year), empyrical.calmar_ratio(returns, **ann)),
    ]
    for ours, theirs in pairs:
        assert math.isfinite(ours)
        assert ours == pytest.approx(theirs, rel=1e-9)


def test_undefined_figures_are_nan_not_invented() -> None:
    flat = pd.Series([100.0] * 5, index=pd.date_range("2024-01-01", periods=5))
    got = m.performance(flat, np.array([]), np.array([False] * 4), 0.0, 252)
    assert got.total_return == 0.0
    assert got.max_drawdown == 0.0 and got.drawdown is None
    for value in (got.sharpe, got.sortino, got.calmar, got.trades.win_rate, got.trades.profit_factor):
        assert math.isnan(value)
    assert math.isnan(m.trade_stats(np.array([5.0, 1.0])).profit_factor)  # no losing trade: no profit factor


def test_a_drawdown_not_recovered_lasts_to_the_end() -> None:
    equity = pd.Series(
        [100.0, 120.0, 90.0, 100.0], index=pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-10", "2024-01-20"])
    )
    spell = m.deepest_drawdown(equity)
    assert spell is not None
    assert spell.depth == pytest.approx(0.25)
    assert spell.recovery is None
    assert spell.days == 18  # from the peak on the 2nd to the last day, the 20th
