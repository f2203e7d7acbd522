"""Value types shared by the domain: sides, order types, time in force, exact money helpers.

Imports only the standard library.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND
NS_PER_DAY = 86_400 * NS_PER_SECOND
ZERO = Decimal(0)


class Side(StrEnum):
    """The direction of an order or fill."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """How an order meets the market."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    """How long an order stays working: the trading day, or until cancelled."""

    DAY = "day"
    GTC = "gtc"


class Liquidity(StrEnum):
    """Whether a fill added liquidity (a resting limit) or took it."""

    MAKER = "maker"
    TAKER = "taker"


class FillTier(StrEnum):
    """Which market data decided a fill's price: quotes, trades or bars."""

    QUOTE = "quote"
    TRADE = "trade"
    BAR = "bar"


def dec(value: float | int | str | Decimal) -> Decimal:
    """Return ``value`` as an exact Decimal, using the shortest repr of a float."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def round_to_step(value: float, step: float) -> float:
    """Round a price to the nearest multiple of ``step`` (a tick), as a float."""
    if step <= 0:
        return value
    return float(dec(round(value / step)) * dec(step))


def floor_to_step(value: float, step: float) -> float:
    """Round a quantity down to a whole number of ``step`` (a lot), as a float."""
    if step <= 0:
        return value
    lots = int(value / step + 1e-9)
    return float(dec(lots) * dec(step))
