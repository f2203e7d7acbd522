"""The accounting invariants, end to end: random bars and random orders through the engine into the database,
then the stored records must reconcile exactly (on SQLite and PostgreSQL).

- each position's stored quantity and realised P&L are the sums of its fills;
- each order's filled quantity and fees are the sums of its fills;
- the cash of the last equity point is starting cash minus what the fills cost (and their fees), and its
  equity is that cash plus the positions at their last prices: cash + positions at market - equity = 0.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import SYMBOL, Scripted, bars, buy, plan, run_robot, sell

START = Decimal(100_000)
_names = itertools.count()


@st.composite
def market(draw: st.DrawFn) -> list[tuple[float, float, float, float, float]]:
    """Bars with two-decimal prices, consistent OHLC and some thin volumes (partial fills)."""
    rows = []
    price = draw(st.integers(2_000, 20_000))
    for _ in range(draw(st.integers(4, 25))):
        o = price
        c = max(100, o + draw(st.integers(-500, 500)))
        h = max(o, c) + draw(st.integers(0, 300))
        lo = max(50, min(o, c) - draw(st.integers(0, 300)))
        v = draw(st.sampled_from([5, 40, 1_000, 100_000]))
        rows.append((o / 100, h / 100, lo / 100, c / 100, float(v)))
        price = c
    return rows


@st.composite
def orders(draw: st.DrawFn, n_bars: int) -> list[dict[str, object]]:
    steps = []
    for _ in range(draw(st.integers(1, 12))):
        at = draw(st.integers(0, n_bars - 1))
        qty = float(draw(st.integers(1, 60)))
        kind = draw(st.sampled_from(["market", "limit", "stop"]))
        extra: dict[str, object] = {}
        if kind != "market":
            extra[kind] = draw(st.integers(500, 25_000)) / 100
        extra["tif"] = draw(st.sampled_from(["day", "gtc"]))
        make = buy if draw(st.booleans()) else sell
        steps.append(make(at, qty, **extra))
    return steps


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), allow_short=st.booleans())
def test_stored_records_reconcile_exactly_after_random_trading(
    db_url: str, data: st.DataObject, allow_short: bool
) -> None:
    rows = data.draw(market())
    steps = data.draw(orders(len(rows)))
    robot = f"acct{next(_names)}"
    run = run_robot(
        db_url,
        Scripted,
        bars(SYMBOL, rows),
        robot=robot,
        params=plan(*steps),
        starting_cash=float(START),
        fills={"allow_short": allow_short, "slippage_bps": 3.0, "participation": 0.5},
        fees={"per_share": 0.01, "percent": 0.05, "minimum": 1.0},
    )
    read = run.read
    fills = read.fills(robot, run.run_id)
    signed_qty: dict[str, Decimal] = defaultdict(Decimal)
    realized: dict[str, Decimal] = defaultdict(Decimal)
    cash = START
    by_order: dict[str, list[object]] = defaultdict(list)
    for f in fills:
        q = Decimal(repr(f.qty)) * (1 if f.side == "buy" else -1)
        signed_qty[f.symbol] += q
        realized[f.symbol] += f.realized_pnl
        cash -= q * Decimal(repr(f.price)) + f.fee
        by_order[f.order_id].append(f)
    positions = {p.symbol: p for p in read.positions(run.run_id)}
    assert set(positions) == set(signed_qty)
    for symbol, pos in positions.items():
        assert pos.qty == signed_qty[symbol]
        assert pos.realized_pnl == realized[symbol]
        if not allow_short:
            assert pos.qty >= 0
    for order in read.orders(robot, run.run_id):
        mine = by_order.get(order.id, [])
        assert order.filled_qty == pytest.approx(sum(f.qty for f in mine), abs=1e-9)  # type: ignore[attr-defined]
        assert order.fees == sum((f.fee for f in mine), Decimal(0))  # type: ignore[attr-defined]
    points = read.equity(robot, run.run_id)
    assert points, "every run marks equity"
    last = points[-1]
    assert last.cash == pytest.approx(float(cash), rel=0, abs=1e-6)
    market_value = sum(float(p.qty) * p.last_price for p in positions.values())
    assert last.equity - (last.cash + market_value) == pytest.approx(0.0, abs=1e-6)
    if not allow_short:
        assert cash >= 0, "without shorting, buys never spend more than the cash there is"
