"""Tests of the pure bar logic of live feeds: closing streamed candles, building bars from trades."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from robohost.adapters.feeds.live.bars import CandleCloser, ClosedBar, LateTrade, TradeBarBuilder
from robohost.domain.values import NS_PER_MINUTE, NS_PER_SECOND

M = NS_PER_MINUTE
S = NS_PER_SECOND
T0 = int(datetime(2024, 1, 2, 14, 30, tzinfo=UTC).timestamp()) * S
"""A minute boundary (UTC epoch multiple of 60 s)."""


def closer(grace_s: float = 2.0) -> CandleCloser:
    return CandleCloser(M, round(grace_s * S))


# ----------------------------------------------------------------- CandleCloser


def test_forming_candle_is_never_emitted_however_often_it_updates() -> None:
    c = closer()
    for i in range(1, 30):
        assert c.update("A", T0, 10.0, 10.0 + i, 9.0, 10.0 + i / 2, float(i)) == []
        assert c.poll(T0 + 2 * i * S) == []  # still inside the minute
    assert c.open_ts("A") == T0
    assert c.last_emitted("A") is None


def test_next_interval_closes_the_candle_with_its_last_values() -> None:
    c = closer()
    c.update("A", T0, 10.0, 10.5, 9.8, 10.2, 5.0)
    c.update("A", T0, 10.0, 11.0, 9.5, 10.7, 9.0)
    closed = c.update("A", T0 + M, 10.7, 10.7, 10.7, 10.7, 0.0)
    assert closed == [ClosedBar("A", T0, 10.0, 11.0, 9.5, 10.7, 9.0)]
    assert c.last_emitted("A") == T0
    assert c.open_ts("A") == T0 + M


def test_time_closes_the_candle_only_after_end_plus_grace() -> None:
    c = closer(grace_s=2.0)
    c.update("A", T0, 10.0, 11.0, 9.0, 10.5, 7.0)
    assert c.poll(T0 + M) == []
    assert c.poll(T0 + M + 2 * S - 1) == []
    assert c.poll(T0 + M + 2 * S) == [ClosedBar("A", T0, 10.0, 11.0, 9.0, 10.5, 7.0)]
    assert c.poll(T0 + 5 * M) == []  # once only


def test_heard_keeps_a_silent_symbol_open_past_the_grace() -> None:
    c = closer(grace_s=2.0)
    c.update("A", T0, 10.0, 11.0, 9.0, 10.5, 7.0)
    c.update("B", T0, 20.0, 21.0, 19.0, 20.5, 3.0)
    now = T0 + M + 10 * S
    heard = {"A": T0 + M + S, "B": T0 + M - S}  # B went silent before its candle ended
    assert [b.symbol for b in c.poll(now, heard)] == ["A"]
    assert c.poll(now, heard) == []
    heard["B"] = T0 + M
    assert [b.symbol for b in c.poll(now, heard)] == ["B"]


def test_never_twice_never_backwards_late_updates_are_dropped_and_counted() -> None:
    c = closer()
    c.update("A", T0, 10.0, 11.0, 9.0, 10.5, 7.0)
    [first] = c.update("A", T0 + M, 10.5, 10.5, 10.5, 10.5, 1.0)
    assert first.ts == T0
    assert c.update("A", T0, 10.0, 12.0, 8.0, 11.0, 9.0) == []  # a late correction of an emitted candle
    assert c.update("A", T0, 10.0, 11.0, 9.0, 10.5, 7.0) == []  # a duplicate of it
    assert c.update("A", T0 - M, 9.0, 9.0, 9.0, 9.0, 1.0) == []  # an older one
    assert c.late == {"A": 3}
    [second] = c.poll(T0 + 3 * M)
    assert second == ClosedBar("A", T0 + M, 10.5, 10.5, 10.5, 10.5, 1.0)
    assert c.update("A", T0 + M, 1.0, 1.0, 1.0, 1.0, 99.0) == []
    assert c.late == {"A": 4}


def test_an_update_with_less_volume_is_older_and_ignored() -> None:
    c = closer()
    c.update("A", T0, 10.0, 11.0, 9.0, 10.5, 7.0)
    c.update("A", T0, 10.0, 10.5, 9.5, 10.1, 3.0)  # arrived out of order within the candle
    c.update("A", T0, 10.0, 11.0, 9.0, 10.6, 7.0)  # same volume: same trades, newer is fine
    assert c.stale == {"A": 1}
    assert c.poll(T0 + 2 * M) == [ClosedBar("A", T0, 10.0, 11.0, 9.0, 10.6, 7.0)]


def test_an_older_candle_arriving_after_a_newer_one_started_is_late() -> None:
    c = closer()
    c.update("A", T0 + M, 10.0, 10.0, 10.0, 10.0, 1.0)
    assert c.update("A", T0, 9.0, 9.0, 9.0, 9.0, 1.0) == []
    assert c.late == {"A": 1}
    assert c.open_ts("A") == T0 + M


def test_symbols_are_independent_and_poll_returns_time_order() -> None:
    c = closer(grace_s=0)
    c.update("B", T0, 20.0, 20.0, 20.0, 20.0, 1.0)
    c.update("A", T0 + M, 10.0, 10.0, 10.0, 10.0, 1.0)
    c.update("C", T0, 30.0, 30.0, 30.0, 30.0, 1.0)
    closed = c.poll(T0 + 3 * M)
    assert [(b.symbol, b.ts) for b in closed] == [("B", T0), ("C", T0), ("A", T0 + M)]


def test_skip_through_marks_a_resume_point_without_counting() -> None:
    c = closer()
    c.update("A", T0, 10.0, 10.0, 10.0, 10.0, 1.0)
    c.skip_through("A", T0)  # the engine already has this candle
    assert c.open_ts("A") is None
    assert c.last_emitted("A") == T0
    assert c.late == {}
    assert c.update("A", T0, 10.0, 10.0, 10.0, 10.0, 2.0) == []
    assert c.late == {"A": 1}


def test_discard_open_forgets_incomplete_candles() -> None:
    c = closer()
    c.update("A", T0, 10.0, 10.0, 10.0, 10.0, 1.0)
    c.update("B", T0, 20.0, 20.0, 20.0, 20.0, 1.0)
    assert c.discard_open() == 2
    assert c.poll(T0 + 10 * M) == []
    assert c.update("A", T0, 10.0, 12.0, 9.0, 11.0, 5.0) == []  # the same candle again, from REST
    assert c.update("A", T0 + M, 11.0, 11.0, 11.0, 11.0, 1.0) == [ClosedBar("A", T0, 10.0, 12.0, 9.0, 11.0, 5.0)]


def test_week_long_candles_need_no_epoch_alignment() -> None:
    week = 7 * 24 * 60 * M
    monday = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * S  # not a multiple of a week since 1970
    c = CandleCloser(week, 0)
    c.update("A", monday, 1.0, 2.0, 0.5, 1.5, 10.0)
    assert c.poll(monday + week - 1) == []
    assert c.poll(monday + week) == [ClosedBar("A", monday, 1.0, 2.0, 0.5, 1.5, 10.0)]


@pytest.mark.parametrize(("interval", "grace"), [(0, 0), (-M, 0), (M, -1)])
def test_lengths_are_checked(interval: int, grace: int) -> None:
    with pytest.raises(ValueError):
        CandleCloser(interval, grace)
    with pytest.raises(ValueError):
        TradeBarBuilder(interval, grace)


# ----------------------------------------------------------------- TradeBarBuilder


def builder(grace_s: float = 2.0) -> TradeBarBuilder:
    return TradeBarBuilder(M, round(grace_s * S))


def test_trades_make_bars_on_exact_minute_boundaries() -> None:
    b = builder(grace_s=0)
    assert b.bar_start(T0 + 59 * S + 999_999_999) == T0
    assert b.bar_start(T0 + M) == T0 + M
    assert b.add("A", T0, 10.0, 1.0) == []  # exactly on the boundary: the new minute's first trade
    assert b.add("A", T0 + 20 * S, 12.0, 2.0) == []
    assert b.add("A", T0 + 40 * S, 9.0, 3.0) == []
    assert b.add("A", T0 + M - 1, 11.0, 4.0) == []  # the last nanosecond of the minute
    assert b.poll(T0 + M - 1) == []
    assert b.poll(T0 + M) == [ClosedBar("A", T0, 10.0, 12.0, 9.0, 11.0, 10.0)]


def test_a_trade_of_a_later_interval_closes_the_bar_at_once() -> None:
    b = builder(grace_s=5.0)
    b.add("A", T0 + S, 10.0, 1.0)
    closed = b.add("A", T0 + M + S, 11.0, 1.0)  # inside the grace: closed anyway by the symbol's own trade
    assert closed == [ClosedBar("A", T0, 10.0, 10.0, 10.0, 10.0, 1.0)]


def test_a_later_trade_closes_every_bar_whose_grace_passed_earliest_first() -> None:
    b = builder(grace_s=2.0)
    b.add("B", T0 + 10 * S, 20.0, 1.0)
    b.add("A", T0 + 30 * S, 10.0, 1.0)
    assert b.add("C", T0 + M + S, 30.0, 1.0) == []  # within the grace of A's and B's bars
    closed = b.add("C", T0 + M + 30 * S, 31.0, 1.0)  # past it: exchange time has moved on
    assert [(x.symbol, x.ts) for x in closed] == [("B", T0), ("A", T0)]
    closed = b.add("A", T0 + 2 * M + 5 * S, 10.5, 1.0)
    assert closed == [ClosedBar("C", T0 + M, 30.0, 31.0, 30.0, 31.0, 2.0)]


def test_minutes_without_trades_make_no_bar() -> None:
    b = builder(grace_s=0)
    b.add("A", T0 + S, 10.0, 1.0)
    closed = b.add("A", T0 + 5 * M + S, 11.0, 1.0)
    closed += b.poll(T0 + 10 * M)
    assert [x.ts for x in closed] == [T0, T0 + 5 * M]


def test_late_trade_is_not_added_to_a_closed_bar_but_counted_and_reported() -> None:
    b = builder(grace_s=2.0)
    b.add("A", T0 + S, 10.0, 1.0)
    [bar] = b.poll(T0 + M + 2 * S)
    assert bar == ClosedBar("A", T0, 10.0, 10.0, 10.0, 10.0, 1.0)
    assert b.add("A", T0 + 59 * S, 50.0, 7.0) == []  # reported after its bar closed
    assert b.late == {"A": 1}
    assert b.take_late() == [LateTrade("A", T0 + 59 * S, 50.0, 7.0, T0)]
    assert b.take_late() == []
    b.add("A", T0 + M + 3 * S, 11.0, 1.0)
    [nxt] = b.poll(T0 + 2 * M + 2 * S)
    assert nxt == ClosedBar("A", T0 + M, 11.0, 11.0, 11.0, 11.0, 1.0)  # the late trade went nowhere


def test_a_trade_older_than_the_open_bar_is_late_too() -> None:
    b = builder(grace_s=0)
    b.add("A", T0 + M + S, 10.0, 1.0)
    assert b.add("A", T0 + 30 * S, 9.0, 1.0) == []
    assert b.late == {"A": 1}


def test_builder_skip_through_and_discard_open() -> None:
    b = builder(grace_s=0)
    b.skip_through("A", T0 + 30 * S)  # the minute starting at T0 is already covered
    assert b.last_emitted("A") == T0
    assert b.add("A", T0 + 45 * S, 10.0, 1.0) == []
    assert b.late == {"A": 1}
    b.add("A", T0 + M, 11.0, 1.0)
    assert b.discard_open() == 1
    assert b.poll(T0 + 10 * M) == []
