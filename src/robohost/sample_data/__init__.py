"""Bundled sample market data: daily OHLCV of AAPL, GOOG, IBM and MSFT, 2000-2013 (see README.md).

Imports nothing from robohost.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

STOCKS_DAILY = "stocks_daily.csv.gz"
"""File name of the daily stocks sample (columns symbol, date, open, high, low, close, volume)."""


def sample_data_path(name: str = STOCKS_DAILY) -> Path:
    """Return the filesystem path of a bundled sample data file."""
    return Path(str(files(__name__).joinpath(name)))
