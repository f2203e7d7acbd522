"""Tests of the market-data values and the data-quality rules (one test per rule)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from robohost.domain.market import Bar, Quote, Trade, bar_problem, ns_to_datetime, quote_problem, trade_problem

NAN, INF = math.nan, math.inf
GOOD = (10.0, 11.0, 9.0, 10.5, 100.0)  # open, high, low, close, volume


def bar(ts: int = 10, prev: int = 5, **values: float) -> str | None:
    """``bar_problem`` of the good bar with some values replaced."""
    fields = dict(zip(("open", "high", "low", "close", "volume"), GOOD, strict=True)) | values
    return bar_problem(ts, prev, fields["open"], fields["high"], fields["low"], fields["close"], fields["volume"])


def test_a_sound_bar_passes() -> None:
    assert bar() is None
    assert bar(prev=-1) is None
    assert bar(open=9.0, close=11.0) is None  # open and close may sit on the extremes
    assert bar(volume=0.0) is None
    assert bar(open=5.0, high=5.0, low=5.0, close=5.0) is None


@pytest.mark.parametrize("name", ["open", "high", "low", "close"])
def test_nan_price(name: str) -> None:
    assert bar(**{name: NAN}) == f"non-finite {name} price"


@pytest.mark.parametrize("name", ["open", "high", "low", "close"])
@pytest.mark.parametrize("value", [INF, -INF])
def test_infinite_price(name: str, value: float) -> None:
    assert bar(**{name: value}) == f"non-finite {name} price"


@pytest.mark.parametrize("value", [NAN, INF])
def test_non_finite_volume(value: float) -> None:
    assert bar(volume=value) == "non-finite volume"


def test_high_below_low() -> None:
    assert bar(high=8.0, low=9.0, open=8.5, close=8.5) == "high below low"


@pytest.mark.parametrize("value", [8.99, 11.01])
def test_open_outside_the_range(value: float) -> None:
    assert bar(open=value) == "open outside [low, high]"


@pytest.mark.parametrize("value", [8.99, 11.01])
def test_close_outside_the_range(value: float) -> None:
    assert bar(close=value) == "close outside [low, high]"


def test_zero_price() -> None:
    assert bar(open=0.0, high=0.0, low=0.0, close=0.0) == "zero or negative price"
    assert bar(low=0.0) == "zero or negative price"


def test_negative_price() -> None:
    assert bar(open=-2.0, high=-1.0, low=-3.0, close=-2.0) == "zero or negative price"


def test_negative_volume() -> None:
    assert bar(volume=-1.0) == "negative volume"


def test_duplicate_timestamp() -> None:
    assert bar(ts=10, prev=10) == "duplicate timestamp"


def test_out_of_order_timestamp() -> None:
    assert bar(ts=9, prev=10) == "out-of-order timestamp"


def test_trade_rules() -> None:
    assert trade_problem(10, 10, 5.0, 1.0) is None  # trades may share a timestamp
    assert trade_problem(10, 5, 5.0, 0.0) is None
    assert trade_problem(10, 5, NAN, 1.0) == "non-finite price"
    assert trade_problem(10, 5, INF, 1.0) == "non-finite price"
    assert trade_problem(10, 5, 5.0, NAN) == "non-finite size"
    assert trade_problem(10, 5, 0.0, 1.0) == "zero or negative price"
    assert trade_problem(10, 5, -5.0, 1.0) == "zero or negative price"
    assert trade_problem(10, 5, 5.0, -1.0) == "negative size"
    assert trade_problem(4, 5, 5.0, 1.0) == "out-of-order timestamp"


def test_quote_rules() -> None:
    assert quote_problem(10, 10, 9.9, 10.0, 1.0, 1.0) is None
    assert quote_problem(10, 5, 10.0, 10.0, 0.0, 0.0) is None  # a locked book is allowed
    assert quote_problem(10, 5, NAN, 10.0, 1.0, 1.0) == "non-finite bid"
    assert quote_problem(10, 5, 9.9, INF, 1.0, 1.0) == "non-finite ask"
    assert quote_problem(10, 5, 9.9, 10.0, NAN, 1.0) == "non-finite bid size"
    assert quote_problem(10, 5, 9.9, 10.0, 1.0, -INF) == "non-finite ask size"
    assert quote_problem(10, 5, 0.0, 10.0, 1.0, 1.0) == "zero or negative price"
    assert quote_problem(10, 5, 10.1, 10.0, 1.0, 1.0) == "crossed quote (bid above ask)"
    assert quote_problem(10, 5, 9.9, 10.0, -1.0, 1.0) == "negative size"
    assert quote_problem(4, 5, 9.9, 10.0, 1.0, 1.0) == "out-of-order timestamp"


def test_times_are_aware_utc() -> None:
    ts = 1_704_153_600_000_000_000  # 2024-01-02T00:00:00Z
    assert ns_to_datetime(ts) == datetime(2024, 1, 2, tzinfo=UTC)
    assert Bar("X", ts, 1.0, 1.0, 1.0, 1.0, 0.0).time == datetime(2024, 1, 2, tzinfo=UTC)
    assert Trade("X", ts, 1.0, 1.0).time.tzinfo is UTC


def test_copies_are_independent_of_the_reused_view() -> None:
    b = Bar("X", 1, 1.0, 2.0, 0.5, 1.5, 10.0)
    kept = b.copy()
    b.close = 99.0
    assert (kept.symbol, kept.ts, kept.open, kept.high, kept.low, kept.close, kept.volume) == (
        "X",
        1,
        1.0,
        2.0,
        0.5,
        1.5,
        10.0,
    )
    q = Quote("X", 1, 1.0, 1.1, 5.0, 6.0)
    kept_q = q.copy()
    q.bid = 0.0
    assert (kept_q.bid, kept_q.ask, kept_q.bid_size, kept_q.ask_size) == (1.0, 1.1, 5.0, 6.0)
    t = Trade("X", 1, 3.0, 4.0)
    kept_t = t.copy()
    t.price = 0.0
    assert (kept_t.price, kept_t.size) == (3.0, 4.0)
    assert "o=1.0" in repr(kept)
