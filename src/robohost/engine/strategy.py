"""The strategy boundary: the ``Strategy`` base class a robot extends and the ``Context`` it trades through.

A robot sees market data through ``on_*`` hooks and acts only through ``ctx``. Orders it places
during a hook are held until the hook returns; if the hook raises, they are dropped, so a failing
robot cannot leave half-made decisions behind. No I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from robohost.domain.indicators import EMA, RSI, SMA, Indicator
from robohost.domain.market import Bar, Trade, ns_to_datetime
from robohost.domain.orders import Fill, Order
from robohost.domain.values import OrderType, Side, TimeInForce
from robohost.engine.history import History, SeqHistory
from robohost.errors import StrategyError

if TYPE_CHECKING:
    from robohost.engine.state import EngineState

IndicatorT = TypeVar("IndicatorT", bound=Indicator)


class Logger(Protocol):
    """What ``ctx.log`` offers (a ``logging.Logger`` fits)."""

    def debug(self, msg: str, *args: object) -> None: ...
    def info(self, msg: str, *args: object) -> None: ...
    def warning(self, msg: str, *args: object) -> None: ...
    def error(self, msg: str, *args: object) -> None: ...


class Params(dict[str, Any]):
    """A robot's parameters: a dict that also reads as attributes (``self.params.fast``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter named {name!r}") from None


def merge_params(defaults: Mapping[str, Any], given: Mapping[str, Any], where: str) -> Params:
    """Overlay configured params on a strategy's defaults, refusing unknown keys and wrong types."""
    merged = Params(defaults)
    for key, value in given.items():
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise StrategyError(f"{where}.{key}: the strategy has no parameter {key!r} (known: {known})")
        default = defaults[key]
        if isinstance(default, bool) or default is None:
            ok = default is None or isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, type(default)) and not (isinstance(value, bool) and not isinstance(default, bool))
        if not ok:
            raise StrategyError(
                f"{where}.{key}: expected {type(default).__name__} like the default {default!r}, got {value!r}"
            )
        merged[key] = value
    return merged


class Strategy:
    """Base class of a trading robot. Override the hooks you need; all are optional but ``on_bar``.

    ``params`` holds defaults; the robot's ``[robots.NAME.params]`` table overrides them.
    """

    params: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, params: Mapping[str, Any] | None = None, *, where: str = "params") -> None:
        self.params = merge_params(type(self).params, params or {}, where)  # type: ignore[misc]

    def on_start(self, ctx: Context) -> None:
        """Called once before the first event of a run (not again when a run resumes)."""

    def on_bar(self, bar: Bar, ctx: Context) -> None:
        """Called with each closed bar of each symbol, in time order."""

    def on_trade(self, trade: Trade, ctx: Context) -> None:
        """Called with each trade, where the data source has trades."""

    def on_fill(self, fill: Fill, ctx: Context) -> None:
        """Called after each fill of one of the robot's orders."""

    def on_stop(self, ctx: Context) -> None:
        """Called once when the run ends."""


