"""Tests of the portfolio: the accounting identities after any fills (property test), and worked examples."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from robohost.domain.orders import Fill
from robohost.domain.portfolio import Portfolio, Position
from robohost.domain.values import FillTier, Liquidity, Side

START = Decimal("100000")
SYMBOLS = ("AAA", "BBB")


def fill(symbol: str, side: Side, qty: float, price: float, fee: str = "0") -> Fill:
    """A fill of ``qty`` at ``price``."""
    return Fill("f", "o", symbol, side, qty, price, Decimal(fee), 0, Liquidity.TAKER, FillTier.BAR)


cents = st.integers(min_value=1, max_value=100_000).map(lambda c: c / 100)  # 0.01 .. 1000.00, two decimals
quantities = st.one_of(st.integers(min_value=1, max_value=500).map(float), cents)
fees = st.integers(min_value=0, max_value=1_000).map(lambda c: Decimal(c).scaleb(-2))
fill_steps = st.tuples(
    st.just("fill"), st.sampled_from(SYMBOLS), st.sampled_from([Side.BUY, Side.SELL]), quantities, cents, fees
)
mark_steps = st.tuples(st.just("mark"), st.sampled_from(SYMBOLS), cents)
steps = st.lists(st.one_of(fill_steps, mark_steps), max_size=40)


def check_identities(p: Portfolio, signed_sums: dict[str, Decimal]) -> None:
    """The ledger identities, exactly."""
    equity = p.equity()
    assert p.cash + p.market_value() - equity == 0
    assert equity == p.starting_cash + p.realized + p.unrealized() - p.fees
    assert p.realized == sum((pos.realized for pos in p.positions.values()), Decimal(0))
    for symbol, total in signed_sums.items():
        assert p.positions[symbol].qty == total
        assert p.positions[symbol].qty_f == float(total)
    assert p.equity_f() == pytest.approx(float(equity), rel=1e-12, abs=1e-6)


@given(steps)
@example([("fill", "AAA", Side.BUY, 1.0, 1.0, Decimal(0)), ("fill", "AAA", Side.BUY, 2.0, 2.0, Decimal(0))])
@example(
    [
        ("fill", "AAA", Side.BUY, 3.0, 10.0, Decimal("1.00")),
        ("fill", "AAA", Side.SELL, 5.0, 12.5, Decimal("0.50")),  # long 3 -> short 2
        ("mark", "AAA", 11.0),
        ("fill", "AAA", Side.BUY, 2.0, 9.99, Decimal(0)),  # back to flat
    ]
)
def test_ledger_identities_hold_exactly_after_any_fills(ops: list[tuple[object, ...]]) -> None:
    p = Portfolio(START)
    signed: dict[str, Decimal] = {}
    for op in ops:
        if op[0] == "mark":
            _, symbol, price = op
            p.mark(str(symbol), float(price))  # type: ignore[arg-type]
        else:
            _, symbol, side, qty, price, fee = op
            f = fill(str(symbol), side, qty, price, str(fee))  # type: ignore[arg-type]
            p.apply_fill(f)
            signed[f.symbol] = signed.get(f.symbol, Decimal(0)) + Decimal(repr(f.signed_qty))
        check_identities(p, signed)


def test_average_price_is_the_weighted_entry_price_while_adding() -> None:
    p = Portfolio(START)
    p.apply_fill(fill("AAA", Side.BUY, 10, 100.0))
    p.apply_fill(fill("AAA", Side.BUY, 30, 104.0))
    pos = p.positions["AAA"]
    assert pos.qty == 40
    assert pos.avg_price == Decimal("103")
    assert p.cash == START - 1000 - 3120


def test_reducing_keeps_the_average_and_realises_the_difference() -> None:
    p = Portfolio(START)
    p.apply_fill(fill("AAA", Side.BUY, 40, 103.0))
    realized = p.apply_fill(fill("AAA", Side.SELL, 15, 110.5, "1.25"))
    pos = p.positions["AAA"]
    assert realized == Decimal("112.5")  # (110.5 - 103) x 15
    assert (pos.qty, pos.avg_price, pos.realized) == (Decimal(25), Decimal(103), Decimal("112.5"))
    assert p.fees == Decimal("1.25")
    assert p.cash == START - 4120 + Decimal("1657.5") - Decimal("1.25")


def test_closing_a_short_realises_the_fall_as_profit() -> None:
    p = Portfolio(START)
    p.apply_fill(fill("AAA", Side.SELL, 10, 50.0))
    assert p.positions["AAA"].qty == -10
    assert p.cash == START + 500
    realized = p.apply_fill(fill("AAA", Side.BUY, 10, 45.25))
    assert realized == Decimal("47.5")
    assert p.positions["AAA"].qty == 0
    assert p.positions["AAA"].avg_price == 0
    assert p.held == []


def test_flipping_through_flat_opens_the_remainder_at_the_fill_price() -> None:
    p = Portfolio(START)
    p.apply_fill(fill("AAA", Side.BUY, 10, 20.0))
    realized = p.apply_fill(fill("AAA", Side.SELL, 25, 22.0))
    pos = p.positions["AAA"]
    assert realized == Decimal(20)  # only the 10 held are closed
    assert (pos.qty, pos.avg_price) == (Decimal(-15), Decimal(22))
    p.mark("AAA", 21.0)
    assert pos.unrealized() == Decimal(15)
    assert p.equity() == START + 20 + 15


def test_unrealised_pnl_and_gross_exposure_follow_the_mark() -> None:
    p = Portfolio(START)
    p.apply_fill(fill("AAA", Side.BUY, 10, 100.0))
    p.apply_fill(fill("BBB", Side.SELL, 4, 50.0))
    p.mark("AAA", 101.5)
    p.mark("BBB", 52.0)
    assert p.unrealized() == Decimal(15) - Decimal(8)
    assert p.gross_exposure() == pytest.approx(1015.0 + 208.0)
    assert p.market_value() == Decimal("1015") - Decimal("208")


def test_first_fill_marks_a_new_position_at_its_price() -> None:
    p = Portfolio(START)
    p.apply_fill(fill("AAA", Side.BUY, 2, 12.34))
    assert p.positions["AAA"].last_price == 12.34
    assert p.equity() == START


def test_a_flat_position_has_no_unrealised_pnl() -> None:
    assert Position("AAA").unrealized() == 0
