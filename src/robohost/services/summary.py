"""Run summaries: the headline figures of a run, as the CLI shows them.

The session measures them on the way (final equity, maximum drawdown); the database counts the rest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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
