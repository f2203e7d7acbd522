"""Tests of the order life cycle: the transition table, fills on an order, and the Fill value."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from robohost.domain.orders import TRANSITIONS, Fill, Order, OrderStatus
from robohost.domain.values import FillTier, Liquidity, OrderType, Side
from robohost.errors import IllegalTransitionError

S = OrderStatus
TERMINAL = (S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED)
LEGAL = {
    (S.PENDING, S.WORKING),
    (S.PENDING, S.REJECTED),
    (S.PENDING, S.CANCELLED),
    (S.WORKING, S.PARTIALLY_FILLED),
    (S.WORKING, S.FILLED),
    (S.WORKING, S.CANCELLED),
    (S.WORKING, S.EXPIRED),
    (S.WORKING, S.REJECTED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
    (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.CANCELLED),
    (S.PARTIALLY_FILLED, S.EXPIRED),
}
ALL_MOVES = list(itertools.product(S, S))


def order_in(status: OrderStatus, qty: float = 10.0) -> Order:
    """An order of ``qty`` units standing in ``status``."""
    return Order("o-1", "XYZ", Side.BUY, qty, OrderType.LIMIT, created_ts=5, active_ts=6, limit=10.0, status=status)


def test_the_table_lists_every_status() -> None:
    assert set(TRANSITIONS) == set(S)


def test_the_table_is_exactly_the_documented_life_cycle() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == LEGAL


@pytest.mark.parametrize(("src", "dst"), sorted(LEGAL))
def test_legal_moves_succeed_and_stamp_time_and_reason(src: OrderStatus, dst: OrderStatus) -> None:
    o = order_in(src)
    o.move_to(dst, 42, "because")
    assert (o.status, o.updated_ts, o.reason) == (dst, 42, "because")


@pytest.mark.parametrize(("src", "dst"), [m for m in ALL_MOVES if m not in LEGAL])
def test_illegal_moves_raise_and_change_nothing(src: OrderStatus, dst: OrderStatus) -> None:
    o = order_in(src)
    with pytest.raises(IllegalTransitionError, match=f"{src} -> {dst}"):
        o.move_to(dst, 42, "because")
    assert (o.status, o.updated_ts, o.reason) == (src, 5, "")


@pytest.mark.parametrize("status", TERMINAL)
def test_terminal_states_have_no_exits_and_are_not_open(status: OrderStatus) -> None:
    assert TRANSITIONS[status] == frozenset()
    assert not order_in(status).is_open


@pytest.mark.parametrize("status", [S.PENDING, S.WORKING, S.PARTIALLY_FILLED])
def test_open_states_are_open(status: OrderStatus) -> None:
    assert order_in(status).is_open


def test_illegal_transition_error_maps_to_its_exit_code() -> None:
    assert IllegalTransitionError.exit_code == 70


def test_record_fill_moves_to_partially_filled_then_filled_with_a_weighted_average() -> None:
    o = order_in(S.WORKING, qty=10.0)
    o.record_fill(4.0, 10.0, Decimal("1.5"), 100)
    assert (o.status, o.filled_qty, o.remaining, o.avg_price, o.fees) == (
        S.PARTIALLY_FILLED,
        4.0,
        6.0,
        10.0,
        Decimal("1.5"),
    )
    o.record_fill(6.0, 11.0, Decimal("0.25"), 200)
    assert o.status is S.FILLED
    assert o.filled_qty == 10.0
    assert o.remaining == 0.0
    assert o.avg_price == pytest.approx(10.6)
    assert o.fees == Decimal("1.75")
    assert o.updated_ts == 200


def test_a_fill_on_a_pending_order_is_illegal() -> None:
    with pytest.raises(IllegalTransitionError):
        order_in(S.PENDING).record_fill(1.0, 10.0, Decimal(0), 1)


def test_a_fill_on_a_filled_order_is_illegal() -> None:
    o = order_in(S.WORKING, qty=1.0)
    o.record_fill(1.0, 10.0, Decimal(0), 1)
    with pytest.raises(IllegalTransitionError):
        o.record_fill(1.0, 10.0, Decimal(0), 2)


def test_signed_remaining_is_negative_for_sells() -> None:
    sell = Order("o-2", "XYZ", Side.SELL, 7.0, OrderType.MARKET, created_ts=0, active_ts=0, status=S.WORKING)
    assert sell.signed_remaining == -7.0
    assert order_in(S.WORKING, qty=7.0).signed_remaining == 7.0


def test_fill_signed_qty_and_immutability() -> None:
    fill = Fill("f", "o", "XYZ", Side.SELL, 3.0, 10.0, Decimal(0), 1, Liquidity.TAKER, FillTier.BAR)
    assert fill.signed_qty == -3.0
    assert not fill.ambiguous
    with pytest.raises(AttributeError):
        fill.qty = 4.0  # type: ignore[misc]