class Context:
    """The robot's window on its account and the market. Read-only views, orders queued."""

    def __init__(self, now_ns: Callable[[], int], log: Logger) -> None:
        self._state: EngineState
        self._now_ns = now_ns
        self.log = log
        self.requests: list[Order | str] = []  # orders to submit, or ids to cancel
        self.symbols: tuple[str, ...] = ()
        self.event_columns: History | None = None  # the feed's columns, for a history kept by event number

    def bind(self, state: EngineState) -> None:
        """Attach the engine state this context reads and trades on."""
        self._state = state
        self.symbols = tuple(state.symbols)

    # -- time and account -----------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The current time (simulated in a replay), an aware UTC datetime."""
        return ns_to_datetime(self._now_ns())

    @property
    def cash(self) -> float:
        """Cash in the account."""
        return self._state.portfolio.cash_f

    @property
    def equity(self) -> float:
        """Cash plus positions at their last prices."""
        return self._state.portfolio.equity_f()

    def position(self, symbol: str) -> float:
        """Signed quantity held in ``symbol`` (0.0 when flat)."""
        pos = self._state.portfolio.positions.get(symbol)
        return pos.qty_f if pos is not None else 0.0

    def avg_price(self, symbol: str) -> float:
        """Average entry price of the position in ``symbol`` (NaN when flat)."""
        pos = self._state.portfolio.positions.get(symbol)
        return float(pos.avg_price) if pos is not None and pos.qty else math.nan

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """The robot's open orders (treat them as read-only)."""
        return self._state.broker.open_orders(symbol)

    # -- market data --------------------------------------------------------------------------
    def history(self, symbol: str, n: int) -> History:
        """The last ``n`` closed bars of ``symbol`` as numpy arrays (fewer at the start)."""
        hist = self._state.history_of(symbol)
        if isinstance(hist, SeqHistory):
            assert self.event_columns is not None, "a replay's history reads the feed's columns"
            return hist.last(n, self.event_columns)
        return hist.last(n)

    def sma(self, symbol: str, period: int) -> SMA:
        """A simple moving average of ``symbol``'s closes, updated before each ``on_bar``."""
        return self._register(symbol, SMA(period))

    def ema(self, symbol: str, period: int) -> EMA:
        """An exponential moving average of ``symbol``'s closes."""
        return self._register(symbol, EMA(period))

    def rsi(self, symbol: str, period: int = 14) -> RSI:
        """Wilder's RSI of ``symbol``'s closes."""
        return self._register(symbol, RSI(period))

    def _register(self, symbol: str, indicator: IndicatorT) -> IndicatorT:
        self._state.indicators[self._state.symbol_index(symbol)].append(indicator)
        return indicator

    # -- orders ---------------------------------------------------------------------------------
    def buy(
        self,
        symbol: str,
        qty: float,
        limit: float | None = None,
        stop: float | None = None,
        tif: str = "day",
        stop_loss: float | None = None,
        take_profit: float | None = None,
    ) -> str:
        """Queue a buy order; return its client order id. See the README for order types."""
        return self._order(Side.BUY, symbol, qty, limit, stop, tif, stop_loss, take_profit)

    def sell(
        self,
        symbol: str,
        qty: float,
        limit: float | None = None,
        stop: float | None = None,
        tif: str = "day",
        stop_loss: float | None = None,
        take_profit: float | None = None,
    ) -> str:
        """Queue a sell order; return its client order id."""
        return self._order(Side.SELL, symbol, qty, limit, stop, tif, stop_loss, take_profit)

    def close(self, symbol: str) -> str | None:
        """Cancel the symbol's open orders and flatten its position at market; return the order id."""
        for order in self._state.broker.open_orders(symbol):
            self.requests.append(order.id)
        qty = self.position(symbol)
        if qty == 0.0:
            return None
        return self._order(Side.SELL if qty > 0 else Side.BUY, symbol, abs(qty), None, None, "day", None, None)

    def cancel(self, order_id: str) -> None:
        """Queue the cancellation of an open order."""
        self.requests.append(order_id)

    def _order(
        self,
        side: Side,
        symbol: str,
        qty: float,
        limit: float | None,
        stop: float | None,
        tif: str,
        stop_loss: float | None,
        take_profit: float | None,
    ) -> str:
        state = self._state
        state.symbol_index(symbol)
        if limit is not None and stop is not None:
            kind = OrderType.STOP_LIMIT
        elif limit is not None:
            kind = OrderType.LIMIT
        elif stop is not None:
            kind = OrderType.STOP
        else:
            kind = OrderType.MARKET
        try:
            time_in_force = TimeInForce(tif.lower())
        except ValueError:
            raise StrategyError(f"time in force must be 'day' or 'gtc', got {tif!r}") from None
        now = self._now_ns()
        order = Order(
            id=state.broker.next_order_id(),
            symbol=symbol,
            side=side,
            qty=float(qty),
            type=kind,
            created_ts=now,
            active_ts=now + state.broker.rules.latency_ns,
            limit=limit,
            stop=stop,
            tif=time_in_force,
            stop_loss=stop_loss,
            take_profit=take_profit,
        )
        self.requests.append(order)
        return order.id
