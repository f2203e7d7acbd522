"""Bounded per-symbol bar history behind ``ctx.history``: cheap appends, numpy arrays on request.

Two kinds: ``BarHistory`` keeps the bars' values (for live feeds); ``SeqHistory`` keeps only the event
numbers of the accepted bars and reads their values from the feed's columns when asked (for replays,
which hold every event anyway): one integer appended per bar.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class History(NamedTuple):
    """The last bars of a symbol as numpy arrays, oldest first (``ts`` in ns since the epoch, UTC)."""

    ts: npt.NDArray[np.int64]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray


class BarHistory:
    """Keeps at least the last ``size`` bars of one symbol; trims in amortised O(1)."""

    __slots__ = ("_close", "_high", "_low", "_open", "_ts", "_volume", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._ts = array("q")
        self._open = array("d")
        self._high = array("d")
        self._low = array("d")
        self._close = array("d")
        self._volume = array("d")

    def append(self, ts: int, o: float, h: float, lo: float, c: float, v: float) -> None:
        """Add one bar."""
        self._ts.append(ts)
        self._open.append(o)
        self._high.append(h)
        self._low.append(lo)
        self._close.append(c)
        self._volume.append(v)
        if len(self._ts) >= 2 * self.size:
            cut = len(self._ts) - self.size
            for column in (self._ts, self._open, self._high, self._low, self._close, self._volume):
                del column[:cut]

    def __len__(self) -> int:
        return min(len(self._ts), self.size)

    def last(self, n: int) -> History:
        """Return copies of the last ``n`` bars (fewer if fewer were seen)."""
        n = max(0, min(n, self.size, len(self._ts)))
        start = len(self._ts) - n
        return History(
            np.array(self._ts[start:], dtype=np.int64),
            np.array(self._open[start:], dtype=np.float64),
            np.array(self._high[start:], dtype=np.float64),
            np.array(self._low[start:], dtype=np.float64),
            np.array(self._close[start:], dtype=np.float64),
            np.array(self._volume[start:], dtype=np.float64),
        )


class SeqHistory:
    """Keeps the event numbers of at least the last ``size`` accepted bars of one symbol."""

    __slots__ = ("seqs", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.seqs = array("q")  # the engine appends to it directly

    def trim(self) -> None:
        """Drop all but the last ``size`` numbers (the engine calls this at each commit)."""
        if len(self.seqs) > self.size:
            del self.seqs[: len(self.seqs) - self.size]

    def __len__(self) -> int:
        return min(len(self.seqs), self.size)

    def last(self, n: int, columns: History) -> History:
        """Copies of the last ``n`` bars, gathered from the feed's ``columns`` (fewer at the start)."""
        n = max(0, min(n, self.size, len(self.seqs)))
        picks = np.frombuffer(self.seqs, dtype=np.int64)[len(self.seqs) - n :].copy()
        ts, o, h, lo, c, v = columns
        return History(ts[picks], o[picks], h[picks], lo[picks], c[picks], v[picks])
