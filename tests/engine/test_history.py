"""``ctx.history`` gives the same arrays whether the engine keeps bar values (live feeds) or event numbers
read back from a replay's columns, across the trimming of the history and without rejected bars."""

from __future__ import annotations

import numpy as np

from robohost import Bar, Context, Strategy
from robohost.adapters.feeds.replay import ReplayFeed
from support import SYMBOL, WrappedFeed, bars, run_robot


class Recorder(Strategy):
    """Records ``ctx.history(symbol, 4)`` at every bar."""

    params = {"n": 4}

    def on_start(self, ctx: Context) -> None:
        self.seen: list[tuple[list[int], list[float], list[float]]] = []

    def on_bar(self, bar: Bar, ctx: Context) -> None:
        h = ctx.history(bar.symbol, self.params.n)
        assert h.close.dtype == np.float64 and h.ts.dtype == np.int64
        self.seen.append((h.ts.tolist(), h.close.tolist(), h.volume.tolist()))


class ValuesOnly(WrappedFeed):
    """A replay that, like a live feed, offers no columns."""

    def event_columns(self) -> None:
        return None


def test_history_is_the_same_from_values_and_from_event_numbers(db_url: str) -> None:
    rows = [(10.0 + k, 11.0 + k, 9.0 + k, 10.5 + k, 100.0 + k) for k in range(12)]
    rows[5] = (10.0, 9.0, 11.0, 10.0, 1.0)  # high below low: rejected, never in the history
    frame = bars(SYMBOL, rows)
    config = {"history": 3, "commit_every": 2}  # a history shorter than asked, trimmed at every commit
    by_seq = run_robot(db_url, Recorder, ReplayFeed.from_frame(frame), robot="seq", **config)
    by_value = run_robot(db_url, Recorder, ValuesOnly(ReplayFeed.from_frame(frame)), robot="values", **config)
    assert by_seq.strategy.seen == by_value.strategy.seen
    assert len(by_seq.strategy.seen) == 11
    assert all(len(ts) == min(i + 1, 3) for i, (ts, _, _) in enumerate(by_seq.strategy.seen))
    assert 1.0 not in [v for _, _, volumes in by_seq.strategy.seen for v in volumes]
    assert by_seq.strategy.seen[-1][1] == [19.5, 20.5, 21.5]
