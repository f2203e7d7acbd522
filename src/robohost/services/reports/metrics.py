"""Performance metrics of a trading period, from its daily equity and its trades: the one place they are computed.

Pure numpy and pandas: no I/O and no robohost imports. Definitions (the README's "Reports" repeats them):

- The equity series holds the equity before the period (``E0``) then the equity at each day's close
  (``E1 … En``); the daily returns are ``r_i = E_i / E_{i-1} - 1`` (``n`` of them).
- ``periods_per_year`` (``P``) annualises: 252 for markets with trading days, 365 for markets open every day.
- Total return ``En / E0 - 1``; CAGR ``(En / E0) ** (P / n) - 1``; annualised volatility ``std(r) * sqrt(P)``
  (sample standard deviation, ddof 1); Sharpe ``mean(r) / std(r) * sqrt(P)`` (risk-free rate 0);
  Sortino ``mean(r) * P / (sqrt(mean(min(r, 0) ** 2)) * sqrt(P))``; maximum drawdown, a positive fraction,
  the largest fall of the equity from its running peak; Calmar ``CAGR / maximum drawdown``.
- Trades: win rate = winning trades / trades; profit factor = gross profit / gross loss; average win and
  average loss (negative) over the winning and losing trades.
- Exposure: the fraction of days that ended with a position open. Turnover: traded notional / mean equity,
  per year.

These match empyrical's definitions (``sharpe_ratio``, ``sortino_ratio``, ``max_drawdown``, ``annual_return``,
``annual_volatility``, ``calmar_ratio``); a test checks it. A figure that is undefined (no variance, no loss,
no trade) is NaN, never a made-up number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

TRADING_DAYS = 252
"""Periods per year of a market with trading days (stocks)."""
CALENDAR_DAYS = 365
"""Periods per year of a market open every day (crypto)."""

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def daily_returns(equity: pd.Series) -> pd.Series:
    """The returns of ``equity`` (``E0`` first) from one close to the next: ``n`` values for ``n + 1`` points."""
    values = equity.to_numpy(dtype=np.float64)
    return pd.Series(values[1:] / values[:-1] - 1.0, index=equity.index[1:], name="return")


def total_return(returns: np.ndarray) -> float:
    """Compounded return of the whole series, a fraction."""
    return float(np.prod(1.0 + np.asarray(returns, dtype=np.float64)) - 1.0) if len(returns) else math.nan


def cagr(returns: np.ndarray, periods_per_year: int) -> float:
    """Compound annual growth rate, with ``len(returns) / periods_per_year`` years."""
    n = len(returns)
    if n == 0:
        return math.nan
    growth = 1.0 + total_return(returns)
    return float(growth ** (periods_per_year / n) - 1.0) if growth > 0 else -1.0


def annual_volatility(returns: np.ndarray, periods_per_year: int) -> float:
    """Sample standard deviation of the returns times ``sqrt(periods_per_year)``."""
    r = np.asarray(returns, dtype=np.float64)
    return float(r.std(ddof=1) * math.sqrt(periods_per_year)) if len(r) >= 2 else math.nan


def sharpe_ratio(returns: np.ndarray, periods_per_year: int = 1) -> float:
    """Mean over sample standard deviation, times ``sqrt(periods_per_year)`` (1: not annualised); NaN if flat."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return math.nan
    std = r.std(ddof=1)
    return float(r.mean() / std * math.sqrt(periods_per_year)) if std > 0 else math.nan


