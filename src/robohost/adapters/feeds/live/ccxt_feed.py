"""``CcxtFeed``: closed bars of a crypto exchange through ccxt, streamed over its websocket or polled over REST.

The client is ccxt's own (``ccxt.pro`` for websockets, its aiohttp session for REST), configured, not
patched: tests point it at a local server through ``urls``, which is deep-merged over the exchange's URLs
after ``set_sandbox_mode`` (so a test can check both). With ``use_websocket`` and an exchange that has
``watchOHLCV``, candles arrive by ``watch_ohlcv_for_symbols`` (one subscription for all symbols, where the
exchange has it) or one ``watch_ohlcv`` per symbol. ccxt keeps the newest rows of each candle stream in
``exchange.ohlcvs`` and updates them in place; a thin subclass of the exchange calls the feed back after
ccxt has handled each websocket message, and the feed copies the rows that message added or changed
(ccxt's watch futures resolve once for a burst of messages, and a later message may overwrite a row
before a watcher wakes). Each changed row goes to ``LiveFeed``'s ``CandleCloser``. Without websocket
candles the feed polls ``fetch_ohlcv`` every ``poll_interval_s`` from each symbol's open candle (or last
bar) on, and the same closer decides when a candle is final. ``fetch_ohlcv(since=...)`` fills every gap
(see ``robohost.adapters.feeds.live.base``). With ``bars_from="trades"`` the feed watches trades
(``watch_trades``, read the same way from ``exchange.trades``) and builds the bars itself.

ccxt's ``OperationFailed`` errors (``NetworkError`` and its subclasses: timeouts, refused or dropped
connections, rate limits, maintenance; unreadable responses) make the feed reconnect; an unknown symbol,
an unsupported timeframe or refused credentials raise ``ConfigError`` from ``events``; other exchange
errors ``DataError``. Credentials are optional (market data are public); they go to ccxt's constructor
only, and their values are redacted from every message, ccxt's own debug log of requests and responses
included. Monthly and yearly timeframes (of varying length) are refused.

This module must not import robohost.config, robohost.cli, robohost.services or robohost.adapters.db.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import ccxt
import ccxt.async_support
import ccxt.pro

from robohost.adapters.feeds.live.base import BARS_FROM, LiveFeed, StatusHook, TradeUpdate, Update
from robohost.errors import ConfigError, DataError, RobohostError

log = logging.getLogger(__name__)

CREDENTIAL_KEYS = ("apiKey", "secret", "password", "uid", "login", "privateKey", "walletAddress", "token")
"""The credential fields ccxt's exchanges take."""
_NS_PER_MS = 1_000_000
_CONFIG_ERRORS = (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.BadSymbol, ccxt.NotSupported)


