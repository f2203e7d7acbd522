"""robohost: a self-hosted server that paper-trades a trading robot on market data.

The public API a robot author uses: ``Strategy`` (subclass it), ``Context`` (what the hooks get),
and the value types the hooks receive. Everything else is internal.
"""

from robohost.domain.indicators import EMA, RSI, SMA, Indicator
from robohost.domain.market import Bar, Quote, Trade
from robohost.domain.orders import Fill, Order, OrderStatus
from robohost.domain.values import OrderType, Side, TimeInForce
from robohost.engine.history import History
from robohost.engine.strategy import Context, Params, Strategy

__all__ = [
    "EMA",
    "RSI",
    "SMA",
    "Bar",
    "Context",
    "Fill",
    "History",
    "Indicator",
    "Order",
    "OrderStatus",
    "OrderType",
    "Params",
    "Quote",
    "Side",
    "Strategy",
    "TimeInForce",
    "Trade",
]
__version__ = "0.1.0"
