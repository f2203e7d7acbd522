"""SqlJournal on SQLite and PostgreSQL: round trips, upserts, atomic commits, checkpoints, Decimals."""

from __future__ import annotations

import inspect
import math
from decimal import Decimal

import pytest
import sqlalchemy as sa
from db_records import T0, Records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robohost.adapters.db.journal import SqlJournal
from robohost.adapters.db.queries import EquityPoint, ReadModel
from robohost.engine.ports import Journal
from robohost.errors import StateError

EMPTY_COUNTS = {
    "orders": 0,
    "fills": 0,
    "positions": 0,
    "equity_points": 0,
    "risk_events": 0,
    "rejected_data": 0,
    "journal": 0,
}


def test_implements_every_journal_method_with_its_signature() -> None:
    for name in ("start_run", "commit", "load_checkpoint", "finish_run"):
        port = inspect.signature(getattr(Journal, name))
        adapter = inspect.signature(getattr(SqlJournal, name))
        assert list(adapter.parameters) == list(port.parameters), name


def test_start_run_records_a_running_run(journal: SqlJournal, read: ReadModel, records: Records) -> None:
    run = records.run()
    journal.start_run(run)
    row = read.run(run.id)
    assert row is not None
    assert (row.id, row.robot, row.mode, row.started_at, row.seed) == ("run-1", "bot", "replay", T0, 42)
    assert row.starting_cash == Decimal("100000.00")
    assert (row.strategy, row.feed_signature, row.config) == (run.strategy, run.feed_signature, run.config)
    assert (row.status, row.ended_at, row.summary) == ("running", None, None)
    assert (row.last_seq, row.last_ts, row.events_processed, row.rejected_count) == (-1, None, 0, 0)
    state = read.robot_state("bot")
    assert state is not None
    assert (state.status, state.reason, state.run_id, state.updated_at) == ("running", None, "run-1", T0)


def test_start_run_twice_is_a_state_error(journal: SqlJournal, started: Records) -> None:
    with pytest.raises(StateError, match="already exists"):
        journal.start_run(started.run())


