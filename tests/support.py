"""Test harness for the core: run a robot through ``PaperTrading`` on a real database, build frames, script robots.

``run_robot`` wires the real parts (replay feed from a DataFrame, SQL journal and read model on a migrated
database) the way ``robohost.bootstrap`` does, with test defaults that keep prices easy to check: time zone
UTC and no slippage (every other setting is the documented default unless overridden). ``Scripted`` is a
robot driven by a plan (``params={"plan": [...]}``, built with ``plan``/``buy``/``sell``/``cancel``/``fail``)
that records every bar, trade and fill it saw.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pytest
import sqlalchemy as sa

from robohost import Bar, Context, Fill, Strategy, Trade
from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.journal import SqlJournal
from robohost.adapters.db.migrate import upgrade
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.feeds.replay import ReplayFeed, load_replay
from robohost.config.models import RobotConfig
from robohost.engine.history import History
from robohost.engine.ports import MarketEvent, MarketFeed
from robohost.services.paper import PaperTrading, ResumeMode, RunOutcome

ROBOT = "bot"
SYMBOL = "AAPL"
BASE_CONFIG: dict[str, Any] = {
    "strategy": "support:Scripted",
    "timezone": "UTC",
    "data": {"path": ["<frame>"]},
    "fills": {"slippage_bps": 0.0},
}
"""The robot configuration every test starts from; ``run_robot``'s keyword arguments are merged into it."""

Bars = Sequence[tuple[float, float, float, float, float]]
Step = dict[str, Any]

_ENGINES: dict[str, sa.Engine] = {}


# -- databases and runs --------------------------------------------------------------------------
def database(db_url: str) -> sa.Engine:
    """Return the migrated engine of ``db_url``, created once per URL until ``dispose_engines``."""
    engine = _ENGINES.get(db_url)
    if engine is None:
        engine = make_engine(db_url)
        upgrade(engine)
        _ENGINES[db_url] = engine
    return engine


def dispose_engines() -> None:
    """Close every engine ``database`` opened (call after each test)."""
    while _ENGINES:
        _, engine = _ENGINES.popitem()
        engine.dispose()


@pytest.fixture(autouse=True)
def close_databases() -> Iterator[None]:
    """Dispose of the engines a test opened through ``database`` (import it into a conftest.py)."""
    yield
    dispose_engines()


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overrides`` merged in, tables (dicts) merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge(current, value)
        else:
            merged[key] = value
    return merged


def robot_config(**overrides: Any) -> RobotConfig:
    """Return the validated test robot configuration with ``overrides`` merged into ``BASE_CONFIG``."""
    return RobotConfig.model_validate(merge(BASE_CONFIG, overrides))


def paper_trading(
    db_url: str,
    strategy_cls: type[Strategy],
    data: pd.DataFrame | MarketFeed,
    robot: str = ROBOT,
    **overrides: Any,
) -> PaperTrading:
    """Build the run service of ``robot`` on the migrated database at ``db_url``.

    ``data`` is a frame (replayed through ``ReplayFeed.from_frame``) or a ready feed.
    """
    engine = database(db_url)
    feed = ReplayFeed.from_frame(data) if isinstance(data, pd.DataFrame) else data
    return PaperTrading(
        robot,
        robot_config(**overrides),
        SqlJournal(engine),
        ReadModel(engine),
        lambda cfg: feed,
        lambda ref: strategy_cls,
        logging.getLogger("test"),
    )


class RobotRun(NamedTuple):
    """What ``run_robot`` returns: how the run ended, the read model, and the strategy object that ran."""

    outcome: RunOutcome
    read: ReadModel
    strategy: Any

    @property
    def run_id(self) -> str:
        """The id of the run."""
        return self.outcome.run_id


