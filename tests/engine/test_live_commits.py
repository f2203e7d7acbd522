"""How a live session commits: a group commit while the next event is at hand, positions rewritten only when
their price moved, and a latency probe told of each accepted order; the same data give the same rows."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from robohost.adapters.db.journal import SqlJournal
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.feeds.replay import ReplayFeed
from robohost.engine.ports import LiveMarketFeed, MarketEvent
from robohost.engine.records import Batch
from robohost.services import paper
from robohost.services.paper import InlineWriter, PaperTrading, group_commit
from support import SYMBOL, Scripted, WrappedFeed, bars, buy, database, plan, robot_config, sell


class LiveLike(WrappedFeed):
    """A replay dressed as a live feed whose next event is "at hand" right after the events in ``bursts``."""

    def __init__(self, feed: ReplayFeed, bursts: set[int]) -> None:
        super().__init__(feed)
        self.bursts = bursts
        self.last = -1
        self.on_status: Any = None

    def events(self, start_seq: int) -> Iterator[MarketEvent]:
        for event in self.feed.events(start_seq):
            self.last = event[0]
            yield event

    def ready(self, wait_s: float = 0.0) -> bool:
        return self.last in self.bursts

    def resume_after_ts(self, ts_ns: int | Mapping[str, int]) -> None:
        pass

    def close(self) -> None:
        pass


class Recording(InlineWriter):
    """Commits inline and keeps every batch it committed."""

    def __init__(self, journal: SqlJournal) -> None:
        super().__init__(journal)
        self.batches: list[Batch] = []

    def commit(self, batch: Batch) -> None:
        super().commit(batch)
        self.batches.append(batch)


class Accepted:
    """The session's part of a latency probe."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    def arrived(self, seq: int, arrival_ns: int) -> None:
        raise AssertionError("the session reports accepted orders only")

    def accepted(self, seq: int) -> None:
        self.seqs.append(seq)

    def committed(self, seq: int, commit_ns: int) -> None:
        raise AssertionError("the session reports accepted orders only")


def live_run(
    db_url: str, closes: list[float], bursts: set[int], robot: str, **config: Any
) -> tuple[PaperTrading, Recording, Accepted]:
    engine = database(db_url)
    journal = SqlJournal(engine)
    writer = Recording(journal)
    probe = Accepted()
    frame = bars(SYMBOL, [(c, c, c, c, 1_000_000.0) for c in closes], freq="1min")
    feed = LiveLike(ReplayFeed.from_frame(frame), bursts)
    assert isinstance(feed, LiveMarketFeed)
    service = PaperTrading(
        robot,
        robot_config(commit_every=1, fills={"latency_ms": 0}, **config),
        journal,
        ReadModel(engine),
        lambda cfg: feed,
        lambda ref: Scripted,
        logging.getLogger("test"),
        open_writer=lambda: writer,
        probe=probe,
    )
    service.run()
    return service, writer, probe


def test_events_at_hand_share_a_commit_and_every_event_is_committed(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paper, "LIVE_COMMIT_GROUP_S", 60.0)  # only the feed decides here, not the clock
    closes = [100.0] * 10
    _, writer, _ = live_run(db_url, closes, bursts={0, 1, 2, 6}, robot="grouped")
    checkpoints = [b.checkpoint.seq for b in writer.batches if b.checkpoint is not None]
    assert checkpoints == [3, 4, 5, 7, 8, 9, 9]  # 0-3 in one commit, 6-7 in one; the last is the run's end
    _, alone, _ = live_run(db_url, closes, bursts=set(), robot="alone")
    assert [b.checkpoint.seq for b in alone.batches if b.checkpoint is not None] == [*range(10), 9]


def test_a_held_position_is_rewritten_only_when_its_price_moved(db_url: str) -> None:
    closes = [100.0, 100.0, 100.0, 101.0, 101.0, 102.0]
    service, writer, _ = live_run(db_url, closes, bursts=set(), robot="marked", params=plan(buy(0, 10)))
    rewritten = [sorted(b.positions) for b in writer.batches if b.checkpoint is not None]
    assert rewritten[:6] == [[], [SYMBOL], [], [SYMBOL], [], [SYMBOL]]  # bought at bar 1, then 101, then 102
    run = service.read.latest_run("marked")
    assert run is not None
    [position] = service.read.positions(run.id)
    assert position.last_price == 102.0


def test_the_probe_hears_of_accepted_orders_only(db_url: str) -> None:
    steps = plan(buy(1, 10), sell(3, 1_000))  # the sale is refused: short selling is off
    _, _, probe = live_run(db_url, [100.0] * 5, bursts=set(), robot="probed", params=steps)
    assert probe.seqs == [1]


class AlwaysReady:
    """A feed whose next event is always at hand; records how long each ``ready`` may wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def ready(self, wait_s: float = 0.0) -> bool:
        self.waits.append(wait_s)
        return True


def test_group_commit_puts_a_commit_off_for_group_s_then_only_while_an_event_is_at_hand() -> None:
    feed = AlwaysReady()
    defer = group_commit(feed, linger_s=0.002, group_s=0.02)  # type: ignore[arg-type]
    started = time.monotonic()
    while defer():
        time.sleep(0.001)
    assert time.monotonic() - started >= 0.04  # at the latest at twice group_s, even with events at hand
    assert 0 < feed.waits[0] <= 0.002 and feed.waits[-1] == 0.0  # lingering first, then only what is at hand
    assert defer()  # a new group starts
