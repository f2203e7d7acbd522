"""Forward test versus backtest: is the paper period consistent with the robot's backtest?

The comparison, on daily returns (the README's "Reports" says the same):

- Sharpe ratios per day (not annualised): ``SR`` of the paper period, ``SR_bt`` of the backtest.
- Probabilistic Sharpe ratio (Bailey & López de Prado, 2012) of the paper period against the backtest's
  Sharpe: ``PSR = Φ((SR − SR_bt)·sqrt(n − 1) / sqrt(1 − γ3·SR + (γ4 − 1)/4·SR²))`` with the skewness ``γ3`` and
  the (non-excess) kurtosis ``γ4`` of the paper returns: the probability that the paper period's true Sharpe
  is at least the backtest's.
- Minimum track record length to tell the backtest's Sharpe from zero at 95 %:
  ``MinTRL = 1 + (1 − γ3·SR_bt + (γ4 − 1)/4·SR_bt²)·(Z_0.95 / SR_bt)²`` with the backtest's moments. A
  shorter paper record cannot show that the edge is gone, whatever it shows.
- A bootstrap: ``paths`` equity paths of the paper period's length, built from daily returns drawn with
  replacement from the backtest's (seeded), started at the paper period's starting equity; the 5–95 %
  band of those paths, and the percentile of the paper's maximum drawdown among the paths' drawdowns.

Verdict: **inconsistent** when the paper Sharpe is significantly below the backtest's (PSR < 5 %) *and* the
path says the same (the paper's maximum drawdown beyond the 95th percentile of the bootstrapped drawdowns,
or its final equity below the band's 5 % line); **inconclusive** when only one of those two signs shows,
when the record is shorter than MinTRL, or when the paper returns are too few or flat; else
**consistent**. Must not import ``robohost.cli`` or ``robohost.bootstrap``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from robohost.errors import ConfigError
from robohost.services.reports.metrics import daily_returns, max_drawdown, max_drawdown_of_paths, sharpe_ratio

ALPHA = 0.05
"""Significance of every test of the verdict (one-sided)."""
BAND = (5.0, 95.0)
"""Percentiles of the bootstrap band."""
PATHS = 2_000
SEED = 20120101
MIN_RETURNS = 20
"""Fewest daily returns a backtest must have, and a paper period needs for a verdict."""

DATE_COLUMNS = ("date", "day", "ts", "time", "timestamp", "datetime")
EXIT_COLUMNS = ("exit_time", "exit_ts", "exit_date", "exit")
RETURN_COLUMNS = ("return", "returns")
PNL_COLUMNS = ("pnl", "profit", "net_pnl")

CONSISTENT = "consistent"
INCONCLUSIVE = "inconclusive"
INCONSISTENT = "inconsistent"


@dataclass(frozen=True)
class Backtest:
    """A backtest's daily returns and where they came from."""

    source: str
    returns: pd.Series


def skewness(returns: np.ndarray) -> float:
    """Skewness (third standardised moment, population estimator)."""
    r = np.asarray(returns, dtype=np.float64)
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    return float(np.mean(centred**3) / m2**1.5) if m2 > 0 else math.nan


def kurtosis(returns: np.ndarray) -> float:
    """Kurtosis, not excess (3 for a normal distribution; population estimator)."""
    r = np.asarray(returns, dtype=np.float64)
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    return float(np.mean(centred**4) / m2**2) if m2 > 0 else math.nan


def _sharpe_variance(sr: float, skew: float, kurt: float) -> float:
    """The bracket of PSR and MinTRL: 1 − γ3·SR + (γ4 − 1)/4·SR² (kept positive)."""
    return max(1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr, 1e-12)


def probabilistic_sharpe_ratio(sr: float, sr_star: float, n: int, skew: float, kurt: float) -> float:
    """PSR(SR*): the probability that the true Sharpe exceeds ``sr_star``, given ``sr`` over ``n`` returns.

    Sharpe ratios per period (not annualised); ``kurt`` is the kurtosis, not the excess.
    """
    if n < 2 or not all(map(math.isfinite, (sr, sr_star, skew, kurt))):
        return math.nan
    z = (sr - sr_star) * math.sqrt(n - 1) / math.sqrt(_sharpe_variance(sr, skew, kurt))
    return NormalDist().cdf(z)


