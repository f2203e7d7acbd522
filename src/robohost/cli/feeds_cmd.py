"""``robohost feeds check``: connect to a robot's data source, show what arrives for a few seconds, exit."""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from typing import Annotated

import typer
from rich.table import Table

from robohost.bootstrap import ReplayOverrides, robot_feed
from robohost.cli.common import HomeOption, JsonOption, RobotOption, console, iso, opened, print_json
from robohost.domain.market import BAR, KIND_NAMES
from robohost.engine.ports import LiveMarketFeed
from robohost.errors import DataError

feeds_app = typer.Typer(help="Check the robots' market data sources.", no_args_is_help=True)


@feeds_app.command("check")
def check(
    home: HomeOption = None,
    robot: RobotOption = None,
    seconds: Annotated[float, typer.Option("--seconds", help="How long to listen to a live source.", min=0.1)] = 10.0,
    bars: Annotated[int, typer.Option("--bars", help="Stop after this many bars.", min=1)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Connect to the robot's data source, print the bars it receives (symbol, time, close, latency), exit.

    Exits non-zero when nothing arrived: the first thing to run on a new server.
    """
    with opened(home) as app:
        name, cfg = app.home.robot(robot)
        feed = robot_feed(app.home, cfg, ReplayOverrides())
    statuses: list[tuple[str, dict[str, object]]] = []
    timer: threading.Timer | None = None
    live = isinstance(feed, LiveMarketFeed)
    if isinstance(feed, LiveMarketFeed):
        feed.on_status = lambda kind, details: statuses.append((kind, details))
        timer = threading.Timer(seconds, feed.close)
        timer.daemon = True
        timer.start()
    counts: dict[str, int] = defaultdict(int)
    last: dict[str, int] = {}
    latency: dict[str, list[float]] = defaultdict(list)
    symbols = feed.symbols
    intervals = feed.intervals_ns
    seen = 0
    try:
        for _, kind, si, ts, _f1, _f2, _f3, close, _f5 in feed.events(0):
            symbol = symbols[si]
            counts[symbol] += 1
            last[symbol] = ts
            shown = f"{symbol:>10} {KIND_NAMES[kind]} {iso(ts)} close {close:g}"
            if live and kind == BAR:  # a live bar's latency: from its close to its arrival here
                delay_ms = (time.time_ns() - ts - intervals.get(symbol, 0)) / 1e6
                latency[symbol].append(delay_ms)
                shown += f"  latency {delay_ms:,.0f} ms"
            if not as_json:
                console.print(shown)
            seen += 1
            if seen >= bars:
                break
    finally:
        if timer is not None:
            timer.cancel()
        if isinstance(feed, LiveMarketFeed):
            feed.close()
    report = {
        "robot": name,
        "source": cfg.data.source,
        "symbols": {
            s: {
                "bars": counts[s],
                "last_bar": iso(last.get(s)),
                "median_latency_ms": statistics.median(latency[s]) if latency[s] else None,
            }
            for s in symbols
        },
        "statuses": [{"kind": k, **d} for k, d in statuses],
    }
    if as_json:
        print_json(report)
    else:
        table = Table("symbol", "bars", "last bar", "median latency (ms)", title=f"{name}: {cfg.data.source}")
        for s, row in report["symbols"].items():  # type: ignore[union-attr]
            median = row["median_latency_ms"]
            table.add_row(s, str(row["bars"]), row["last_bar"], "" if median is None else f"{median:,.0f}")
        console.print(table)
        for kind, details in statuses:
            console.print(f"feed status: {kind} {details}")
    if not seen:
        raise DataError(f"no market data arrived from the {cfg.data.source} source of robot {name!r} in {seconds:g} s")
