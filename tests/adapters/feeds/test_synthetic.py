"""Tests of the synthetic bar generator: determinism, OHLC consistency, files that replay identically."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robohost.adapters.feeds.replay import ReplayFeed, load_replay
from robohost.adapters.feeds.synthetic import synthetic_bars, write_synthetic
from robohost.domain.market import BAR, bar_problem
from robohost.domain.values import NS_PER_MINUTE, NS_PER_SECOND


def test_same_seed_same_bars_other_seed_other_bars() -> None:
    pd.testing.assert_frame_equal(synthetic_bars(1000, seed=3), synthetic_bars(1000, seed=3))
    assert not synthetic_bars(1000, seed=3)["close"].equals(synthetic_bars(1000, seed=4)["close"])


def test_bars_are_ohlc_consistent() -> None:
    bars = synthetic_bars(100_000, price=50.0, volatility=0.01)
    assert list(bars.columns) == ["symbol", "ts", "open", "high", "low", "close", "volume"]
    o, h, lo, c = (bars[name].to_numpy() for name in ("open", "high", "low", "close"))
    assert o[0] == 50.0
    assert (o[1:] == c[:-1]).all()
    assert (h >= np.maximum(o, c)).all()
    assert (lo <= np.minimum(o, c)).all()
    assert (lo > 0).all()
    assert bars["volume"].dtype == np.int64
    assert (bars["volume"] > 0).all()
    assert (bars["ts"].diff().dropna() == pd.Timedelta("1min")).all()


def test_start_symbol_and_interval() -> None:
    bars = synthetic_bars(3, symbol="ABC", start=datetime(2020, 5, 1, tzinfo=UTC), interval="1D")
    assert bars["symbol"].tolist() == ["ABC"] * 3
    assert bars["ts"].iloc[2] == pd.Timestamp("2020-05-03", tz="UTC")
    assert synthetic_bars(0).empty


def test_every_bar_passes_the_engine_rules() -> None:
    feed = ReplayFeed.from_frame(synthetic_bars(5000))
    previous = -1
    for _, kind, _, ts, *fields in feed.events(0):
        assert kind == BAR
        assert bar_problem(ts, previous, *fields) is None
        previous = ts
    assert dict(feed.intervals_ns) == {"SYN": NS_PER_MINUTE}


@pytest.mark.parametrize("name", ["syn.csv", "syn.csv.gz", "syn.parquet"])
def test_written_files_replay_like_the_frame(tmp_path: Path, name: str) -> None:
    path = write_synthetic(tmp_path / name, 500, seed=11, interval="1s")
    from_file = list(load_replay([path]).events(0))
    from_frame = list(ReplayFeed.from_frame(synthetic_bars(500, seed=11, interval="1s")).events(0))
    assert from_file == from_frame
    assert from_file[1][3] - from_file[0][3] == NS_PER_SECOND


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"syn\.txt"):
        write_synthetic(tmp_path / "syn.txt", 10)