def run_robot(
    db_url: str,
    strategy_cls: type[Strategy],
    data: pd.DataFrame | MarketFeed,
    *,
    robot: str = ROBOT,
    mode: ResumeMode = "auto",
    **overrides: Any,
) -> RobotRun:
    """Run ``strategy_cls`` over ``data`` to the end (or a halt); return the outcome, read model and strategy.

    Keyword arguments other than ``robot`` and ``mode`` are merged into ``BASE_CONFIG``, tables key by key
    (``fills={"latency_ms": 0}`` keeps the other fill settings).
    """
    service = paper_trading(db_url, strategy_cls, data, robot, **overrides)
    outcome = service.run(mode)
    assert service.session is not None
    return RobotRun(outcome, service.read, service.session.state.strategy)


# -- frames --------------------------------------------------------------------------------------
def _times(n: int, start: str, freq: str, times: Sequence[str | int] | None) -> pd.DatetimeIndex:
    if times is not None:
        assert len(times) == n, "one time per row"
        return pd.DatetimeIndex(pd.to_datetime(list(times), utc=True))
    return pd.date_range(start, periods=n, freq=freq, tz="UTC")


def bars(
    symbol: str,
    rows: Bars,
    start: str = "2024-01-02",
    freq: str = "1D",
    times: Sequence[str | int] | None = None,
) -> pd.DataFrame:
    """A bar frame from ``(open, high, low, close, volume)`` rows, one every ``freq`` from ``start`` (UTC).

    ``times`` gives each row's start instead (UTC text or ns since the epoch), in any order.
    """
    frame = pd.DataFrame(list(rows), columns=["open", "high", "low", "close", "volume"], dtype="float64")
    frame.insert(0, "ts", _times(len(frame), start, freq, times))
    frame.insert(0, "symbol", symbol)
    return frame


def trades(
    symbol: str, rows: Sequence[tuple[float, float]], start: str = "2024-01-02 14:30", freq: str = "1s"
) -> pd.DataFrame:
    """A trade frame from ``(price, size)`` rows."""
    frame = pd.DataFrame(list(rows), columns=["price", "size"], dtype="float64")
    frame.insert(0, "ts", _times(len(frame), start, freq, None))
    frame.insert(0, "symbol", symbol)
    return frame


def quotes(
    symbol: str,
    rows: Sequence[tuple[float, float, float, float]],
    start: str = "2024-01-02 14:30",
    freq: str = "1s",
) -> pd.DataFrame:
    """A quote frame from ``(bid, ask, bid_size, ask_size)`` rows."""
    frame = pd.DataFrame(list(rows), columns=["bid", "ask", "bid_size", "ask_size"], dtype="float64")
    frame.insert(0, "ts", _times(len(frame), start, freq, None))
    frame.insert(0, "symbol", symbol)
    return frame


def flat_bars(n: int, price: float = 100.0, volume: float = 1_000_000.0, **kwargs: Any) -> pd.DataFrame:
    """``n`` identical bars of ``SYMBOL`` (open = high = low = close = ``price``)."""
    return bars(SYMBOL, [(price, price, price, price, volume)] * n, **kwargs)


class WrappedFeed:
    """A feed that passes everything through to a replay; subclasses change one thing (say, crash)."""

    def __init__(self, feed: ReplayFeed) -> None:
        self.feed = feed

    @property
    def symbols(self) -> Sequence[str]:
        return self.feed.symbols

    @property
    def kinds(self) -> Mapping[str, frozenset[int]]:
        return self.feed.kinds

    @property
    def intervals_ns(self) -> Mapping[str, int]:
        return self.feed.intervals_ns

    @property
    def signature(self) -> str:
        return self.feed.signature

    def event_columns(self) -> History | None:
        return self.feed.event_columns()

    def events(self, start_seq: int) -> Iterator[MarketEvent]:
        return self.feed.events(start_seq)


def replay(folder: Path, *frames: pd.DataFrame) -> ReplayFeed:
    """One feed over several frames (say bars and quotes of one symbol), merged in time as files are.

    Each frame is written to a Parquet file in ``folder`` and read back with ``load_replay``.
    """
    paths = []
    for i, frame in enumerate(frames):
        path = folder / f"part{i}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    return load_replay(paths)


