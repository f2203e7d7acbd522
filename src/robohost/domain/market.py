"""Market data as the robot sees it (bars, trades, quotes) and the data-quality rules.

A bad row is never traded on: ``bar_problem`` / ``trade_problem`` / ``quote_problem`` name the
rule it breaks, and the engine rejects, counts and records it. Imports only the standard library.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from robohost.domain.values import NS_PER_SECOND

BAR, TRADE, QUOTE = 0, 1, 2
"""Event kinds as small integers: the hot path compares ints, not strings."""
KIND_NAMES = ("bar", "trade", "quote")


def ns_to_datetime(ts: int) -> datetime:
    """Convert integer nanoseconds since the epoch (UTC) to an aware datetime."""
    return datetime.fromtimestamp(ts / NS_PER_SECOND, tz=UTC)


class Bar:
    """One OHLCV bar, labelled by its start time ``ts`` (ns since the epoch, UTC).

    The engine hands the strategy a bar it reuses for the next event, so that the hot path
    allocates nothing: read it during the call, and use ``copy()`` to keep one.
    """

    __slots__ = ("close", "high", "low", "open", "symbol", "ts", "volume")

    def __init__(self, symbol: str, ts: int, open: float, high: float, low: float, close: float, volume: float) -> None:
        self.symbol = symbol
        self.ts = ts
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume

    @property
    def time(self) -> datetime:
        """The bar's start as an aware UTC datetime."""
        return ns_to_datetime(self.ts)

    def copy(self) -> Bar:
        """Return an independent copy that the engine will not overwrite."""
        return Bar(self.symbol, self.ts, self.open, self.high, self.low, self.close, self.volume)

    def __repr__(self) -> str:
        return (
            f"Bar({self.symbol} {self.time.isoformat()} o={self.open} h={self.high} "
            f"l={self.low} c={self.close} v={self.volume})"
        )


class Trade:
    """One printed trade (a reused view, like ``Bar``)."""

    __slots__ = ("price", "size", "symbol", "ts")

    def __init__(self, symbol: str, ts: int, price: float, size: float) -> None:
        self.symbol = symbol
        self.ts = ts
        self.price = price
        self.size = size

    @property
    def time(self) -> datetime:
        """The trade's time as an aware UTC datetime."""
        return ns_to_datetime(self.ts)

    def copy(self) -> Trade:
        """Return an independent copy."""
        return Trade(self.symbol, self.ts, self.price, self.size)


class Quote:
    """Top of book: best bid and ask with their sizes (a reused view, like ``Bar``)."""

    __slots__ = ("ask", "ask_size", "bid", "bid_size", "symbol", "ts")

    def __init__(self, symbol: str, ts: int, bid: float, ask: float, bid_size: float, ask_size: float) -> None:
        self.symbol = symbol
        self.ts = ts
        self.bid = bid
        self.ask = ask
        self.bid_size = bid_size
        self.ask_size = ask_size

    def copy(self) -> Quote:
        """Return an independent copy."""
        return Quote(self.symbol, self.ts, self.bid, self.ask, self.bid_size, self.ask_size)


def _order_problem(ts: int, prev_ts: int) -> str | None:
    if ts == prev_ts:
        return "duplicate timestamp"
    if ts < prev_ts:
        return "out-of-order timestamp"
    return None


def bar_problem(ts: int, prev_ts: int, open: float, high: float, low: float, close: float, volume: float) -> str | None:
    """Return why a bar must be rejected, or None when it is sound.

    ``prev_ts`` is the last accepted timestamp of the same symbol and kind (-1 for none).
    """
    if not math.isfinite(open + high + low + close + volume):
        for name, value in (("open", open), ("high", high), ("low", low), ("close", close)):
            if not math.isfinite(value):
                return f"non-finite {name} price"
        if not math.isfinite(volume):
            return "non-finite volume"
    if high < low:
        return "high below low"
    if not low <= open <= high:
        return "open outside [low, high]"
    if not low <= close <= high:
        return "close outside [low, high]"
    if low <= 0.0:
        return "zero or negative price"
    if volume < 0.0:
        return "negative volume"
    if ts <= prev_ts:
        return _order_problem(ts, prev_ts)
    return None


def trade_problem(ts: int, prev_ts: int, price: float, size: float) -> str | None:
    """Return why a trade must be rejected, or None when it is sound.

    Trades may share a timestamp; only a timestamp going back is out of order.
    """
    if not math.isfinite(price):
        return "non-finite price"
    if not math.isfinite(size):
        return "non-finite size"
    if price <= 0.0:
        return "zero or negative price"
    if size < 0.0:
        return "negative size"
    if ts < prev_ts:
        return "out-of-order timestamp"
    return None


def quote_problem(ts: int, prev_ts: int, bid: float, ask: float, bid_size: float, ask_size: float) -> str | None:
    """Return why a quote must be rejected, or None when it is sound."""
    for name, value in (("bid", bid), ("ask", ask), ("bid size", bid_size), ("ask size", ask_size)):
        if not math.isfinite(value):
            return f"non-finite {name}"
    if bid <= 0.0 or ask <= 0.0:
        return "zero or negative price"
    if bid > ask:
        return "crossed quote (bid above ask)"
    if bid_size < 0.0 or ask_size < 0.0:
        return "negative size"
    if ts < prev_ts:
        return "out-of-order timestamp"
    return None
