"""Forward test versus backtest: PSR, MinTRL, the bootstrap, the verdict rule, and reading backtest files."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from robohost.errors import ConfigError
from robohost.services.reports import forward as fw

MEAN, SD = 0.001, 0.01  # the backtest's daily returns: a Sharpe of 0.1 a day, about 1.6 a year


def backtest(seed: int = 1, days: int = 2520) -> fw.Backtest:
    """Ten years of daily returns of a robot with an edge."""
    returns = np.random.default_rng(seed).normal(MEAN, SD, days)
    return fw.Backtest("synthetic", pd.Series(returns, index=pd.bdate_range("2012-01-02", periods=days)))


def paper_equity(returns: np.ndarray, start: float = 100_000.0) -> pd.Series:
    """Daily equity (E0 first) of a paper period with these returns."""
    growth = np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    return pd.Series(start * growth, index=pd.bdate_range("2023-01-02", periods=len(returns) + 1))


def test_psr_and_min_trl_follow_bailey_and_lopez_de_prado() -> None:
    # SR 0.1 against SR* 0.05 over 101 normal returns: z = 0.05 x 10 / sqrt(1 + (3 - 1) / 4 x 0.01) = 0.49875
    z = 0.5 / math.sqrt(1.005)
    assert fw.probabilistic_sharpe_ratio(0.1, 0.05, 101, 0.0, 3.0) == pytest.approx(NormalDist().cdf(z), rel=1e-12)
    # negative skew and fat tails widen the Sharpe's error: a smaller PSR for the same excess
    assert fw.probabilistic_sharpe_ratio(0.1, 0.05, 101, -1.0, 9.0) < fw.probabilistic_sharpe_ratio(
        0.1, 0.05, 101, 0.0, 3.0
    )
    # MinTRL(SR 0.1 vs 0) = 1 + 1.005 x (1.644854 / 0.1)^2 = 272.9
    min_trl = fw.min_track_record_length(0.1, 0.0, 0.0, 3.0)
    assert min_trl == pytest.approx(1 + 1.005 * (NormalDist().inv_cdf(0.95) / 0.1) ** 2, rel=1e-12)
    assert min_trl == pytest.approx(272.9, abs=0.05)
    # ... and it is where PSR crosses 95 %
    assert fw.probabilistic_sharpe_ratio(0.1, 0.0, math.ceil(min_trl), 0.0, 3.0) >= 0.95
    assert fw.probabilistic_sharpe_ratio(0.1, 0.0, math.floor(min_trl), 0.0, 3.0) < 0.95
    assert fw.min_track_record_length(0.05, 0.1, 0.0, 3.0) == math.inf


def test_moments_equal_scipy() -> None:
    r = np.random.default_rng(3).standard_t(5, 500) * 0.01
    assert fw.skewness(r) == pytest.approx(stats.skew(r), rel=1e-9)
    assert fw.kurtosis(r) == pytest.approx(stats.kurtosis(r, fisher=False), rel=1e-9)


def test_the_bootstrap_is_seeded() -> None:
    r = backtest().returns.to_numpy()
    a, b = fw.bootstrap_paths(r, 50, paths=100, seed=4), fw.bootstrap_paths(r, 50, paths=100, seed=4)
    assert a.shape == (100, 51) and (a[:, 0] == 1.0).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fw.bootstrap_paths(r, 50, paths=100, seed=5))


def test_paper_returns_from_the_backtest_distribution_are_consistent() -> None:
    paper = np.random.default_rng(100).normal(MEAN, SD, 504)
    ft = fw.compare(paper_equity(paper), backtest(), 252)
    assert ft.verdict == fw.CONSISTENT, ft.reasons
    assert ft.psr > fw.ALPHA
    assert ft.drawdown_percentile <= 95.0
    assert not ft.final_below_band
    assert ft.days == 504 >= ft.min_trl
    assert len(ft.band_low) == len(ft.equity) == 505
    assert (ft.band_low <= ft.band_median).all() and (ft.band_median <= ft.band_high).all()
    assert ft.band_low[0] == ft.band_high[0] == 100_000.0


def test_strongly_negative_paper_returns_are_inconsistent() -> None:
    paper = np.random.default_rng(5).normal(-0.003, SD, 252)
    ft = fw.compare(paper_equity(paper), backtest(), 252)
    assert ft.verdict == fw.INCONSISTENT, ft.reasons
    assert ft.psr < 1e-6
    assert ft.drawdown_percentile > 99.0
    assert ft.final_below_band
    assert any("significantly below" in reason for reason in ft.reasons)


def test_a_record_shorter_than_min_trl_is_inconclusive() -> None:
    paper = np.random.default_rng(7).normal(MEAN, SD, 120)
    ft = fw.compare(paper_equity(paper), backtest(), 252)
    assert ft.psr > fw.ALPHA and not ft.final_below_band and ft.drawdown_percentile <= 95.0
    assert ft.verdict == fw.INCONCLUSIVE
    assert ft.days < ft.min_trl
    assert "minimum track record length" in ft.reasons[-1]


def test_the_rule_rarely_cries_wolf_and_catches_a_lost_edge() -> None:
    """Over 100 seeds: paper drawn like the backtest is called inconsistent about as often as the tests'
    5 % significance allows; a robot that lost its edge and bleeds (-0.2 % a day) almost always is."""
    bt = backtest()

    def verdicts(mean: float, days: int) -> Counter[str]:
        draws = (np.random.default_rng(seed).normal(mean, SD, days) for seed in range(100))
        return Counter(fw.compare(paper_equity(r), bt, 252, paths=200).verdict for r in draws)

    same, lost = verdicts(MEAN, 504), verdicts(-0.002, 252)
    assert same[fw.INCONSISTENT] <= 8, same
    assert same[fw.CONSISTENT] >= 85, same
    assert lost[fw.INCONSISTENT] >= 95, lost
    assert lost[fw.CONSISTENT] == 0, lost


def test_too_few_or_flat_returns_give_no_verdict() -> None:
    short = fw.compare(paper_equity(np.full(10, 0.001)), backtest(), 252)
    assert short.verdict == fw.INCONCLUSIVE and "only 10 daily returns" in short.reasons[0]
    flat = fw.compare(paper_equity(np.zeros(60)), backtest(), 252)
    assert flat.verdict == fw.INCONCLUSIVE and "do not vary" in flat.reasons[0]


# -- backtest files ------------------------------------------------------------------------------
def test_a_daily_returns_file(tmp_path: Path) -> None:
    bt = backtest(days=30).returns
    path = tmp_path / "bt.csv"
    pd.DataFrame({"Date": bt.index.strftime("%Y-%m-%d"), "Return": bt.to_numpy()}).to_csv(path, index=False)
    loaded = fw.load_backtest_csv(path, 100_000.0, 252)
    np.testing.assert_allclose(loaded.returns.to_numpy(), bt.to_numpy(), rtol=1e-12)
    assert "daily returns, 30 days" in loaded.source


def test_a_trades_file_becomes_daily_returns_on_the_capital(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    rows = [
        "symbol,exit_time,pnl",
        "A,2024-01-02T20:00:00Z,1000",  # Tuesday: +1 % of 100,000
        "B,2024-01-02T21:00:00Z,-500",  # same day: net +500
        "A,2024-01-04T20:00:00Z,-1010",  # Thursday: -1010 / 100,500
        "C,,",  # still open: skipped
    ]
    rows += [f"D,2024-02-{day:02d}T20:00:00Z,0" for day in range(1, 30)]  # enough days for a backtest
    path.write_text("\n".join(rows) + "\n")
    returns = fw.load_backtest_csv(path, 100_000.0, 252, "UTC").returns
    assert returns.index[0] == pd.Timestamp("2024-01-02")
    assert returns.iloc[0] == pytest.approx(500 / 100_000)
    assert returns.loc["2024-01-03"] == 0.0  # a business day without exits
    assert returns.loc["2024-01-04"] == pytest.approx(-1010 / 100_500)
    assert pd.Timestamp("2024-01-06") not in returns.index  # weekends are not trading days at 252 a year
    assert pd.Timestamp("2024-02-03") in returns.index  # ... unless a trade exits on one


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("date,value\n2024-01-02,0.1\n", ["no 'exit_time' column", "date, return"]),
        ("exit_time,profit_x\n2024-01-02,1\n", ["no 'pnl' column"]),
        ("date,return\n2024-01-02,0.1\n2024-01-03,abc\n", ["column 'return' line 3", "'abc'"]),
        ("return\n0.1\n", ["needs a 'date' column"]),
    ],
)
def test_a_bad_backtest_file_names_the_file_and_column(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        fw.load_backtest_csv(path, 100_000.0, 252)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_a_backtest_needs_enough_days(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("date,return\n2024-01-02,0.01\n2024-01-03,0.02\n")
    with pytest.raises(ConfigError, match="at least 20 daily returns, found 2"):
        fw.load_backtest_csv(path, 100_000.0, 252)
    with pytest.raises(ConfigError, match="no such file"):
        fw.load_backtest_csv(tmp_path / "missing.csv", 100_000.0, 252)
