"""The ccxt source through the command line: ``robohost feeds check`` reaches a local Binance server over
ccxt, redirected only by the robot's configuration (its ``urls`` table)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from fakes.binance import FakeBinance
from robohost.adapters.feeds.synthetic import synthetic_bars

ROBOHOST = str(Path(sys.executable).with_name("robohost"))


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    return json.dumps(value)


def test_feeds_check_streams_closed_candles_from_a_ccxt_exchange(tmp_path: Path) -> None:
    now_minute = time.time_ns() // 60_000_000_000 * 60_000_000_000
    start = pd.Timestamp(now_minute, unit="ns", tz="UTC").to_pydatetime()
    bars = synthetic_bars(40, symbol="BTC/USDT", seed=3, price=30_000.0, start=start)
    # the exchange clock runs ahead of the wall clock, so a candle closes when the next one starts
    with FakeBinance(bars, speed=600.0) as server:
        home = tmp_path / "crypto"
        home.mkdir()
        (home / "robohost.toml").write_text(
            "[robots.crypto]\n"
            'strategy = "robohost.examples.sma_cross:SmaCross"\n'
            'timezone = "UTC"\n'
            "[robots.crypto.data]\n"
            'source = "ccxt"\nexchange = "binance"\nsymbols = ["BTC/USDT"]\n'
            f"urls = {_toml(server.ccxt_urls())}\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOHOST_")}
        done = subprocess.run(
            [ROBOHOST, "--home", str(home), "feeds", "check", "--seconds", "30", "--bars", "5", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["source"] == "ccxt"
    assert report["symbols"]["BTC/USDT"]["bars"] == 5