def ns(text: str) -> int:
    """A UTC time as ns since the epoch (what the engine and the database store)."""
    return int(pd.Timestamp(text, tz="UTC").value)


# -- scripted robots -----------------------------------------------------------------------------
def plan(*steps: Step) -> dict[str, Any]:
    """The ``params`` table of a ``Scripted`` robot that performs ``steps``."""
    return {"plan": list(steps)}


def buy(at: int | str, qty: float, on: str = "bar", **order: Any) -> Step:
    """Buy ``qty`` on the ``at``-th call of hook ``on`` ("bar" or "trade"; ``at`` may be "start"/"stop").

    ``order`` takes ``ctx.buy``'s keywords (symbol, limit, stop, tif, stop_loss, take_profit).
    """
    return {"at": at, "on": on, "do": "buy", "qty": qty, **order}


def sell(at: int | str, qty: float, on: str = "bar", **order: Any) -> Step:
    """Sell ``qty`` on the ``at``-th call of hook ``on``."""
    return {"at": at, "on": on, "do": "sell", "qty": qty, **order}


def cancel(at: int | str, order: int, on: str = "bar") -> Step:
    """Cancel the ``order``-th order the robot placed (0 = its first)."""
    return {"at": at, "on": on, "do": "cancel", "order": order}


def close(at: int | str, symbol: str = SYMBOL, on: str = "bar") -> Step:
    """Flatten ``symbol`` with ``ctx.close``."""
    return {"at": at, "on": on, "do": "close", "symbol": symbol}


def fail(at: int | str, message: str = "boom", on: str = "bar") -> Step:
    """Raise ``RuntimeError(message)``."""
    return {"at": at, "on": on, "do": "raise", "message": message}


class Scripted(Strategy):
    """A robot that follows ``params.plan`` and records what it saw (bars, trades and fills, copied)."""

    params = {"plan": None}

    def on_start(self, ctx: Context) -> None:
        """Start recording, then perform the steps planned at "start"."""
        self.bars: list[Bar] = []
        self.trades: list[Trade] = []
        self.fills: list[Fill] = []
        self.order_ids: list[str] = []
        self.stopped = False
        self._perform("start", "start", ctx)

    def on_bar(self, bar: Bar, ctx: Context) -> None:
        """Record the bar, then perform the steps planned at this bar."""
        self.bars.append(bar.copy())
        self._perform("bar", len(self.bars) - 1, ctx)

    def on_trade(self, trade: Trade, ctx: Context) -> None:
        """Record the trade, then perform the steps planned at this trade."""
        self.trades.append(trade.copy())
        self._perform("trade", len(self.trades) - 1, ctx)

    def on_fill(self, fill: Fill, ctx: Context) -> None:
        """Record the fill."""
        self.fills.append(fill)

    def on_stop(self, ctx: Context) -> None:
        """Note that the run ended normally."""
        self.stopped = True
        self._perform("stop", "stop", ctx)

    @property
    def bar_times(self) -> list[int]:
        """Start times of the bars seen, ns."""
        return [b.ts for b in self.bars]

    def _perform(self, hook: str, at: int | str, ctx: Context) -> None:
        for step in self.params.plan or ():
            wanted = step.get("on", "bar") if isinstance(step["at"], int) else step["at"]
            if step["at"] != at or wanted != hook:
                continue
            action = step["do"]
            symbol = step.get("symbol", ctx.symbols[0])
            if action in ("buy", "sell"):
                keywords = {k: step[k] for k in ("limit", "stop", "tif", "stop_loss", "take_profit") if k in step}
                place = ctx.buy if action == "buy" else ctx.sell
                self.order_ids.append(place(symbol, step["qty"], **keywords))
            elif action == "cancel":
                ctx.cancel(self.order_ids[step["order"]])
            elif action == "close":
                order_id = ctx.close(symbol)
                if order_id is not None:
                    self.order_ids.append(order_id)
            elif action == "raise":
                raise RuntimeError(step["message"])
            else:
                raise AssertionError(f"unknown step {step!r}")
