"""Replay throughput: robohost's full engine versus backtrader on the same 1,000,000 bars.

Generates seeded one-minute bars, runs the SMA(10/30) crossover robot (100 units, long/flat)
through robohost's engine with the journal on SQLite, then the same strategy in backtrader, each
in its own process (so peak RSS is its own). Prints one JSON line per engine with the keys
engine, bars, seconds, bars_per_sec, trades, peak_rss_mb, then a line with ratio_vs_backtrader
and same_trades. Run: ``make bench`` (or ``python bench/replay_throughput.py --bars 200000``).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FAST, SLOW, QTY, SEED = 10, 30, 100, 7


def bench_bars(bars: int) -> Any:
    """The seeded bars both engines trade: a liquid market (volumes x100), so 100 units always fill whole."""
    from robohost.adapters.feeds.synthetic import synthetic_bars

    frame = synthetic_bars(bars, seed=SEED)
    frame["volume"] *= 100
    return frame


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_robohost(bars: int) -> dict[str, object]:
    """Run the full engine (validation, broker, portfolio, risk, journal on SQLite)."""
    from robohost.adapters.db.engine import make_engine
    from robohost.adapters.db.journal import SqlJournal
    from robohost.adapters.db.migrate import upgrade
    from robohost.adapters.db.queries import ReadModel
    from robohost.adapters.db.writer import ProcessJournal
    from robohost.adapters.feeds.replay import ReplayFeed
    from robohost.adapters.strategies import load_strategy_class
    from robohost.config.models import RobotConfig
    from robohost.services.paper import PaperTrading

    feed = ReplayFeed.from_frame(bench_bars(bars))
    cfg = RobotConfig.model_validate(
        {
            "strategy": "robohost.examples.sma_cross:SmaCross",
            "params": {"fast": FAST, "slow": SLOW, "qty": QTY},
            "starting_cash": 100_000_000,
            "timezone": "UTC",
            "data": {"path": ["<generated>"]},
            "fills": {"participation": 1.0, "slippage_bps": 0.0, "latency_ms": 0},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        engine = make_engine(url)
        upgrade(engine)
        journal = SqlJournal(engine)
        service = PaperTrading(
            "bench",
            cfg,
            journal,
            ReadModel(engine),
            lambda _cfg: feed,
            lambda ref: load_strategy_class(ref, Path(tmp)),
            logging.getLogger("bench"),
            open_writer=lambda: ProcessJournal(journal, url),
        )
        started = time.perf_counter()
        outcome = service.run("new")
        seconds = time.perf_counter() - started
        counts = ReadModel(engine).counts(outcome.run_id)
        engine.dispose()
    return {
        "engine": "robohost",
        "bars": bars,
        "seconds": round(seconds, 3),
        "bars_per_sec": round(bars / seconds),
        "trades": outcome.summary.round_trips,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "equity_points_stored": counts.get("equity_points"),
        "fills_stored": counts.get("fills"),
    }


def run_backtrader(bars: int) -> dict[str, object]:
    """Run the same strategy in backtrader on the same bars."""
    import backtrader as bt
    import pandas as pd

    frame = bench_bars(bars)
    data_frame = frame.set_index(pd.DatetimeIndex(frame["ts"]).tz_convert(None))[
        ["open", "high", "low", "close", "volume"]
    ]

    class SmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=FAST), bt.ind.SMA(period=SLOW))
            self.round_trips = 0

        def notify_trade(self, trade: bt.Trade) -> None:
            if trade.isclosed:
                self.round_trips += 1

        def next(self) -> None:
            if not self.position:
                if self.cross > 0:
                    self.buy(size=QTY)
            elif self.cross < 0:
                self.close()

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(100_000_000)
    cerebro.adddata(bt.feeds.PandasData(dataname=data_frame))
    cerebro.addstrategy(SmaCross)
    started = time.perf_counter()
    strategy = cerebro.run()[0]
    seconds = time.perf_counter() - started
    return {
        "engine": "backtrader",
        "bars": bars,
        "seconds": round(seconds, 3),
        "bars_per_sec": round(bars / seconds),
        "trades": strategy.round_trips,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=["robohost", "backtrader"], help="run one engine in this process")
    parser.add_argument("--skip-backtrader", action="store_true")
    args = parser.parse_args()
    if args.engine:
        runner = run_robohost if args.engine == "robohost" else run_backtrader
        print(json.dumps(runner(args.bars)), flush=True)
        return
    results = []
    engines = ["robohost"] if args.skip_backtrader else ["robohost", "backtrader"]
    for engine in engines:
        out = subprocess.run(
            [sys.executable, __file__, "--engine", engine, "--bars", str(args.bars)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        line = out.strip().splitlines()[-1]
        print(line, flush=True)
        results.append(json.loads(line))
    if len(results) == 2:
        ours, theirs = results
        print(
            json.dumps(
                {
                    "ratio_vs_backtrader": round(ours["bars_per_sec"] / theirs["bars_per_sec"], 2),
                    "same_trades": ours["trades"] == theirs["trades"],
                }
            )
        )


if __name__ == "__main__":
    main()