def min_track_record_length(sr: float, sr_star: float, skew: float, kurt: float, alpha: float = ALPHA) -> float:
    """MinTRL: the returns needed for an observed ``sr`` to be significantly above ``sr_star`` at 1 − ``alpha``.

    Infinite when ``sr`` is not above ``sr_star``.
    """
    if not all(map(math.isfinite, (sr, sr_star, skew, kurt))):
        return math.nan
    if sr <= sr_star:
        return math.inf
    z = NormalDist().inv_cdf(1.0 - alpha)
    return 1.0 + _sharpe_variance(sr, skew, kurt) * (z / (sr - sr_star)) ** 2


def bootstrap_paths(returns: np.ndarray, length: int, paths: int = PATHS, seed: int = SEED) -> np.ndarray:
    """Growth paths (``paths`` × ``length + 1``, starting at 1) of returns drawn with replacement."""
    rng = np.random.default_rng(seed)
    draws = rng.choice(np.asarray(returns, dtype=np.float64), size=(paths, length), replace=True)
    growth = np.empty((paths, length + 1))
    growth[:, 0] = 1.0
    np.cumprod(1.0 + draws, axis=1, out=growth[:, 1:])
    return growth


@dataclass(frozen=True)
class ForwardTest:
    """The comparison of a paper period with a backtest, its verdict and the numbers behind it."""

    backtest: str
    days: int  # paper daily returns
    backtest_days: int
    periods_per_year: int
    sharpe: float  # per day
    backtest_sharpe: float  # per day
    skewness: float
    kurtosis: float
    psr: float  # PSR against the backtest's Sharpe
    psr_zero: float  # PSR against 0
    min_trl: float  # days, backtest Sharpe against 0
    paths: int
    seed: int
    equity: pd.Series  # the paper equity, E0 first
    band_low: np.ndarray  # per point of ``equity``
    band_median: np.ndarray
    band_high: np.ndarray
    max_drawdown: float
    drawdown_percentile: float  # of the paper drawdown among the bootstrapped ones, 0–100
    drawdown_p95: float
    bootstrap_drawdowns: np.ndarray
    days_outside_band: int
    final_below_band: bool
    verdict: str
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def annual_sharpe(self) -> float:
        """The paper Sharpe, annualised."""
        return self.sharpe * math.sqrt(self.periods_per_year)

    @property
    def annual_backtest_sharpe(self) -> float:
        """The backtest Sharpe, annualised."""
        return self.backtest_sharpe * math.sqrt(self.periods_per_year)


def compare(
    equity: pd.Series,
    backtest: Backtest,
    periods_per_year: int,
    paths: int = PATHS,
    seed: int = SEED,
) -> ForwardTest:
    """Compare the paper daily ``equity`` (E0 first) with ``backtest``'s daily returns; decide a verdict."""
    paper = daily_returns(equity).to_numpy()
    bt = backtest.returns.to_numpy(dtype=np.float64)
    n = len(paper)
    sr, sr_bt = sharpe_ratio(paper), sharpe_ratio(bt)
    skew, kurt = skewness(paper), kurtosis(paper)
    psr = probabilistic_sharpe_ratio(sr, sr_bt, n, skew, kurt)
    min_trl = min_track_record_length(sr_bt, 0.0, skewness(bt), kurtosis(bt))
    growth = bootstrap_paths(bt, n, paths, seed) * float(equity.iloc[0])
    low, median, high = np.percentile(growth, [BAND[0], 50.0, BAND[1]], axis=0)
    boot_dd = max_drawdown_of_paths(growth)
    mdd = max_drawdown(equity)
    values = equity.to_numpy(dtype=np.float64)
    percentile = 100.0 * (float(np.mean(boot_dd < mdd)) + 0.5 * float(np.mean(boot_dd == mdd)))
    final_below = bool(values[-1] < low[-1])
    verdict, reasons = _verdict(n, sr, sr_bt, psr, min_trl, mdd, percentile, final_below, float(low[-1]))
    return ForwardTest(
        backtest=backtest.source,
        days=n,
        backtest_days=len(bt),
        periods_per_year=periods_per_year,
        sharpe=sr,
        backtest_sharpe=sr_bt,
        skewness=skew,
        kurtosis=kurt,
        psr=psr,
        psr_zero=probabilistic_sharpe_ratio(sr, 0.0, n, skew, kurt),
        min_trl=min_trl,
        paths=paths,
        seed=seed,
        equity=equity,
        band_low=low,
        band_median=median,
        band_high=high,
        max_drawdown=mdd,
        drawdown_percentile=percentile,
        drawdown_p95=float(np.percentile(boot_dd, BAND[1])),
        bootstrap_drawdowns=boot_dd,
        days_outside_band=int(np.sum((values < low) | (values > high))),
        final_below_band=final_below,
        verdict=verdict,
        reasons=tuple(reasons),
    )


