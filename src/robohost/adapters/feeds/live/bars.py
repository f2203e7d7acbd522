"""Closed bars out of a live stream: pure logic, no I/O, no clock of its own (the caller passes the time).

``CandleCloser`` turns streamed candle updates into closed candles. An exchange's candle stream (ccxt's
``watch_ohlcv`` rows ``[ts_ms, o, h, l, c, v]``) sends the candle in progress again and again while it forms
and says nothing about when it is final. The closer holds each symbol's newest candle and emits it once:

- when an update for a later candle of the same symbol arrives (the exchange moved on), or
- when ``poll(now_ns)`` sees ``now_ns >= start + interval + grace`` (nothing came after the candle ended;
  given ``heard``, only if the venue sent something about the symbol at or after the candle's end).

It never emits a candle twice, never one older than the symbol's last, and never changes an emitted one:
an update for a candle not newer than the one held, or already emitted, is dropped and counted in
``late``. Within the candle held, an update with less volume than the values held is older than them
(volume only grows while a candle forms) and is dropped and counted in ``stale``.

``TradeBarBuilder`` aggregates trades into bars on exact interval boundaries: multiples of the interval
since the epoch, in exchange time (the trades' own timestamps), labelled by their start. A bar closes when
``poll(now_ns)`` sees ``now_ns >= end + grace``, or when a trade arrives whose time is at or past that
(a trade of a later interval closes its own symbol's bar at once). Intervals without trades make no bar,
as with Alpaca's minute bars.

**Late-trade rule.** A trade belonging to an interval that is already closed (emitted, or skipped with
``skip_through``) is not added to it: a bar the robot has seen is never changed afterwards, so a replay of
the emitted bars gives the robot exactly what it saw live. The trade is counted in ``late`` (per symbol)
and kept in ``take_late()`` for the feed to report. The exchange's own candles for that interval may
therefore differ slightly from the built bar.

Several bars closing at once are returned in time order (then by symbol, in the order symbols were first
seen). Timestamps are integers, ns since the epoch, UTC; values are floats passed through unchecked (the
engine validates bars). This module imports only the standard library.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, NamedTuple


class ClosedBar(NamedTuple):
    """A bar that will not change any more, labelled by its start ``ts`` (ns since the epoch, UTC)."""

    symbol: Hashable
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class LateTrade(NamedTuple):
    """A trade that arrived after its interval's bar had closed (see the late-trade rule)."""

    symbol: Hashable
    ts: int
    price: float
    size: float
    bar_ts: int


_NONE = -(2**63)
"""'Nothing emitted yet': older than any timestamp."""


def _check_lengths(interval_ns: int, grace_ns: int) -> None:
    if interval_ns <= 0:
        raise ValueError(f"interval_ns must be positive, not {interval_ns}")
    if grace_ns < 0:
        raise ValueError(f"grace_ns must be >= 0, not {grace_ns}")


class _OpenBars:
    """What both builders share: the bar held open per symbol, the last one emitted, and how to emit."""

    def __init__(self, interval_ns: int, grace_ns: int) -> None:
        _check_lengths(interval_ns, grace_ns)
        self.interval_ns = interval_ns
        self.grace_ns = grace_ns
        self._open: dict[Hashable, list[float]] = {}  # symbol -> [o, h, l, c, v]
        self._open_ts: dict[Hashable, int] = {}
        self._last: dict[Hashable, int] = {}
        self._rank: dict[Hashable, int] = {}
        self.late: dict[Hashable, int] = {}

    def last_emitted(self, symbol: Hashable) -> int | None:
        """Start of the symbol's last emitted (or skipped) bar, or None."""
        ts = self._last.get(symbol, _NONE)
        return None if ts == _NONE else ts

    def discard_open(self) -> int:
        """Forget every bar held open (its updates may be incomplete after a disconnect); return how many."""
        n = len(self._open)
        self._open.clear()
        self._open_ts.clear()
        return n

    def _skip_through_start(self, symbol: Hashable, start: int) -> None:
        """Treat the symbol's bars starting at or before ``start`` as emitted; drop one held open there."""
        self._see(symbol)
        if start > self._last.get(symbol, _NONE):
            self._last[symbol] = start
            if self._open_ts.get(symbol, start + 1) <= start:
                del self._open[symbol], self._open_ts[symbol]

    def _is_late(self, symbol: Hashable, start: int) -> bool:
        """A bar already emitted, or older than the one held open: counted as late."""
        held = self._open_ts.get(symbol)
        if start <= self._last.get(symbol, _NONE) or (held is not None and start < held):
            self.late[symbol] = self.late.get(symbol, 0) + 1
            return True
        return False

    def _emit_due(self, now_ns: int, heard: Mapping[Any, int] | None = None) -> list[ClosedBar]:
        """Emit every held bar with ``start + interval + grace <= now_ns`` (and heard of since its end), in order."""
        due = self.interval_ns + self.grace_ns
        ready = [
            s
            for s, ts in self._open_ts.items()
            if ts + due <= now_ns and (heard is None or heard.get(s, _NONE) >= ts + self.interval_ns)
        ]
        ready.sort(key=lambda s: (self._open_ts[s], self._rank[s]))
        return [self._emit(s) for s in ready]

    def _see(self, symbol: Hashable) -> None:
        if symbol not in self._rank:
            self._rank[symbol] = len(self._rank)

    def _emit(self, symbol: Hashable) -> ClosedBar:
        ts = self._open_ts.pop(symbol)
        o, h, lo, c, v = self._open.pop(symbol)
        self._last[symbol] = ts
        return ClosedBar(symbol, ts, o, h, lo, c, v)