def sortino_ratio(returns: np.ndarray, periods_per_year: int) -> float:
    """Annualised mean over annualised downside deviation (below 0); NaN without a losing period."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) * math.sqrt(periods_per_year)
    return float(r.mean() * periods_per_year / downside) if downside > 0 else math.nan


def drawdowns(equity: pd.Series) -> pd.Series:
    """The fall of ``equity`` from its running peak at each point, a positive fraction (0 at a new high)."""
    values = equity.to_numpy(dtype=np.float64)
    peaks = np.maximum.accumulate(values)
    return pd.Series(1.0 - values / peaks, index=equity.index, name="drawdown")


def max_drawdown(equity: pd.Series) -> float:
    """The largest fall of ``equity`` from a running peak, a positive fraction."""
    return float(drawdowns(equity).max()) if len(equity) else math.nan


def max_drawdown_of_paths(paths: np.ndarray) -> np.ndarray:
    """The maximum drawdown of each row of ``paths`` (equity values, one path per row)."""
    peaks = np.maximum.accumulate(paths, axis=1)
    return np.asarray((1.0 - paths / peaks).max(axis=1))


def calmar_ratio(returns: np.ndarray, equity: pd.Series, periods_per_year: int) -> float:
    """CAGR over maximum drawdown; NaN without a drawdown."""
    mdd = max_drawdown(equity)
    return cagr(returns, periods_per_year) / mdd if mdd > 0 else math.nan


@dataclass(frozen=True, slots=True)
class DrawdownSpell:
    """The deepest drawdown: its depth, peak, trough and recovery (None while not recovered) and its length."""

    depth: float
    peak: pd.Timestamp
    trough: pd.Timestamp
    recovery: pd.Timestamp | None
    days: int  # calendar days from the peak to the recovery, or to the last day when not recovered


def deepest_drawdown(equity: pd.Series) -> DrawdownSpell | None:
    """The maximum drawdown with its dates; None when the equity never fell below a previous peak."""
    dd = drawdowns(equity)
    if not len(dd) or dd.max() <= 0:
        return None
    values = dd.to_numpy()
    trough = int(values.argmax())
    peak = int(np.flatnonzero(values[: trough + 1] == 0.0)[-1])
    after = np.flatnonzero(values[trough:] == 0.0)
    recovery = trough + int(after[0]) if len(after) else None
    index = equity.index
    last = index[recovery] if recovery is not None else index[-1]
    return DrawdownSpell(
        depth=float(values[trough]),
        peak=index[peak],
        trough=index[trough],
        recovery=index[recovery] if recovery is not None else None,
        days=int((last - index[peak]).days),
    )


@dataclass(frozen=True, slots=True)
class TradeStats:
    """Win rate, profit factor and average win/loss of closed trades (net P&L, fees included)."""

    trades: int
    wins: int
    losses: int
    win_rate: float
    profit_factor: float
    average_win: float
    average_loss: float  # negative
    gross_profit: float
    gross_loss: float  # positive


def trade_stats(pnls: np.ndarray) -> TradeStats:
    """Summarise the net P&L of closed trades; a trade at exactly 0 counts as neither win nor loss."""
    p = np.asarray(pnls, dtype=np.float64)
    wins, losses = p[p > 0], p[p < 0]
    gross_profit, gross_loss = float(wins.sum()), float(-losses.sum())
    return TradeStats(
        trades=len(p),
        wins=len(wins),
        losses=len(losses),
        win_rate=len(wins) / len(p) if len(p) else math.nan,
        profit_factor=gross_profit / gross_loss if gross_loss > 0 else math.nan,
        average_win=float(wins.mean()) if len(wins) else math.nan,
        average_loss=float(losses.mean()) if len(losses) else math.nan,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
    )


def exposure(in_market: np.ndarray) -> float:
    """The fraction of days that ended with a position open."""
    flags = np.asarray(in_market, dtype=bool)
    return float(flags.mean()) if len(flags) else math.nan


def turnover(traded_notional: float, equity: pd.Series, periods: int, periods_per_year: int) -> float:
    """Traded notional over mean equity, scaled to one year of ``periods_per_year`` periods."""
    mean_equity = float(equity.mean()) if len(equity) else 0.0
    if periods == 0 or mean_equity <= 0:
        return math.nan
    return traded_notional / mean_equity * periods_per_year / periods


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Compounded return of each calendar month (rows: years; columns: months, then "Year"); NaN where no data.

    A month's return is its last close over the previous month's last close (``E0`` for the first month).
    """
    closes = equity.iloc[1:]
    if closes.empty:
        return pd.DataFrame(columns=[*MONTHS, "Year"], dtype=np.float64)
    days = pd.DatetimeIndex(closes.index)
    month_end = closes.groupby([days.year, days.month]).last()
    previous = month_end.shift(1)
    previous.iloc[0] = equity.iloc[0]
    table = (month_end / previous - 1.0).unstack().reindex(columns=range(1, 13))
    table.columns = pd.Index(MONTHS)
    table["Year"] = (1.0 + table.fillna(0.0)).prod(axis=1) - 1.0
    table.index.name = "year"
    return table.astype(np.float64)


@dataclass(frozen=True, slots=True)
class PerformanceMetrics:
    """Every summary figure of a period (fractions, not percentages; NaN where undefined)."""

    periods_per_year: int
    days: int  # daily returns in the period
    starting_equity: float
    ending_equity: float
    total_return: float
    cagr: float
    annual_volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    drawdown: DrawdownSpell | None
    trades: TradeStats
    exposure: float
    turnover: float


def performance(
    equity: pd.Series,
    trade_pnls: np.ndarray,
    in_market: np.ndarray,
    traded_notional: float,
    periods_per_year: int,
) -> PerformanceMetrics:
    """Compute the period's metrics from its daily equity (``E0`` first), closed trades' net P&L,
    the days ended in the market, and the notional traded."""
    returns = daily_returns(equity).to_numpy()
    return PerformanceMetrics(
        periods_per_year=periods_per_year,
        days=len(returns),
        starting_equity=float(equity.iloc[0]),
        ending_equity=float(equity.iloc[-1]),
        total_return=total_return(returns),
        cagr=cagr(returns, periods_per_year),
        annual_volatility=annual_volatility(returns, periods_per_year),
        sharpe=sharpe_ratio(returns, periods_per_year),
        sortino=sortino_ratio(returns, periods_per_year),
        calmar=calmar_ratio(returns, equity, periods_per_year),
        max_drawdown=max_drawdown(equity),
        drawdown=deepest_drawdown(equity),
        trades=trade_stats(trade_pnls),
        exposure=exposure(in_market),
        turnover=turnover(traded_notional, equity.iloc[1:], len(returns), periods_per_year),
    )