def _verdict(
    n: int,
    sr: float,
    sr_bt: float,
    psr: float,
    min_trl: float,
    mdd: float,
    dd_percentile: float,
    final_below: bool,
    band_floor: float,
) -> tuple[str, list[str]]:
    """Apply the verdict rule (module docstring); return it with the reasons, in plain words."""
    if n < MIN_RETURNS or not math.isfinite(sr):
        why = f"only {n} daily returns" if n < MIN_RETURNS else "the paper returns do not vary"
        return INCONCLUSIVE, [f"{why}: a verdict needs at least {MIN_RETURNS} varying daily returns"]
    reasons = []
    sharpe_below = psr < ALPHA
    if sharpe_below:
        reasons.append(
            f"the paper Sharpe ({sr:.3f}/day) is significantly below the backtest's ({sr_bt:.3f}/day): "
            f"PSR {psr:.1%} < {ALPHA:.0%}"
        )
    else:
        reasons.append(f"the paper Sharpe is not significantly below the backtest's (PSR {psr:.1%} ≥ {ALPHA:.0%})")
    dd_beyond = dd_percentile > BAND[1]
    if dd_beyond:
        reasons.append(
            f"the paper maximum drawdown ({mdd:.2%}) is beyond the {BAND[1]:.0f}th percentile of the "
            f"bootstrapped drawdowns (at the {dd_percentile:.1f}th)"
        )
    if final_below:
        reasons.append(f"the paper equity ends below the bootstrap band's {BAND[0]:.0f} % line ({band_floor:,.2f})")
    path_out = dd_beyond or final_below
    if not path_out:
        reasons.append(
            f"the paper path stays within the backtest's range (drawdown at the {dd_percentile:.1f}th percentile, "
            f"final equity above the band's {BAND[0]:.0f} % line)"
        )
    if sharpe_below and path_out:
        return INCONSISTENT, reasons
    if sharpe_below or path_out:
        reasons.append("only one of the two tests (Sharpe, path) fails")
        return INCONCLUSIVE, reasons
    if not n >= min_trl:
        need = "an edge the backtest does not show (its Sharpe is not positive)"
        if math.isfinite(min_trl):
            need = f"{math.ceil(min_trl)} daily returns to tell the backtest's Sharpe from zero"
        reasons.append(f"the paper record ({n} daily returns) is shorter than its minimum track record length: {need}")
        return INCONCLUSIVE, reasons
    reasons.append(f"the record ({n} daily returns) is at least the minimum track record length ({min_trl:.0f})")
    return CONSISTENT, reasons


