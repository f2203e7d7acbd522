"""ReadModel on SQLite and PostgreSQL: run listings, per-run reads, limits, robot state, counts."""

from __future__ import annotations

import pytest
from db_records import T0, Records

from robohost.adapters.db.journal import SqlJournal
from robohost.adapters.db.queries import EquityPoint, ReadModel, RobotState


@pytest.fixture
def two_runs(journal: SqlJournal, make_records: type[Records]) -> tuple[Records, Records]:
    """Run-1 (finished) and run-2 (still running) of robot bot, plus run-x of robot other."""
    first, second = make_records("run-1"), make_records("run-2", started_at=T0 + 1_000)
    other = make_records("run-x", robot="other", started_at=T0 + 2_000)
    for r in (first, second, other):
        journal.start_run(r.run())
        journal.commit(
            r.batch(
                orders={f"{r.run_id}-o{i}": r.order(f"{r.run_id}-o{i}", created_ts=T0 + i) for i in range(3)},
                fills=[r.fill(f"{r.run_id}-f{i}", ts=T0 + i) for i in range(3)],
                equity_ts=[T0 + i for i in range(5)],
                equity=[float(i) for i in range(5)],
                cash=[float(-i) for i in range(5)],
            )
        )
    journal.finish_run("run-1", "completed", T0 + 500, {})
    return first, second


def test_runs_are_listed_newest_first(read: ReadModel, two_runs: tuple[Records, Records]) -> None:
    assert [r.id for r in read.runs()] == ["run-x", "run-2", "run-1"]
    assert [r.id for r in read.runs("bot")] == ["run-2", "run-1"]
    assert [r.id for r in read.runs("bot", limit=1)] == ["run-2"]
    assert read.runs("nobody") == []


def test_single_run_lookups(read: ReadModel, two_runs: tuple[Records, Records]) -> None:
    run = read.run("run-1")
    assert run is not None and run.status == "completed"
    assert read.run("missing") is None
    latest = read.latest_run("bot")
    assert latest is not None and latest.id == "run-2"
    unfinished = read.unfinished_run("bot")
    assert unfinished is not None and unfinished.id == "run-2"
    assert read.latest_run("nobody") is None
    assert read.unfinished_run("nobody") is None


def test_per_run_reads_default_to_the_latest_run(read: ReadModel, two_runs: tuple[Records, Records]) -> None:
    assert [o.id for o in read.orders("bot")] == ["run-2-o0", "run-2-o1", "run-2-o2"]
    assert [f.id for f in read.fills("bot", "run-1")] == ["run-1-f0", "run-1-f1", "run-1-f2"]
    assert len(read.equity("bot")) == 5
    assert read.orders("nobody") == []
    assert read.equity("nobody") == []


def test_a_run_of_another_robot_reads_empty(read: ReadModel, two_runs: tuple[Records, Records]) -> None:
    assert read.orders("bot", "run-x") == []
    assert read.fills("bot", "run-x") == []
    assert read.equity("bot", "run-x") == []


def test_limit_keeps_the_newest_rows_oldest_first(read: ReadModel, two_runs: tuple[Records, Records]) -> None:
    assert [o.id for o in read.orders("bot", limit=2)] == ["run-2-o1", "run-2-o2"]
    assert [f.id for f in read.fills("bot", limit=1)] == ["run-2-f2"]
    assert read.equity("bot", "run-1", limit=2) == [EquityPoint(T0 + 3, 3.0, -3.0), EquityPoint(T0 + 4, 4.0, -4.0)]


def test_journal_filters_by_type(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    events = [
        started.event(0, type="run_started"),
        started.event(1, type="order_submitted"),
        started.event(2, type="order_filled"),
        started.event(3, type="order_submitted"),
    ]
    journal.commit(started.batch(events=events))
    assert read.journal("run-1") == events
    assert read.journal("run-1", types={"order_submitted"}) == [events[1], events[3]]
    assert read.journal("run-1", types=["order_filled", "run_started"]) == [events[0], events[2]]
    assert read.journal("run-1", types=[]) == []


def test_set_robot_state_keeps_the_run_id(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    journal.finish_run("run-1", "halted", T0 + 10, {"halt_reason": "max drawdown"})
    read.set_robot_state("bot", "idle", None, T0 + 20)
    assert read.robot_state("bot") == RobotState("bot", "idle", None, "run-1", T0 + 20)


def test_set_robot_state_of_a_new_robot(read: ReadModel) -> None:
    assert read.robot_state("fresh") is None
    read.set_robot_state("fresh", "halted", "halted by hand", T0)
    assert read.robot_state("fresh") == RobotState("fresh", "halted", "halted by hand", None, T0)
    with pytest.raises(ValueError, match="robot status"):
        read.set_robot_state("fresh", "sleeping", None, T0)


def test_counts_per_table(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    r = started
    journal.commit(
        r.batch(
            orders={"o-1": r.order(), "o-2": r.order("o-2")},
            fills=[r.fill()],
            positions={"BTC/USDT": r.position()},
            equity_ts=[T0, T0 + 1, T0 + 2],
            equity=[1.0, 1.0, 1.0],
            cash=[1.0, 1.0, 1.0],
            risk_events=[r.risk()],
            rejected=[r.rejected(), r.rejected()],
            events=[r.event(0)],
        )
    )
    assert read.counts("run-1") == {
        "orders": 2,
        "fills": 1,
        "positions": 1,
        "equity_points": 3,
        "risk_events": 1,
        "rejected_data": 2,
        "journal": 1,
    }
