"""Seeded synthetic OHLCV bars for tests, demos and benchmarks (no files, no network).

A geometric random walk, vectorised with numpy: each bar opens at the previous close, its
high is at or above both open and close and its low at or below both, volumes are positive
integers. The same arguments always give the same frame. Turn a frame into a feed with
``ReplayFeed.from_frame`` or write it with ``write_synthetic``.
This module must not import robohost.config, robohost.cli, robohost.services or robohost.adapters.db.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
"""Default time of the first bar (a US market open, in UTC)."""


def synthetic_bars(
    n: int,
    *,
    symbol: str = "SYN",
    seed: int = 7,
    start: datetime | str = DEFAULT_START,
    interval: str = "1min",
    price: float = 100.0,
    volatility: float = 0.001,
) -> pd.DataFrame:
    """Return ``n`` bars (columns symbol, ts, open, high, low, close, volume) of a seeded random walk.

    ``interval`` is a pandas timedelta string ("1min", "1s", "1D"); ``volatility`` is the standard
    deviation of the log return per bar. Prices are rounded to 4 decimals, which keeps
    low <= open, close <= high. A naive ``start`` is taken as UTC.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    rng = np.random.default_rng(seed)
    log_returns = rng.normal(0.0, volatility, n)
    closes = np.round(price * np.exp(np.cumsum(log_returns)), 4)
    opens = np.empty(n)
    opens[:1] = round(price, 4)
    opens[1:] = closes[:-1]
    wicks = np.abs(rng.normal(0.0, volatility / 2.0, (2, n)))
    highs = np.round(np.maximum(opens, closes) * np.exp(wicks[0]), 4)
    lows = np.round(np.minimum(opens, closes) * np.exp(-wicks[1]), 4)
    volumes = np.maximum(1, rng.lognormal(7.0, 1.0, n)).astype(np.int64)
    first = pd.Timestamp(start)
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    times = pd.date_range(first, periods=n, freq=pd.Timedelta(interval), unit="ns")
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": times,
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "volume": volumes,
        }
    )


def write_synthetic(path: Path | str, n: int, **options: Any) -> Path:
    """Write ``synthetic_bars(n, **options)`` to ``path``: Parquet for .parquet/.pq, else CSV (.gz compressed)."""
    path = Path(path)
    frame = synthetic_bars(n, **options)
    if path.suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    elif path.name.endswith((".csv", ".csv.gz")):
        frame.to_csv(path, index=False)
    else:
        raise ValueError(f"{path}: write .csv, .csv.gz, .parquet or .pq")
    return path
