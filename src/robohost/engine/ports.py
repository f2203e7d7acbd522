"""The ports of the engine: what it needs from the outside world, as Protocols.

Adapters (replay and live feeds, SQL journals, clocks) implement these. Imports only the standard
library and the engine's records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from robohost.engine.history import History
from robohost.engine.records import Batch, Checkpoint, RunRecord

MarketEvent = tuple[int, int, int, int, float, float, float, float, float]
"""(seq, kind, symbol index, ts ns, f1, f2, f3, f4, f5).

kind is ``BAR``/``TRADE``/``QUOTE`` from ``robohost.domain.market``. Fields: a bar carries
open, high, low, close, volume; a trade price, size (then NaN); a quote bid, ask, bid size,
ask size (then NaN). ``seq`` increases by one per event and is the resume position.
"""


class Clock(Protocol):
    """Time as the engine sees it: simulated in replay, the wall clock live."""

    def now_ns(self) -> int:
        """Current time, ns since the epoch, UTC."""
        ...

    def advance(self, ts: int) -> None:
        """Tell the clock an event at ``ts`` is being processed (replay moves to it; live ignores)."""
        ...


class MarketFeed(Protocol):
    """A source of market events for a fixed list of symbols."""

    @property
    def symbols(self) -> Sequence[str]:
        """Symbols, indexed by the symbol index of each event."""
        ...

    @property
    def kinds(self) -> Mapping[str, frozenset[int]]:
        """Which event kinds (BAR/TRADE/QUOTE) each symbol carries."""
        ...

    @property
    def intervals_ns(self) -> Mapping[str, int]:
        """Bar length per symbol (0 if the symbol has no bars)."""
        ...

    @property
    def signature(self) -> str:
        """A stable identity of the data (source and content), checked when a run resumes."""
        ...

    def events(self, start_seq: int) -> Iterator[MarketEvent]:
        """Yield events in time order, beginning with the event numbered ``start_seq``."""
        ...

    def event_columns(self) -> History | None:
        """Every event's time and fields as numpy arrays indexed by seq, if the feed holds them (a replay)."""
        ...


StatusHook = Callable[[str, dict[str, object]], None]
"""Called by a live feed with what happened to it: "degraded", "recovered", "clock_skew", "reconnected"…"""


@runtime_checkable
class LiveMarketFeed(MarketFeed, Protocol):
    """A feed that streams until it is closed, and can fill the gap since a run's last bar."""

    on_status: StatusHook | None

    def resume_after_ts(self, ts_ns: int | Mapping[str, int]) -> None:
        """Before ``events``: the last bar (start ns) the run processed, per symbol or for all; the feed first
        fills the gap since then (from the source's history), then streams."""
        ...

    def close(self) -> None:
        """Stop streaming: ``events`` ends soon after (bounded), and connections are released."""
        ...

    def ready(self, wait_s: float = 0.0) -> bool:
        """Whether ``events`` has its next event at hand (would yield it without waiting), waiting up to
        ``wait_s`` for it; a live run puts a due commit off while it does (group commit). Call from the
        thread iterating ``events``; it may raise what ``events`` would raise."""
        ...


class LatencyProbe(Protocol):
    """Optional instrumentation of the live path, for benchmarks: when each bar arrived, was acted on, was durable.

    Bars are named by their event ``seq``; times are ``time.monotonic_ns()`` (CLOCK_MONOTONIC, comparable
    between the processes of one machine). Each part calls its method only when a probe was given to it,
    and only where the moment happens, never per bar otherwise: a live feed ``arrived`` (when the bar's
    message was read from the socket), the session ``accepted`` (right after the paper broker accepted an
    order placed while the event was processed; the probe reads the clock itself), the journal writer
    ``committed`` (the last event of a committed batch and the moment its transaction committed, measured
    in the writer process). Calls come from the thread that runs the session.
    """

    def arrived(self, seq: int, arrival_ns: int) -> None:
        """Event ``seq`` is a bar whose message was read from the socket at ``arrival_ns``."""
        ...

    def accepted(self, seq: int) -> None:
        """The paper broker has just accepted an order the robot placed on event ``seq``."""
        ...

    def committed(self, seq: int, commit_ns: int) -> None:
        """Every event up to ``seq`` is durable: its batch's transaction committed at ``commit_ns``."""
        ...


class Journal(Protocol):
    """Durable storage of runs: every commit is one atomic transaction."""

    def start_run(self, run: RunRecord) -> None:
        """Record a new run as running."""
        ...

    def commit(self, batch: Batch) -> None:
        """Write the batch (and its checkpoint, if any) atomically."""
        ...

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """Return the run's last committed checkpoint, or None."""
        ...

    def finish_run(self, run_id: str, status: str, ended_at: int, summary: dict[str, object]) -> None:
        """Mark a run completed, halted or failed, with its summary figures."""
        ...
