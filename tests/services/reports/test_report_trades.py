"""Round trips rebuilt from fills, and the slippage a fill paid."""

from __future__ import annotations

from decimal import Decimal

import pytest

from robohost.engine.records import FillRecord
from robohost.services.reports.trades import round_trips, slippage_paid

_seq = iter(range(1_000_000))


def fill(symbol: str, side: str, qty: float, price: float, ts: int, fee: str = "1", realized: str = "0") -> FillRecord:
    """A stored fill with the given realised P&L (what the portfolio computed)."""
    n = next(_seq)
    return FillRecord(
        f"r-F{n}",
        "r",
        "bot",
        f"r-{n}",
        symbol,
        side,
        qty,
        price,
        Decimal(fee),
        ts,
        "taker",
        "bar",
        False,
        Decimal(realized),
    )


def test_entries_and_exits_make_one_trade_with_net_pnl() -> None:
    trades = round_trips(
        [
            fill("A", "buy", 10, 100.0, 1),
            fill("A", "buy", 10, 110.0, 2),  # adds: entry price 105
            fill("A", "sell", 5, 120.0, 3, realized="75"),  # (120 - 105) x 5
            fill("A", "sell", 15, 100.0, 4, realized="-75"),  # (100 - 105) x 15
        ]
    )
    assert len(trades) == 1
    t = trades[0]
    assert (t.symbol, t.side, t.entry_ts, t.exit_ts, t.qty) == ("A", "long", 1, 4, 20.0)
    assert t.entry_price == pytest.approx(105.0)
    assert t.exit_price == pytest.approx((5 * 120 + 15 * 100) / 20)
    assert t.fees == Decimal(4)
    assert t.pnl == Decimal(0) - Decimal(4)
    assert t.holding_ns == 3


def test_a_flip_closes_one_trade_and_opens_the_next_with_the_fee_split() -> None:
    trades = round_trips(
        [
            fill("A", "buy", 10, 100.0, 1, fee="2"),
            fill("A", "sell", 30, 90.0, 2, fee="3", realized="-100"),  # closes 10, opens a short of 20
            fill("B", "buy", 1, 50.0, 3, fee="0.5"),
            fill("A", "buy", 20, 80.0, 4, fee="2", realized="200"),
        ]
    )
    closed_long, closed_short, still_open = trades
    assert (closed_long.side, closed_long.exit_ts, closed_long.qty) == ("long", 2, 10.0)
    assert closed_long.fees == Decimal(3)  # 2 on entry, 1 of the flip's 3 (10 of its 30)
    assert closed_long.pnl == Decimal(-103)
    assert (closed_short.side, closed_short.entry_ts, closed_short.exit_ts, closed_short.qty) == ("short", 2, 4, 20.0)
    assert closed_short.fees == Decimal(4)  # 2 of the flip's fee, 2 on exit
    assert closed_short.pnl == Decimal(196)
    assert (still_open.symbol, still_open.exit_ts, still_open.pnl, still_open.holding_ns) == ("B", None, None, None)


def test_slippage_is_recovered_from_the_fill_price() -> None:
    # 5 bps on a reference price of 100: a buy fills at 100.05, a sell at 99.95; 10 units slip 0.5 each way
    assert slippage_paid(fill("A", "buy", 10, 100.05, 1), "market", 5.0) == pytest.approx(0.5)
    assert slippage_paid(fill("A", "sell", 10, 99.95, 1), "stop", 5.0) == pytest.approx(0.5)
    assert slippage_paid(fill("A", "buy", 10, 100.0, 1), "limit", 5.0) == 0.0
    assert slippage_paid(fill("A", "buy", 10, 100.0, 1), "market", 0.0) == 0.0
