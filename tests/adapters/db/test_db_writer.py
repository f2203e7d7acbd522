"""The writer process and group commits: batches waiting together share a transaction, each is acknowledged,
and a latency probe learns when each batch's events became durable (on SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from db_records import T0, Records

from robohost.adapters.db.journal import SqlJournal
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.db.writer import ProcessJournal
from robohost.engine.records import Batch


class CommitTimes:
    """The ``committed`` part of a latency probe (the other two are not the writer's)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def arrived(self, seq: int, arrival_ns: int) -> None:
        raise AssertionError("a writer reports commits only")

    def accepted(self, seq: int) -> None:
        raise AssertionError("a writer reports commits only")

    def committed(self, seq: int, commit_ns: int) -> None:
        self.seen.append((seq, commit_ns))


def batches(r: Records, n: int) -> list[Batch]:
    """``n`` batches, one order, fill, position, equity point and journal line each, checkpoints 0..n-1."""
    return [
        r.batch(
            orders={f"o-{k}": r.order(f"o-{k}")},
            fills=[r.fill(f"f-{k}", order_id=f"o-{k}")],
            positions={"BTC/USDT": r.position(last_price=100.0 + k)},
            equity_ts=[T0 + k],
            equity=[1000.0 + k],
            cash=[500.0],
            events=[r.event(k)],
            checkpoint=r.checkpoint(k),
        )
        for k in range(n)
    ]


def test_commit_all_writes_every_batch_in_one_transaction_and_the_last_checkpoint(
    journal: SqlJournal, read: ReadModel, started: Records
) -> None:
    group = batches(started, 5)
    journal.commit_all(group)
    counts = read.counts("run-1")
    assert (counts["orders"], counts["fills"], counts["journal"], counts["equity_points"]) == (5, 5, 5, 5)
    assert read.positions("run-1") == [started.position(last_price=104.0)]  # the later batch's row wins
    assert journal.load_checkpoint("run-1") == started.checkpoint(4)
    run = read.run("run-1")
    assert run is not None and run.last_seq == 4


def test_a_failing_group_keeps_nothing_of_any_of_its_batches(
    journal: SqlJournal, read: ReadModel, started: Records
) -> None:
    r = started
    journal.commit(r.batch(fills=[r.fill("f-0")], checkpoint=r.checkpoint(0)))
    before = read.counts("run-1")
    good = r.batch(orders={"o-1": r.order("o-1")}, checkpoint=r.checkpoint(1))
    doomed = r.batch(fills=[r.fill("f-0")], checkpoint=r.checkpoint(2))  # f-0 exists already
    with pytest.raises(sa.exc.IntegrityError):
        journal.commit_all([good, doomed])
    assert read.counts("run-1") == before
    assert journal.load_checkpoint("run-1") == r.checkpoint(0)


def test_the_writer_process_acknowledges_every_batch_with_its_commit_time(
    db_url: str, journal: SqlJournal, read: ReadModel, started: Records
) -> None:
    probe = CommitTimes()
    writer = ProcessJournal(journal, db_url, max_pending=64, probe=probe)
    try:
        before = time.monotonic_ns()
        for batch in batches(started, 40):  # sent faster than committed: the writer groups them
            writer.commit(batch)
        writer.flush()
        after = time.monotonic_ns()
    finally:
        writer.close()
    assert [seq for seq, _ in probe.seen] == list(range(40))
    stamps = [ns for _, ns in probe.seen]
    assert stamps == sorted(stamps) and before < stamps[0] and stamps[-1] < after
    assert read.counts("run-1")["fills"] == 40
    assert journal.load_checkpoint("run-1") == started.checkpoint(39)


def test_without_a_probe_the_acknowledgements_carry_no_times(
    db_url: str, journal: SqlJournal, read: ReadModel, started: Records
) -> None:
    writer = ProcessJournal(journal, db_url)
    try:
        for batch in batches(started, 3):
            writer.commit(batch)
        writer.flush()
    finally:
        writer.close()
    assert read.counts("run-1")["orders"] == 3
