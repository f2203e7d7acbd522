"""Bad market data end to end: rejected, counted, stored with its reason, and never seen by the robot."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robohost import Bar, Context, Strategy
from robohost.domain.market import bar_problem
from support import SYMBOL, Scripted, bars, buy, ns, plan, run_robot

NAN, INF = math.nan, math.inf
GOOD = (10.0, 11.0, 9.0, 10.5, 1000.0)
DAY = 86_400_000_000_000
T = [ns("2024-01-02") + k * DAY for k in range(4)]


def same_values(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Equal tuples, NaN equal to NaN."""
    return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


VALUE_CASES = {
    "nan": ((NAN, 11.0, 9.0, 10.5, 1000.0), "non-finite open price"),
    "inf": ((10.0, INF, 9.0, 10.5, 1000.0), "non-finite high price"),
    "zero price": ((0.0, 0.0, 0.0, 0.0, 1000.0), "zero or negative price"),
    "negative price": ((-10.0, -9.0, -11.0, -10.0, 1000.0), "zero or negative price"),
    "high below low": ((10.0, 9.0, 11.0, 10.0, 1000.0), "high below low"),
    "open outside": ((12.0, 11.0, 9.0, 10.0, 1000.0), "open outside [low, high]"),
    "close outside": ((10.0, 11.0, 9.0, 8.0, 1000.0), "close outside [low, high]"),
    "negative volume": ((10.0, 11.0, 9.0, 10.5, -1.0), "negative volume"),
}


@pytest.mark.parametrize("case", list(VALUE_CASES))
def test_a_bad_bar_is_rejected_counted_stored_and_hidden_from_the_robot(db_url: str, case: str) -> None:
    values, reason = VALUE_CASES[case]
    frame = bars(SYMBOL, [GOOD, GOOD, values, GOOD])
    run = run_robot(db_url, Scripted, frame)
    (rejected,) = run.read.rejected_data(run.run_id)
    assert (rejected.symbol, rejected.kind, rejected.ts, rejected.reason) == (SYMBOL, "bar", T[2], reason)
    assert same_values(rejected.values, values)
    assert run.outcome.result.rejected_count == 1
    stored = run.read.run(run.run_id)
    assert stored is not None
    assert stored.rejected_count == 1
    assert stored.summary is not None
    assert stored.summary["rejected"] == 1
    assert run.strategy.bar_times == [T[0], T[1], T[3]]
    assert run.outcome.result.events_processed == 4


@pytest.mark.parametrize(
    ("times", "reason", "seen"),
    [
        ([T[0], T[1], T[1], T[2]], "duplicate timestamp", [T[0], T[1], T[2]]),
        ([T[0], T[2], T[1], T[3]], "out-of-order timestamp", [T[0], T[2], T[3]]),
    ],
    ids=["duplicate ts", "out-of-order ts"],
)
def test_a_bar_not_after_the_last_accepted_one_is_rejected(
    db_url: str, times: list[int], reason: str, seen: list[int]
) -> None:
    rows = [(10.0 + k, 11.0 + k, 9.0 + k, 10.5 + k, 1000.0) for k in range(4)]
    run = run_robot(db_url, Scripted, bars(SYMBOL, rows, times=times))
    (rejected,) = run.read.rejected_data(run.run_id)
    assert (rejected.ts, rejected.reason) == (times[2], reason)
    assert same_values(rejected.values, rows[2])
    assert run.outcome.result.rejected_count == 1
    assert run.strategy.bar_times == seen
    assert [b.open for b in run.strategy.bars] == [10.0, 11.0, 13.0]  # the first of two duplicates is kept


def test_a_bad_bar_never_fills_an_order(db_url: str) -> None:
    frame = bars(SYMBOL, [GOOD, (10.0, 9.0, 1.0, 10.0, 1000.0), (-5.0, 11.0, -9.0, 10.0, 1000.0), GOOD])
    run = run_robot(db_url, Scripted, frame, params=plan(buy(0, 10, limit=5.0, tif="gtc")))
    assert run.read.fills("bot") == []
    assert [o.status for o in run.read.orders("bot")] == ["working"]
    assert run.outcome.result.rejected_count == 2


class Watcher(Strategy):
    """Records the history and a two-bar average it sees at each bar."""

    def on_start(self, ctx: Context) -> None:
        self.sma = ctx.sma(SYMBOL, 2)
        self.seen: list[tuple[list[float], float]] = []

    def on_bar(self, bar: Bar, ctx: Context) -> None:
        self.seen.append((ctx.history(SYMBOL, 10).close.tolist(), self.sma.value))


def test_a_bad_bar_does_not_reach_indicators_or_history(db_url: str) -> None:
    frame = bars(SYMBOL, [GOOD, (10.0, 11.0, 9.0, 99.0, 1000.0), (10.0, 11.0, 9.0, 10.0, 1000.0)])
    run = run_robot(db_url, Watcher, frame)
    assert run.outcome.result.rejected_count == 1
    history, average = run.strategy.seen[-1]
    assert history == [10.5, 10.0]
    assert average == pytest.approx(10.25)
    assert len(run.strategy.seen) == 2


PRICES = st.sampled_from([NAN, INF, -INF, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0])
VOLUMES = st.sampled_from([NAN, INF, -1.0, 0.0, 5.0])


@st.composite
def sound_bars(draw: st.DrawFn) -> tuple[float, float, float, float, float]:
    """Bars that satisfy the price rules (their time may still be wrong)."""
    low = draw(st.floats(min_value=0.01, max_value=100.0))
    high = low + draw(st.floats(min_value=0.0, max_value=10.0))
    open_ = draw(st.floats(min_value=low, max_value=high))
    close = draw(st.floats(min_value=low, max_value=high))
    return open_, high, low, close, draw(st.floats(min_value=0.0, max_value=1e6))


rows = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=8),
        st.one_of(sound_bars(), st.tuples(PRICES, PRICES, PRICES, PRICES, VOLUMES)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows)
def test_the_engine_rejects_exactly_the_bars_bar_problem_names(
    db_url: str, rows: list[tuple[int, tuple[float, float, float, float, float]]]
) -> None:
    times = [T[0] + minute * 60_000_000_000 for minute, _ in rows]
    expected_rejected: list[tuple[int, str]] = []
    expected_seen: list[tuple[float, ...]] = []
    previous = -1
    for ts, (_, values) in zip(times, rows, strict=True):
        problem = bar_problem(ts, previous, *values)
        if problem is None:
            previous = ts
            expected_seen.append((ts, *values))
        else:
            expected_rejected.append((ts, problem))

    run = run_robot(db_url, Scripted, bars(SYMBOL, [values for _, values in rows], times=times))
    assert [(r.ts, r.reason) for r in run.read.rejected_data(run.run_id)] == expected_rejected
    assert run.outcome.result.rejected_count == len(expected_rejected)
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in run.strategy.bars] == expected_seen