# -- backtests -----------------------------------------------------------------------------------
def _column(frame: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    for name in names:
        if name in by_lower:
            return str(by_lower[name])
    return None


def load_backtest_csv(path: Path, capital: float, periods_per_year: int, timezone: str = "UTC") -> Backtest:
    """Read a backtest from a CSV file: daily returns (``date``, ``return``) or trades (``exit_time``, ``pnl``).

    Trades become daily returns on an account of ``capital``: each day's P&L (by exit day in ``timezone``)
    over the equity before it, with 0 on days without an exit (business days when ``periods_per_year`` is
    252, every day otherwise). Rows without an exit (open trades) are skipped. Raises ``ConfigError``
    naming the file and the column for anything it cannot use.
    """
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ConfigError(f"--backtest {path}: no such file") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(f"--backtest {path}: not a readable CSV file ({exc})") from None
    returns_col = _column(frame, RETURN_COLUMNS)
    if returns_col is not None:
        returns = _daily_returns_csv(path, frame, returns_col)
        kind = "daily returns"
    else:
        returns = _trades_csv(path, frame, capital, periods_per_year, timezone)
        kind = "trades"
    if len(returns) < MIN_RETURNS:
        raise ConfigError(f"--backtest {path}: needs at least {MIN_RETURNS} daily returns, found {len(returns)}")
    return Backtest(f"{path.name} ({kind}, {len(returns)} days)", returns)


def _daily_returns_csv(path: Path, frame: pd.DataFrame, returns_col: str) -> pd.Series:
    date_col = _column(frame, DATE_COLUMNS)
    if date_col is None:
        raise ConfigError(f"--backtest {path}: a returns file needs a 'date' column next to '{returns_col}'")
    values = pd.to_numeric(frame[returns_col], errors="coerce")
    bad = values.isna() | ~np.isfinite(values) | (values <= -1.0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # 1-based, after the header line
        raise ConfigError(
            f"--backtest {path}: column '{returns_col}' line {row}: expected a daily return as a fraction "
            f"above -1, got {frame[returns_col].iloc[row - 2]!r}"
        )
    try:
        dates = pd.to_datetime(frame[date_col], format="mixed")
    except (ValueError, TypeError):
        raise ConfigError(f"--backtest {path}: column '{date_col}' holds something that is not a date") from None
    series = pd.Series(values.to_numpy(dtype=np.float64), index=pd.DatetimeIndex(dates), name="return")
    return series.sort_index()


def _trades_csv(path: Path, frame: pd.DataFrame, capital: float, periods_per_year: int, timezone: str) -> pd.Series:
    exit_col, pnl_col = _column(frame, EXIT_COLUMNS), _column(frame, PNL_COLUMNS)
    if exit_col is None or pnl_col is None:
        missing = "'exit_time'" if exit_col is None else "'pnl'"
        raise ConfigError(
            f"--backtest {path}: no {missing} column: expected daily returns (columns date, return) "
            "or trades (columns exit_time, pnl)"
        )
    closed = frame[frame[exit_col].notna() & (frame[exit_col].astype(str).str.strip() != "")]
    pnl = pd.to_numeric(closed[pnl_col], errors="coerce")
    if pnl.isna().any() or not np.isfinite(pnl).all():
        raise ConfigError(f"--backtest {path}: column '{pnl_col}' holds a value that is not a number")
    try:
        exits = pd.to_datetime(closed[exit_col], utc=True, format="mixed")
    except (ValueError, TypeError):
        raise ConfigError(f"--backtest {path}: column '{exit_col}' holds something that is not a time") from None
    if closed.empty:
        return pd.Series(dtype=np.float64, name="return")
    days = pd.DatetimeIndex(exits).tz_convert(timezone).tz_localize(None).normalize()
    per_day = pd.Series(pnl.to_numpy(dtype=np.float64), index=days).groupby(level=0).sum()
    calendar = pd.bdate_range if periods_per_year < 365 else pd.date_range
    exit_days = pd.DatetimeIndex(per_day.index)
    every_day = calendar(exit_days[0], exit_days[-1]).union(exit_days)  # keep exits on weekends
    per_day = per_day.reindex(every_day, fill_value=0.0)
    equity_before = capital + per_day.cumsum().shift(1, fill_value=0.0)
    if (equity_before <= 0).any():
        raise ConfigError(f"--backtest {path}: the trades lose more than the account ({capital:,.2f}) holds")
    return (per_day / equity_before).rename("return")


def backtest_from_equity(source: str, equity: pd.Series) -> Backtest:
    """A backtest from a daily equity series (``E0`` first), such as a robohost replay run's."""
    returns = daily_returns(equity)
    if len(returns) < MIN_RETURNS:
        raise ConfigError(f"{source}: needs at least {MIN_RETURNS} daily returns, found {len(returns)}")
    return Backtest(f"{source} ({len(returns)} days)", returns)