def _exchange_class(exchange_id: str, websocket: bool) -> type[Any]:
    """ccxt.pro's class of the exchange (made to report each message) when a websocket is wanted, else REST's."""
    if exchange_id not in ccxt.exchanges:
        raise ConfigError(f"unknown ccxt exchange {exchange_id!r} (see ccxt.exchanges, e.g. 'binance', 'kraken')")
    pro = getattr(ccxt.pro, exchange_id, None) if websocket else None
    if not isinstance(pro, type):
        return getattr(ccxt.async_support, exchange_id)  # type: ignore[no-any-return]

    class Reporting(pro):  # type: ignore[valid-type, misc]
        """The exchange, calling ``after_message()`` once ccxt has handled each websocket message."""

        after_message: Any = None

        def handle_message(self, client: Any, message: Any) -> Any:
            try:
                return super().handle_message(client, message)
            finally:
                if self.after_message is not None:
                    try:
                        self.after_message()
                    except Exception:  # never into ccxt's receive loop, which would stop reading
                        log.exception("reading ccxt's caches after a message failed")

    Reporting.__name__ = Reporting.__qualname__ = pro.__name__
    return Reporting


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """ccxt's logger for one feed, with the feed's secrets replaced (ccxt logs request headers at DEBUG)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__(logging.getLogger("ccxt.base.exchange"), {})
        self._secrets = tuple(secrets)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        self.logger.log(level, "%s", text, **kwargs)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


class CcxtFeed(LiveFeed):
    """Closed bars of ``symbols`` (ccxt unified symbols, e.g. ``BTC/USDT``) on a ccxt exchange."""

    source: ClassVar[str] = "ccxt"
    retryable: ClassVar[tuple[type[BaseException], ...]] = (*LiveFeed.retryable, ccxt.OperationFailed)

    def __init__(
        self,
        exchange_id: str,
        symbols: Sequence[str],
        timeframe: str = "1m",
        *,
        sandbox: bool = False,
        urls: Mapping[str, Any] | None = None,
        credentials: Mapping[str, str] | None = None,
        use_websocket: bool = True,
        poll_interval_s: float = 2.0,
        grace_s: float = 2.0,
        stale_after_s: float = 60.0,
        on_status: StatusHook | None = None,
        max_bars: int | None = None,
        clock: Callable[[], int] = time.time_ns,
        backoff_cap_s: float = 30.0,
        max_reconnects: int | None = None,
        skew_threshold_ms: float = 2000.0,
        skew_check_s: float = 60.0,
        bars_from: str = "ohlcv",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """Configure the feed and build the ccxt exchange; nothing connects before ``events`` is iterated.

        ``sandbox`` switches ccxt to the exchange's test URLs; ``urls`` is then deep-merged over the URLs,
        and ``options`` over ccxt's exchange options (e.g. ``{"defaultType": "swap"}``); ``credentials``
        holds any of ``CREDENTIAL_KEYS``; ``poll_interval_s`` paces REST polling (when the exchange has no
        websocket candles, or ``use_websocket`` is false); ``grace_s`` is how long after its end a candle may
        still change; ``stale_after_s`` of silence reconnect (and report ``degraded``); ``max_bars`` ends
        ``events`` after that many bars; ``clock`` gives the local time (ns since the epoch) for closing
        candles and the clock-skew check; ``backoff_cap_s`` caps the reconnect delay and ``max_reconnects``
        bounds failed reconnects in a row (None: forever); ``bars_from="trades"`` builds bars from the
        websocket trades instead of the exchange's candles. Raises ``ConfigError`` for an unknown exchange,
        a timeframe it lacks, unknown credential keys or an exchange without a sandbox.
        """
        unknown = sorted(set(credentials or {}) - set(CREDENTIAL_KEYS))
        if unknown:
            raise ConfigError(f"unknown ccxt credential keys {', '.join(unknown)}; use {', '.join(CREDENTIAL_KEYS)}")
        secrets = [str(v) for v in (credentials or {}).values() if v]
        config: dict[str, Any] = {"enableRateLimit": True, "logger": _RedactingLogger(secrets)}
        config.update({k: str(v) for k, v in (credentials or {}).items() if v})
        exchange = _exchange_class(exchange_id, use_websocket)(config)
        del config
        if sandbox:
            try:
                exchange.set_sandbox_mode(True)
            except ccxt.NotSupported:
                raise ConfigError(f"ccxt's {exchange_id} has no sandbox (test) URLs; set sandbox = false") from None
        if urls:
            exchange.urls = exchange.deep_extend(exchange.urls, dict(urls))
        if options:
            exchange.options = exchange.deep_extend(exchange.options, dict(options))
        if not exchange.has.get("fetchOHLCV"):
            raise ConfigError(f"ccxt's {exchange_id} cannot fetch candles (fetchOHLCV), which the feed needs")
        if exchange.timeframes and timeframe not in exchange.timeframes:
            raise ConfigError(
                f"{exchange_id} has no timeframe {timeframe!r}; it has {', '.join(map(str, exchange.timeframes))}"
            )
        if timeframe[-1:] in ("M", "y"):
            raise ConfigError(f"timeframe {timeframe!r} has no fixed length; use at most weeks ('1w')")
        try:
            seconds = exchange.parse_timeframe(timeframe)
        except Exception:
            raise ConfigError(f"cannot read timeframe {timeframe!r}; use e.g. '1m', '5m', '1h', '1d'") from None
        if bars_from not in BARS_FROM:
            raise ConfigError(f"bars_from must be 'ohlcv' or 'trades', not {bars_from!r}")
        if bars_from == "trades" and not (use_websocket and exchange.has.get("watchTrades")):
            raise ConfigError(f"bars from trades need {exchange_id}'s websocket trades (watchTrades) and use_websocket")
        websocket = bool(use_websocket and exchange.has.get("watch" + ("Trades" if bars_from == "trades" else "OHLCV")))
        if not websocket and not stale_after_s > poll_interval_s > 0:
            raise ConfigError("poll_interval_s must be positive and shorter than stale_after_s")
        super().__init__(
            venue=exchange_id,
            symbols=symbols,
            timeframe=timeframe,
            interval_ns=round(seconds * 1e9),
            grace_s=grace_s,
            stale_after_s=stale_after_s,
            on_status=on_status,
            max_bars=max_bars,
            clock=clock,
            backoff_cap_s=backoff_cap_s,
            max_reconnects=max_reconnects,
            skew_threshold_ms=skew_threshold_ms,
            skew_check_s=skew_check_s,
            bars_from=bars_from,
            secrets=secrets,
        )
        self._exchange = exchange
        self._exchange_id = exchange_id
        self._sandbox = sandbox
        self._websocket = websocket
        self._poll_interval_s = poll_interval_s
        self._watches: dict[str, asyncio.Future[Any]] = {}
        self._received: list[Update] = []
        self._trades: list[TradeUpdate] = []
        self._trade_marks: list[tuple[Any, Any] | None] = [None] * len(self.symbols)
        if websocket:
            exchange.after_message = self._scan
        self._seen: list[dict[int, tuple[Any, ...]]] = [{} for _ in self.symbols]
        self._signature = hashlib.sha256(
            repr((self.source, exchange_id, tuple(self.symbols), timeframe)).encode()
        ).hexdigest()

    def __repr__(self) -> str:
        return (
            f"CcxtFeed({self._exchange_id!r}, symbols={list(self.symbols)}, timeframe={self.timeframe!r}, "
            f"mode={self.mode!r}, sandbox={self._sandbox})"
        )

    @property
    def signature(self) -> str:
        """sha256 (hex) of ("ccxt", exchange id, symbols, timeframe): a resumed run must stream the same data."""
        return self._signature

    @property
    def mode(self) -> str:
        """``"websocket"`` (``watch_ohlcv``) or ``"polling"`` (``fetch_ohlcv``)."""
        return "websocket" if self._websocket else "polling"

    @property
    def exchange(self) -> Any:
        """The ccxt exchange object (to inspect; it belongs to the feed's thread while streaming)."""
        return self._exchange

    # ----------------------------------------------------------------- LiveFeed hooks

    async def _connect(self) -> None:
        await self._load_markets()
        if self._websocket:
            await self._cancel_watches()
            self._arm()

    async def _next(self) -> int:
        if self._websocket:
            await self._watch()
            return self._clock()
        await asyncio.sleep(self._poll_interval_s)
        as_of = self._clock()
        for idx in range(len(self.symbols)):
            rows = await self._history_since(idx, self._needed_since(idx))
            self._received += rows  # not `+= await`: the list may be taken while the request runs
        self._heard(as_of, range(len(self.symbols)))
        return as_of

    def _pending(self) -> list[Update]:
        received, self._received = self._received, []
        return received

    def _pending_trades(self) -> list[TradeUpdate]:
        trades, self._trades = self._trades, []
        return trades

    def _scan(self) -> None:
        """After each websocket message: collect the candle rows it added or changed in ccxt's caches.

        Reading after every message (not when a watch wakes) sees each update before a later message
        can overwrite the same row in place. With ``bars_from="trades"``: the trades it added.
        """
        if self._from_trades:
            self._scan_trades()
            return
        streams = self._exchange.ohlcvs if isinstance(self._exchange.ohlcvs, dict) else {}
        heard = []
        for idx, symbol in enumerate(self.symbols):
            cache = (streams.get(symbol) or {}).get(self.timeframe)
            changed = self._changed(idx, cache) if cache else []
            if changed:
                self._received += changed
                heard.append(idx)
        if heard:
            self._heard(self._clock(), heard)

    def _scan_trades(self) -> None:
        """Collect the trades appended to ccxt's trade caches since the last scan (newest last)."""
        caches = self._exchange.trades if isinstance(self._exchange.trades, dict) else {}
        heard = []
        for idx, symbol in enumerate(self.symbols):
            cache = caches.get(symbol)
            if not cache:
                continue
            mark = self._trade_marks[idx]
            fresh: list[TradeUpdate] = []
            for pos in range(len(cache) - 1, -1, -1):
                trade = cache[pos]
                key = (trade.get("timestamp"), trade.get("id"))
                if key == mark or (mark is not None and (key[0] or 0) < (mark[0] or 0)):
                    break
                fresh.append(
                    (idx, int(key[0] or 0) * _NS_PER_MS, _float(trade.get("price")), _float(trade.get("amount")))
                )
            if fresh:
                last = cache[len(cache) - 1]
                self._trade_marks[idx] = (last.get("timestamp"), last.get("id"))
                fresh.reverse()
                self._trades += fresh
                heard.append(idx)
        if heard:
            self._heard(self._clock(), heard)

    def _changed(self, idx: int, cache: Any) -> list[Update]:
        """Rows of one ccxt candle cache that are new or changed since the last read, newest first scanned.

        The scan stops at the first unchanged row older than the newest: rows change only at the end.
        """
        seen = self._seen[idx]
        n = len(cache)
        found: list[Update] = []
        for pos in range(n - 1, max(-1, n - 1001), -1):
            row = cache[pos]
            ts_ms, values = int(row[0]), tuple(row[1:6])
            if seen.get(ts_ms) == values:
                if pos < n - 1:
                    break
                continue
            seen[ts_ms] = values
            o, h, lo, c, v = (_float(x) for x in values)
            found.append((idx, ts_ms * _NS_PER_MS, o, h, lo, c, v))
        if len(seen) > 64:
            for ts_ms in sorted(seen)[:-16]:
                del seen[ts_ms]
        found.reverse()
        return found

    async def _history(self, index: int, since_ns: int, limit: int) -> list[Update]:
        since_ms = -(-since_ns // _NS_PER_MS)
        rows = await self._exchange.fetch_ohlcv(self.symbols[index], self.timeframe, since=since_ms, limit=limit)
        return [
            (index, int(r[0]) * _NS_PER_MS, _float(r[1]), _float(r[2]), _float(r[3]), _float(r[4]), _float(r[5]))
            for r in rows
        ]

    async def _disconnect(self) -> None:
        await self._cancel_watches()
        if self._websocket:
            await self._exchange.close_ws_clients()

    async def _aclose(self) -> None:
        await self._cancel_watches()
        await self._exchange.close()

    async def _exchange_time_ns(self) -> int | None:
        if not self._exchange.has.get("fetchTime"):
            return None
        ms = await self._exchange.fetch_time()
        return None if ms is None else int(ms) * _NS_PER_MS

    def _fatal(self, exc: BaseException) -> RobohostError:
        if isinstance(exc, _CONFIG_ERRORS):
            return ConfigError(f"{self._exchange_id} refused the feed: {self._describe(exc)}")
        return DataError(f"{self._exchange_id} market data failed: {self._describe(exc)}")

    # ----------------------------------------------------------------- helpers

    async def _load_markets(self) -> None:
        if self._exchange.markets:
            return
        markets = await self._exchange.load_markets()
        missing = [s for s in self.symbols if s not in markets]
        if missing:
            listed = ", ".join(list(markets)[:5])
            raise ConfigError(
                f"{self._exchange_id} has no market {', '.join(missing)} (unified symbols such as {listed})"
            )

    async def _watch(self) -> None:
        """Keep the candle watches armed; return when one delivered (or raise its error).

        One ``watch_ohlcv_for_symbols`` for all symbols where the exchange has it (one subscription
        message, which matters where the exchange limits messages per second), else one
        ``watch_ohlcv`` per symbol.
        """
        self._arm()
        done, _ = await asyncio.wait(self._watches.values(), return_when=asyncio.FIRST_COMPLETED)
        heard: list[int] = []
        for key in [k for k, t in self._watches.items() if t in done]:
            result = self._watches.pop(key).result()
            names: list[Any]
            if key != "*":
                names = [key]
            elif isinstance(result, dict):  # candles: {symbol: {timeframe: rows}}
                names = list(result)
            else:  # trades: [{"symbol": ...}, ...]
                names = [t.get("symbol") for t in result if isinstance(t, dict)]
            heard += [self.symbols.index(n) for n in names if n in self.symbols]
        self._heard(self._clock(), heard)

    def _arm(self) -> None:
        """Start the watches that are not running (the first ones connect and subscribe)."""
        ex, symbols = self._exchange, list(self.symbols)
        many = "watchTradesForSymbols" if self._from_trades else "watchOHLCVForSymbols"
        together = bool(ex.has.get(many)) and len(symbols) > 1
        for key in ("*",) if together else symbols:
            task = self._watches.get(key)
            if task is None or task.done():
                if self._from_trades:
                    watch = ex.watch_trades_for_symbols(symbols) if key == "*" else ex.watch_trades(key)
                elif key == "*":
                    watch = ex.watch_ohlcv_for_symbols([[s, self.timeframe] for s in symbols])
                else:
                    watch = ex.watch_ohlcv(key, self.timeframe)
                self._watches[key] = asyncio.ensure_future(watch)

    async def _cancel_watches(self) -> None:
        watches, self._watches = list(self._watches.values()), {}
        for task in watches:
            if task.done():
                with contextlib.suppress(BaseException):
                    task.exception()  # retrieved: no "exception never retrieved" noise
            else:
                task.cancel()
        if watches:
            await asyncio.gather(*watches, return_exceptions=True)
