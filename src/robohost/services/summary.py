"""Run summaries: return, maximum drawdown and trade counts from the stored equity curve.

Off the hot path: computed once per run with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The headline figures of a run."""

    starting_equity: float
    final_equity: float
    total_return: float  # fraction: 0.12 is +12 %
    max_drawdown: float  # fraction, positive: 0.2 is a 20 % fall from a peak
    round_trips: int
    fills: int
    fees: float
    equity_points: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return asdict(self)


def max_drawdown(equity: Sequence[float] | np.ndarray) -> float:
    """Largest peak-to-trough fall of an equity curve, as a positive fraction of the peak."""
    curve = np.asarray(equity, dtype=np.float64)
    if curve.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(curve)
    falls = 1.0 - curve / peaks
    return float(falls.max())


def summarize(
    starting_cash: Decimal, equity: Sequence[float], round_trips: int, fills: int, fees: Decimal
) -> RunSummary:
    """Build the summary of a run from its equity curve and counts."""
    start = float(starting_cash)
    final = float(equity[-1]) if len(equity) else start
    curve = np.concatenate(([start], np.asarray(equity, dtype=np.float64)))
    return RunSummary(
        starting_equity=start,
        final_equity=round(final, 2),
        total_return=final / start - 1.0,
        max_drawdown=max_drawdown(curve),
        round_trips=round_trips,
        fills=fills,
        fees=float(fees),
        equity_points=len(equity),
    )
