"""Tests of the incremental indicators against numpy/pandas references over random series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robohost.domain.indicators import EMA, RSI, SMA, Indicator

prices = st.lists(st.floats(min_value=1.0, max_value=1000.0, allow_nan=False), min_size=1, max_size=120)
periods = st.integers(min_value=1, max_value=30)


def feed(indicator: Indicator, series: list[float]) -> list[float]:
    """Update ``indicator`` with each price; return its value after each (NaN until ready)."""
    values = []
    for price in series:
        indicator.update(price)
        values.append(indicator.value)
    return values


def assert_matches(got: list[float], expected: np.ndarray) -> None:
    """Same readiness at each step, and the same values where ready."""
    assert [math.isnan(v) for v in got] == [bool(np.isnan(v)) for v in expected]
    ready = ~np.isnan(expected)
    np.testing.assert_allclose(np.array(got)[ready], expected[ready], rtol=1e-9, atol=1e-9)


def seeded_ewm(values: np.ndarray, period: int, alpha: float) -> np.ndarray:
    """NaN for the first ``period - 1`` values, then the mean of the first ``period``, then an ewm."""
    out = np.full(len(values), np.nan)
    if len(values) < period:
        return out
    seed = values[:period].mean()
    tail = pd.Series(np.concatenate(([seed], values[period:])))
    out[period - 1 :] = tail.ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


@settings(max_examples=60)
@given(prices, periods)
def test_sma_matches_a_pandas_rolling_mean(series: list[float], period: int) -> None:
    expected = pd.Series(series).rolling(period).mean().to_numpy()
    assert_matches(feed(SMA(period), series), expected)


def test_sma_stays_accurate_over_many_cycles() -> None:
    rng = np.random.default_rng(7)
    series = (1e6 + rng.normal(0, 1, 20_000)).tolist()
    got = feed(SMA(7), series)
    np.testing.assert_allclose(got[-1000:], pd.Series(series).rolling(7).mean().to_numpy()[-1000:], rtol=1e-12)


@settings(max_examples=60)
@given(prices, periods)
def test_ema_matches_an_sma_seeded_pandas_ewm(series: list[float], period: int) -> None:
    expected = seeded_ewm(np.array(series), period, 2.0 / (period + 1))
    assert_matches(feed(EMA(period), series), expected)


def rsi_reference(series: list[float], period: int) -> np.ndarray:
    """Wilder's RSI with numpy: SMA-seeded Wilder smoothing (alpha 1/period) of gains and losses."""
    values = np.array(series)
    out = np.full(len(values), np.nan)
    if len(values) <= period:
        return out
    change = np.diff(values)
    gain = seeded_ewm(np.where(change > 0, change, 0.0), period, 1.0 / period)
    loss = seeded_ewm(np.where(change < 0, -change, 0.0), period, 1.0 / period)
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = np.where(loss == 0.0, 100.0, 100.0 - 100.0 / (1.0 + gain / loss))
    out[1:] = np.where(np.isnan(gain), np.nan, rsi)
    return out


@settings(max_examples=60)
@given(prices, st.integers(min_value=1, max_value=20))
def test_rsi_matches_a_wilder_reference(series: list[float], period: int) -> None:
    got = feed(RSI(period), series)
    assert_matches(got, rsi_reference(series, period))
    assert all(0.0 <= v <= 100.0 for v in got if not math.isnan(v))


def test_rsi_of_a_rising_series_is_100_and_of_a_falling_one_is_0() -> None:
    assert feed(RSI(3), [1.0, 2.0, 3.0, 4.0])[-1] == 100.0
    assert feed(RSI(3), [4.0, 3.0, 2.0, 1.0])[-1] == 0.0


def test_rsi_worked_example() -> None:
    # changes +1, -1, +2 -> avg gain 1, avg loss 1/3 -> RS 3 -> RSI 75
    assert feed(RSI(3), [10.0, 11.0, 10.0, 12.0])[-1] == pytest.approx(75.0)


@pytest.mark.parametrize("make", [SMA, EMA, RSI])
def test_not_ready_until_enough_prices(make: type[Indicator]) -> None:
    indicator = make(3)
    needed = 4 if make is RSI else 3
    for i in range(needed):
        assert not indicator.ready
        assert math.isnan(indicator.value)
        indicator.update(10.0 + i)
    assert indicator.ready


@pytest.mark.parametrize("make", [SMA, EMA, RSI])
@pytest.mark.parametrize("period", [0, -3])
def test_a_period_below_one_is_refused(make: type[Indicator], period: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        make(period)