def test_every_record_type_round_trips(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    r = started
    orders = [r.order("o-1"), r.order("o-2", side="sell", type="stop", stop_price=29_000.5, parent_id="o-1")]
    fills = [r.fill("f-1", ambiguous=True, realized_pnl=Decimal("-12.3456789"))]
    positions = [r.position("BTC/USDT"), r.position("ETH/USDT", qty=Decimal("-2"), last_price=2_000.125)]
    risk = [r.risk(), r.risk(kind="halt", rule="max_drawdown", reason="drawdown 21%", order_id=None)]
    rejected = [r.rejected(), r.rejected(values=(math.nan, math.inf, -math.inf, 1.25))]
    events = [r.event(0), r.event(1, type="strategy_error", data={"error": "boom", "where": ["on_bar", 3]})]
    checkpoint = r.checkpoint(1, rejected_count=2)
    batch = r.batch(
        orders={o.id: o for o in orders},
        fills=fills,
        positions={p.symbol: p for p in positions},
        equity_ts=[T0, T0 + 1],
        equity=[100_000.0, 100_010.5],
        cash=[100_000.0, 84_999.875],
        risk_events=risk,
        rejected=rejected,
        events=events,
        checkpoint=checkpoint,
    )
    journal.commit(batch)

    assert read.orders("bot", "run-1") == orders
    assert read.fills("bot", "run-1") == fills
    assert read.positions("run-1") == positions
    assert read.equity("bot", "run-1") == [
        EquityPoint(T0, 100_000.0, 100_000.0),
        EquityPoint(T0 + 1, 100_010.5, 84_999.875),
    ]
    assert read.risk_events("run-1") == risk
    stored = read.rejected_data("run-1")
    assert stored[0] == rejected[0]
    nan, inf, minus_inf, plain = stored[1].values
    assert math.isnan(nan) and inf == math.inf and minus_inf == -math.inf and plain == 1.25
    assert read.journal("run-1") == events
    assert journal.load_checkpoint("run-1") == checkpoint
    run = read.run("run-1")
    assert run is not None
    assert (run.last_seq, run.last_ts, run.events_processed, run.rejected_count) == (1, T0 + 1, 2, 2)


def test_orders_and_positions_are_upserted(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    r = started
    journal.commit(r.batch(orders={"o-1": r.order()}, positions={"BTC/USDT": r.position()}))
    partly = r.order(status="partially_filled", filled_qty=0.2, avg_fill_price=30_000.0, updated_ts=T0 + 5)
    journal.commit(r.batch(orders={"o-1": partly}))
    final = r.order(status="filled", filled_qty=0.5, avg_fill_price=30_000.1, fees=Decimal("1.5"), updated_ts=T0 + 9)
    closed = r.position(qty=Decimal("0"), realized_pnl=Decimal("42.42"), updated_ts=T0 + 9)
    journal.commit(r.batch(orders={"o-1": final}, positions={"BTC/USDT": closed}))
    assert read.orders("bot", "run-1") == [final]
    assert read.positions("run-1") == [closed]


def test_a_failing_commit_keeps_nothing_of_its_batch(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    r = started
    first = r.batch(orders={"o-1": r.order()}, fills=[r.fill("f-1")], checkpoint=r.checkpoint(0))
    journal.commit(first)
    before = read.counts("run-1")
    doomed = r.batch(
        orders={"o-1": r.order(status="filled"), "o-2": r.order("o-2")},
        fills=[r.fill("f-2"), r.fill("f-1")],  # f-1 exists already: the insert fails midway
        positions={"BTC/USDT": r.position()},
        equity_ts=[T0],
        equity=[1.0],
        cash=[1.0],
        events=[r.event(1)],
        checkpoint=r.checkpoint(1),
    )
    with pytest.raises(sa.exc.IntegrityError):
        journal.commit(doomed)
    assert read.counts("run-1") == before
    assert read.orders("bot", "run-1") == [r.order()]
    assert journal.load_checkpoint("run-1") == r.checkpoint(0)
    run = read.run("run-1")
    assert run is not None and run.last_seq == 0


def test_a_commit_failing_at_its_last_part_keeps_nothing(
    journal: SqlJournal, read: ReadModel, started: Records
) -> None:
    r = started
    doomed = r.batch(
        orders={"o-1": r.order()},
        fills=[r.fill()],
        positions={"BTC/USDT": r.position()},
        equity_ts=[T0, T0 + 1],
        equity=[1.0, 2.0],
        cash=[1.0, 2.0],
        risk_events=[r.risk()],
        rejected=[r.rejected()],
        events=[r.event(0), r.event(1, run_id="no-such-run")],  # foreign key violation, late in the commit
    )
    with pytest.raises(sa.exc.IntegrityError):
        journal.commit(doomed)
    assert read.counts("run-1") == EMPTY_COUNTS
    assert journal.load_checkpoint("run-1") is None


def test_a_checkpoint_for_an_unknown_run_is_refused(journal: SqlJournal, make_records: type[Records]) -> None:
    ghost = make_records("ghost")
    with pytest.raises((StateError, sa.exc.IntegrityError)):
        journal.commit(ghost.batch(checkpoint=ghost.checkpoint(0)))
    assert journal.load_checkpoint("ghost") is None


def test_equity_columns_of_different_lengths_are_refused(
    journal: SqlJournal, read: ReadModel, started: Records
) -> None:
    batch = started.batch(orders={"o-1": started.order()}, equity_ts=[T0, T0 + 1], equity=[1.0], cash=[1.0])
    with pytest.raises(ValueError, match="differ in length"):
        journal.commit(batch)
    assert read.counts("run-1") == EMPTY_COUNTS


def test_checkpoint_state_bytes_round_trip(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    r = started
    assert journal.load_checkpoint("run-1") is None
    blob = bytes(range(256)) * 4096 + b"\x00"  # every byte value, 1 MiB
    journal.commit(r.batch(checkpoint=r.checkpoint(7, state=blob, rejected_count=3)))
    loaded = journal.load_checkpoint("run-1")
    assert loaded == r.checkpoint(7, state=blob, rejected_count=3)
    assert loaded is not None and type(loaded.state) is bytes
    journal.commit(r.batch(checkpoint=r.checkpoint(9, state=b"")))
    assert journal.load_checkpoint("run-1") == r.checkpoint(9, state=b"")
    run = read.run("run-1")
    assert run is not None
    assert (run.last_seq, run.last_ts, run.events_processed) == (9, T0 + 9, 10)


EXACT = [
    Decimal("0"),
    Decimal("0.1"),
    Decimal("-0.0000000001"),
    Decimal("123456789012345678.0123456789"),
    Decimal("-99999999999999999.9999999999"),
    Decimal("1E-10"),
    Decimal("1E+17"),
    Decimal("15.000125"),
]


@pytest.mark.parametrize("value", EXACT, ids=str)
def test_decimals_round_trip_exactly(
    journal: SqlJournal, read: ReadModel, make_records: type[Records], value: Decimal
) -> None:
    r = make_records()
    journal.start_run(r.run(starting_cash=value))
    journal.commit(
        r.batch(
            orders={"o-1": r.order(fees=value)},
            fills=[r.fill(fee=value, realized_pnl=value)],
            positions={"X": r.position("X", qty=value, avg_price=value, realized_pnl=value)},
        )
    )
    run = read.run("run-1")
    (order,) = read.orders("bot")
    (fill,) = read.fills("bot")
    (position,) = read.positions("run-1")
    assert run is not None
    stored = [run.starting_cash, order.fees, fill.fee, fill.realized_pnl]
    stored += [position.qty, position.avg_price, position.realized_pnl]
    assert all(type(v) is Decimal for v in stored)
    assert stored == [value] * len(stored)


@pytest.mark.parametrize(
    ("given_value", "stored"),
    [
        (Decimal("0.00000000005"), Decimal("0.0000000001")),
        (Decimal("-0.00000000005"), Decimal("-0.0000000001")),
        (Decimal("0.00000000004999"), Decimal("0")),
        (Decimal("1.23456789012345"), Decimal("1.2345678901")),
    ],
    ids=str,
)
def test_decimals_beyond_ten_places_round_alike_on_both_backends(
    journal: SqlJournal, read: ReadModel, started: Records, given_value: Decimal, stored: Decimal
) -> None:
    journal.commit(started.batch(positions={"X": started.position("X", qty=given_value)}))
    (position,) = read.positions("run-1")
    assert position.qty == stored


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.decimals(
        min_value=Decimal("-1E17"), max_value=Decimal("1E17"), places=10, allow_nan=False, allow_infinity=False
    )
)
def test_any_ten_place_decimal_round_trips(
    journal: SqlJournal, read: ReadModel, started: Records, value: Decimal
) -> None:
    journal.commit(started.batch(positions={"X": started.position("X", realized_pnl=value)}))
    (position,) = read.positions("run-1")
    assert position.realized_pnl == value


def test_bulk_equity_insert(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    n = 200_000
    ts = [T0 + i * 1_000_000_000 for i in range(n)]
    equity = [100_000.0 + i * 0.25 for i in range(n)]
    cash = [50_000.0 - i * 0.125 for i in range(n)]
    journal.commit(started.batch(equity_ts=ts, equity=equity, cash=cash))
    journal.commit(started.batch(equity_ts=[ts[-1] + 1], equity=[1.0], cash=[2.0]))
    assert read.counts("run-1")["equity_points"] == n + 1
    curve = read.equity("bot", "run-1")
    assert len(curve) == n + 1
    assert curve[0] == EquityPoint(ts[0], equity[0], cash[0])
    assert curve[n - 1] == EquityPoint(ts[-1], equity[-1], cash[-1])
    assert curve[-1] == EquityPoint(ts[-1] + 1, 1.0, 2.0)
    assert [p.ts for p in curve[:1000]] == ts[:1000]


def test_equity_point_at_a_stored_time_replaces_it(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    journal.commit(started.batch(equity_ts=[T0, T0 + 1], equity=[1.0, 2.0], cash=[1.0, 2.0]))
    journal.commit(started.batch(equity_ts=[T0 + 1], equity=[3.0], cash=[4.0]))
    assert read.equity("bot", "run-1") == [EquityPoint(T0, 1.0, 1.0), EquityPoint(T0 + 1, 3.0, 4.0)]


def test_json_data_keeps_what_json_cannot_hold_as_text(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    data = {"pnl": Decimal("1.10"), "ratio": math.nan, "limits": (math.inf, -1.5), 7: None, "ok": True}
    journal.commit(started.batch(events=[started.event(0, data=data)]))
    (event,) = read.journal("run-1")
    assert event.data == {"pnl": "1.10", "ratio": "nan", "limits": ["inf", -1.5], "7": None, "ok": True}


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_finish_run_leaves_the_robot_idle(journal: SqlJournal, read: ReadModel, started: Records, status: str) -> None:
    summary: dict[str, object] = {"final_equity": Decimal("101234.5"), "trades": 3, "sharpe": math.nan}
    journal.finish_run("run-1", status, T0 + 100, summary)
    run = read.run("run-1")
    assert run is not None
    assert (run.status, run.ended_at) == (status, T0 + 100)
    assert run.summary == {"final_equity": "101234.5", "trades": 3, "sharpe": "nan"}
    state = read.robot_state("bot")
    assert state is not None
    assert (state.status, state.reason, state.run_id, state.updated_at) == ("idle", None, "run-1", T0 + 100)


def test_finish_run_halted_halts_the_robot(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    journal.finish_run("run-1", "halted", T0 + 100, {"halt_reason": "daily loss limit hit"})
    state = read.robot_state("bot")
    assert state is not None
    assert (state.status, state.reason, state.run_id) == ("halted", "daily loss limit hit", "run-1")
    assert read.unfinished_run("bot") is None


def test_finish_run_refuses_unknown_runs_and_statuses(journal: SqlJournal, started: Records) -> None:
    with pytest.raises(StateError, match="does not exist"):
        journal.finish_run("nope", "completed", T0, {})
    with pytest.raises(ValueError, match="finish status"):
        journal.finish_run("run-1", "running", T0, {})


def test_abandon_run(journal: SqlJournal, read: ReadModel, started: Records) -> None:
    journal.abandon_run("run-1", ended_at=T0 + 50)
    run = read.run("run-1")
    assert run is not None
    assert (run.status, run.ended_at) == ("abandoned", T0 + 50)
    state = read.robot_state("bot")
    assert state is not None
    assert (state.status, state.updated_at) == ("idle", T0 + 50)
    with pytest.raises(StateError, match="is abandoned, not running"):
        journal.abandon_run("run-1")
    with pytest.raises(StateError, match="does not exist"):
        journal.abandon_run("nope")


def test_abandon_run_keeps_a_halt_of_the_robot(
    journal: SqlJournal, read: ReadModel, started: Records, make_records: type[Records]
) -> None:
    journal.finish_run("run-1", "halted", T0 + 1, {"halt_reason": "kill switch"})
    other = make_records("run-2", started_at=T0 + 2)
    journal.start_run(other.run())
    read.set_robot_state("bot", "halted", "kill switch", T0 + 3)
    journal.abandon_run("run-2", ended_at=T0 + 4)
    state = read.robot_state("bot")
    assert state is not None
    assert (state.status, state.reason) == ("halted", "kill switch")
