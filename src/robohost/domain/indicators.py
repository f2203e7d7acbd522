"""Incremental indicators (SMA, EMA, RSI): O(1) per update, no arrays, no allocation.

A robot creates them through ``ctx.sma/ema/rsi`` in ``on_start``; the engine updates them with each
closing price before ``on_bar``. ``value`` is NaN until ``ready``. Imports only the standard library.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod


class Indicator(ABC):
    """Base of the incremental indicators."""

    __slots__ = ("period", "value")

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError(f"an indicator period must be at least 1, got {period}")
        self.period = period
        self.value = math.nan

    @property
    def ready(self) -> bool:
        """True once enough prices have been seen for ``value`` to be defined."""
        return not math.isnan(self.value)

    @abstractmethod
    def update(self, price: float) -> None:
        """Take the next price."""


class SMA(Indicator):
    """Simple moving average over ``period`` prices (a ring buffer and a running sum)."""

    __slots__ = ("_buf", "_i", "_n", "_sum")

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self._buf = [0.0] * period
        self._i = 0
        self._n = 0
        self._sum = 0.0

    def update(self, price: float) -> None:
        """Take the next price."""
        i = self._i
        self._sum += price - self._buf[i]
        self._buf[i] = price
        self._i = i + 1 if i + 1 < self.period else 0
        if self._n < self.period:
            self._n += 1
            if self._n < self.period:
                return
            self._sum = math.fsum(self._buf)
        self.value = self._sum / self.period
        if self._i == 0:  # once per cycle, drop the running sum's rounding drift
            self._sum = math.fsum(self._buf)


class EMA(Indicator):
    """Exponential moving average, seeded with the SMA of the first ``period`` prices."""

    __slots__ = ("_alpha", "_n", "_seed")

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self._alpha = 2.0 / (period + 1)
        self._n = 0
        self._seed = 0.0

    def update(self, price: float) -> None:
        """Take the next price."""
        if self._n < self.period:
            self._n += 1
            self._seed += price
            if self._n == self.period:
                self.value = self._seed / self.period
            return
        self.value += self._alpha * (price - self.value)


class RSI(Indicator):
    """Wilder's relative strength index (0-100)."""

    __slots__ = ("_avg_gain", "_avg_loss", "_n", "_prev")

    def __init__(self, period: int = 14) -> None:
        super().__init__(period)
        self._prev = math.nan
        self._n = 0
        self._avg_gain = 0.0
        self._avg_loss = 0.0

    def update(self, price: float) -> None:
        """Take the next price."""
        prev = self._prev
        self._prev = price
        if math.isnan(prev):
            return
        change = price - prev
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        p = self.period
        if self._n < p:
            self._n += 1
            self._avg_gain += gain / p
            self._avg_loss += loss / p
            if self._n < p:
                return
        else:
            self._avg_gain = (self._avg_gain * (p - 1) + gain) / p
            self._avg_loss = (self._avg_loss * (p - 1) + loss) / p
        if self._avg_loss == 0.0:
            self.value = 100.0
        else:
            self.value = 100.0 - 100.0 / (1.0 + self._avg_gain / self._avg_loss)