class CandleCloser(_OpenBars):
    """Emit each streamed candle once, when it is final (see the module docstring)."""

    def __init__(self, interval_ns: int, grace_ns: int = 0) -> None:
        super().__init__(interval_ns, grace_ns)
        self.stale: dict[Hashable, int] = {}

    def open_ts(self, symbol: Hashable) -> int | None:
        """Start of the candle held open for the symbol, or None."""
        return self._open_ts.get(symbol)

    def skip_through(self, symbol: Hashable, ts_ns: int) -> None:
        """Treat the symbol's candles starting at or before ``ts_ns`` as emitted (a resume point); not counted."""
        self._skip_through_start(symbol, ts_ns)

    def update(
        self, symbol: Hashable, ts_ns: int, open: float, high: float, low: float, close: float, volume: float
    ) -> list[ClosedBar]:
        """Take one update of the candle starting at ``ts_ns``; return the candle it closed, if any."""
        self._see(symbol)
        if self._is_late(symbol, ts_ns):
            return []
        held = self._open_ts.get(symbol)
        if held == ts_ns:
            values = self._open[symbol]
            if volume < values[4]:
                self.stale[symbol] = self.stale.get(symbol, 0) + 1
            else:
                values[:] = (open, high, low, close, volume)
            return []
        closed = [] if held is None else [self._emit(symbol)]
        self._open[symbol] = [open, high, low, close, volume]
        self._open_ts[symbol] = ts_ns
        return closed

    def close(self, symbol: Hashable) -> list[ClosedBar]:
        """Emit the symbol's held candle now (the caller knows it is final: the venue shows a later one)."""
        return [self._emit(symbol)] if symbol in self._open_ts else []

    def poll(self, now_ns: int, heard: Mapping[Any, int] | None = None) -> list[ClosedBar]:
        """Emit every held candle with ``start + interval + grace <= now_ns``, in time order.

        With ``heard`` (symbol -> when the venue last sent anything about it), a candle also needs
        ``heard[symbol] >= start + interval``: it is never closed by the clock across a silence that may
        hide its final update.
        """
        return self._emit_due(now_ns, heard)


class TradeBarBuilder(_OpenBars):
    """Aggregate trades into bars on exact interval boundaries (see the module docstring)."""

    def __init__(self, interval_ns: int, grace_ns: int = 0) -> None:
        super().__init__(interval_ns, grace_ns)
        self._late: list[LateTrade] = []

    def bar_start(self, ts_ns: int) -> int:
        """Start of the interval holding ``ts_ns`` (a multiple of the interval since the epoch)."""
        return ts_ns - ts_ns % self.interval_ns

    def skip_through(self, symbol: Hashable, ts_ns: int) -> None:
        """Treat the symbol's intervals starting at or before ``ts_ns`` as closed; a bar open in one is dropped."""
        self._skip_through_start(symbol, self.bar_start(ts_ns))

    def add(self, symbol: Hashable, ts_ns: int, price: float, size: float) -> list[ClosedBar]:
        """Add one trade; return the bars it closed (any symbol's, by its time), in time order."""
        self._see(symbol)
        start = self.bar_start(ts_ns)
        if self._is_late(symbol, start):
            self._late.append(LateTrade(symbol, ts_ns, price, size, start))
            return []
        held = self._open_ts.get(symbol)
        closed = self.poll(ts_ns)
        if held is not None and start > held and symbol in self._open_ts:
            closed.append(self._emit(symbol))
            closed.sort(key=lambda bar: (bar.ts, self._rank[bar.symbol]))
        values = self._open.get(symbol)
        if values is None:
            self._open[symbol] = [price, price, price, price, size]
            self._open_ts[symbol] = start
        else:
            if price > values[1]:
                values[1] = price
            if price < values[2]:
                values[2] = price
            values[3] = price
            values[4] += size
        return closed

    def poll(self, now_ns: int) -> list[ClosedBar]:
        """Close every bar with ``end + grace <= now_ns``; return them in time order."""
        return self._emit_due(now_ns)

    def take_late(self) -> list[LateTrade]:
        """Return the late trades seen since the last call, and forget them."""
        late, self._late = self._late, []
        return late
