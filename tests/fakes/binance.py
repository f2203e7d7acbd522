"""A Binance spot market-data server on 127.0.0.1, speaking the real wire protocol, for feed tests.

``FakeBinance(frame)`` serves the bars of a DataFrame (columns ``symbol, ts, open, high, low, close, volume``;
symbols in ccxt's unified form ``BASE/QUOTE``, e.g. ``BTC/USDT``, one row per interval) on an accelerated
"exchange clock": ``clock_ns()`` starts at ``start_at_ns`` (or ``start_at_bar`` intervals after the first
bar's start; default: the first bar's start) when the first client subscribes or asks for klines (or on
``begin()``), then runs ``speed`` times faster than real time.

- REST (aiohttp): ``GET /api/v3/ping``, ``/api/v3/time``, ``/api/v3/exchangeInfo`` (the fields ccxt 4.5.90's
  ``load_markets`` reads), ``/api/v3/klines`` (Binance's array rows; the candle in progress with the values
  it has so far; at most ``max_klines`` rows, like an exchange capping its pages), the futures
  ``/fapi/v1/exchangeInfo`` and ``/dapi/v1/exchangeInfo`` (no symbols) that ccxt's binance loads too, and
  (empty) the private ``/sapi/v1`` lists it asks for when given an API key (currencies, margin pairs; the
  signature is not checked). Other paths answer 404 with a Binance error body and are listed in
  ``unknown_requests``.
- Websocket (websockets): raw streams ``/ws/<anything>`` and combined streams ``/stream?streams=a/b`` with
  ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` answered as Binance does (``{"result": null,
  "id": 1}``). A ``<symbol>@kline_<interval>`` stream gets each candle ``updates_per_bar`` times while it
  forms (``"x": false``, the values so far: the close moving from the open towards the final close, high,
  low and volume growing), then once final (``"x": true``) the moment it ends; combined streams wrap each
  event as ``{"stream": ..., "data": ...}``. ``<symbol>@trade`` streams get four trades per bar whose
  open, high, low, close and total size are the bar's.

Faults, scripted with ``Fault(kind, at)`` (fired when the exchange clock reaches the start of the candle
numbered ``at``, counting from the first bar) or triggered at once with the methods of the same name:
``drop`` (abort every websocket without a close frame, and refuse new ones with HTTP 503 for ``seconds``
of real time), ``shutdown`` (a ``serverShutdown`` event, then close
1001), ``malformed`` (a truncated JSON frame), ``stall`` (no market data for ``seconds`` of real time; what
would have been sent meanwhile is skipped), ``duplicate`` (the final kline of the previous candle and the
first update of the new one sent twice), ``out_of_order`` (the final kline of the candle before the previous
one, and a forming, smaller update of the previous one, sent after the new candle started) and ``skip``
(nothing at all is sent about candle ``at``; REST still has it). Every fault fired is listed in ``fired``.
``fail_rest(path, status, body)`` makes the next request to a REST path fail.

The server runs on its own event loop in a background thread: ``start()`` / ``stop()`` or ``with``.
``ccxt_urls()`` gives the ``urls`` override that points ccxt's binance (REST and websocket) at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import pandas as pd
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

INTERVALS_S = {"1s": 1, "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400}
"""Kline intervals the fake serves, in seconds."""
FAULT_KINDS = ("drop", "shutdown", "malformed", "stall", "duplicate", "out_of_order", "skip")
MALFORMED = '{"e":"kline","E":17,"s":"BTCUSDT","k":{"t":'
"""A truncated JSON frame, as a broken proxy might deliver."""
_NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class Fault:
    """A fault fired when the exchange clock reaches the start of candle number ``at`` (0 = the first bar)."""

    kind: str
    at: int
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; use one of {', '.join(FAULT_KINDS)}")


@dataclass
class _Series:
    """One symbol's bars: starts in ns and values, by start."""

    symbol: str
    market_id: str
    base: str
    quote: str
    rows: dict[int, tuple[float, float, float, float, float]]

    @property
    def starts(self) -> list[int]:
        return sorted(self.rows)


@dataclass
class _Client:
    """One websocket connection and its streams."""

    conn: ServerConnection
    combined: bool
    streams: set[str]


def binance_id(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTCUSDT``."""
    return symbol.replace("/", "").upper()


def _num(x: float) -> str:
    """A decimal string as Binance sends it (8 decimals), exact when parsed back to a float."""
    text = f"{x:.8f}"
    return text if float(text) == x else repr(float(x))


def forming(values: tuple[float, float, float, float, float], fraction: float) -> tuple[float, ...]:
    """The candle's values after ``fraction`` (0..1) of its interval; 1 gives the final values."""
    o, h, lo, c, v = values
    if fraction >= 1.0:
        return values
    close = o + (c - o) * fraction
    high = max(o, close) + (h - max(o, c)) * fraction
    low = min(o, close) - (min(o, c) - lo) * fraction
    return (o, high, low, close, v * fraction)


class FakeBinance:
    """The fake exchange (see the module docstring)."""

    def __init__(
        self,
        bars: pd.DataFrame,
        *,
        interval: str = "1m",
        speed: float = 400.0,
        updates_per_bar: int = 3,
        start_at_ns: int | None = None,
        start_at_bar: float | None = None,
        skew_ms: int = 0,
        faults: Iterable[Fault] = (),
        ping_interval: float | None = 20.0,
        max_klines: int = 1000,
        host: str = "127.0.0.1",
    ) -> None:
        if interval not in INTERVALS_S:
            raise ValueError(f"unsupported interval {interval!r}")
        if speed <= 0 or updates_per_bar < 1:
            raise ValueError("speed must be positive and updates_per_bar at least 1")
        self.interval = interval
        self.interval_ns = INTERVALS_S[interval] * 1_000_000_000
        self.speed = float(speed)
        self.updates_per_bar = updates_per_bar
        self.skew_ms = skew_ms
        self.host = host
        self.ping_interval = ping_interval
        self.max_klines = max_klines
        self.series = self._load(bars)
        self.t0 = min(ts for s in self.series.values() for ts in s.rows)
        self.t_end = max(ts for s in self.series.values() for ts in s.rows) + self.interval_ns
        self.start_at_ns = self.t0 if start_at_ns is None else int(start_at_ns)
        if start_at_bar is not None:
            self.start_at_ns = self.t0 + round(start_at_bar * self.interval_ns)
        self.faults = {f.at: f for f in faults}
        self.fired: list[tuple[str, int]] = []
        self.unknown_requests: list[str] = []
        self.requests: list[str] = []
        self.subscriptions: list[list[str]] = []
        self.connections = 0
        self.port = 0
        self.ws_port = 0
        self._by_id = {s.market_id: s for s in self.series.values()}
        self._begun_mono: float | None = None
        self._stall_until = 0.0
        self._refuse_until = 0.0
        self._rest_failures: dict[str, list[tuple[int, str]]] = {}
        self._skipped: set[int] = set()
        self._clients: list[_Client] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None

    # ----------------------------------------------------------------- set-up and clock

    @staticmethod
    def _load(bars: pd.DataFrame) -> dict[str, _Series]:
        frame = bars.rename(columns=str.lower)
        stamps = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True)).as_unit("ns").asi8
        values = frame[["open", "high", "low", "close", "volume"]].to_numpy(dtype=float).tolist()
        series: dict[str, _Series] = {}
        for symbol, ts, row in zip(frame["symbol"].astype(str), stamps.tolist(), values, strict=True):
            if symbol not in series:
                base, _, quote = symbol.partition("/")
                if not base or not quote:
                    raise ValueError(f"symbol {symbol!r} is not BASE/QUOTE")
                series[symbol] = _Series(symbol, binance_id(symbol), base, quote, {})
            series[symbol].rows[int(ts)] = tuple(row)  # type: ignore[assignment]
        return series

    def clock_ns(self) -> int:
        """The exchange's time now (ns since the epoch): frozen at ``start_at_ns`` until the clock begins."""
        if self._begun_mono is None:
            return self.start_at_ns
        return self.start_at_ns + int((time.monotonic() - self._begun_mono) * 1e9 * self.speed)

    def begin(self) -> None:
        """Start the exchange clock now (the first subscription or klines request does it too)."""
        if self._begun_mono is None:
            self._begun_mono = time.monotonic()

    def real_seconds(self, exchange_ns: int) -> float:
        """How long ``exchange_ns`` of exchange time take in real time."""
        return exchange_ns / 1e9 / self.speed

    def expected(self, symbol: str) -> list[tuple[int, float, float, float, float, float]]:
        """The symbol's bars as (start ns, open, high, low, close, volume), in time order."""
        rows = self.series[symbol].rows
        return [(ts, *rows[ts]) for ts in sorted(rows)]

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}"

    def ccxt_urls(self) -> dict[str, Any]:
        """The ``urls`` override that sends ccxt's binance (spot REST, futures metadata, websockets) here."""
        rest, ws = self.rest_url, f"{self.ws_url}/ws"
        api = {
            "public": f"{rest}/api/v3",
            "private": f"{rest}/api/v3",
            "v1": f"{rest}/api/v1",
            "sapi": f"{rest}/sapi/v1",
            "fapiPublic": f"{rest}/fapi/v1",
            "fapiPublicV2": f"{rest}/fapi/v2",
            "fapiPublicV3": f"{rest}/fapi/v3",
            "dapiPublic": f"{rest}/dapi/v1",
            "ws": {"spot": ws, "margin": ws, "linear": ws, "inverse": ws},
        }
        return {"api": api}

    def start(self) -> FakeBinance:
        """Start serving in a background thread; return once both ports listen."""
        self._thread = threading.Thread(target=self._serve_thread, name="fake-binance", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("the fake Binance server did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"the fake Binance server failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Close every connection and stop the server thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(10.0)

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve_thread(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._rest)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self.port = int(runner.addresses[0][1])
        ws_server: Server = await serve(
            self._ws,
            self.host,
            0,
            process_request=self._admit,
            ping_interval=self.ping_interval,
            close_timeout=1,
            max_queue=None,
        )
        self.ws_port = int(next(iter(ws_server.sockets)).getsockname()[1])
        sender = asyncio.create_task(self._broadcast())
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            ws_server.close()
            await ws_server.wait_closed()
            await runner.cleanup()

    # ----------------------------------------------------------------- REST

    async def _rest(self, request: web.Request) -> web.Response:
        path = request.path
        self.requests.append(path)
        failures = self._rest_failures.get(path)
        if failures:
            status, body = failures.pop(0)
            return web.Response(status=status, text=body, content_type="application/json")
        if path == "/api/v3/ping":
            return web.json_response({})
        if path == "/api/v3/time":
            return web.json_response({"serverTime": self.clock_ns() // _NS_PER_MS + self.skew_ms})
        if path == "/api/v3/exchangeInfo":
            return web.json_response(self._exchange_info(self.series.values()))
        if path in ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"):
            return web.json_response(self._exchange_info(()))
        if path in ("/sapi/v1/capital/config/getall", "/sapi/v1/margin/allPairs", "/sapi/v1/margin/isolated/allPairs"):
            return web.json_response([])  # what ccxt's load_markets asks as well when given an API key
        if path == "/api/v3/klines":
            self.begin()
            return self._klines(request.query)
        self.unknown_requests.append(path)
        return web.json_response({"code": -1000, "msg": f"unknown endpoint {path}"}, status=404)

    def _exchange_info(self, series: Iterable[_Series]) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": self.clock_ns() // _NS_PER_MS,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [
                {
                    "symbol": s.market_id,
                    "status": "TRADING",
                    "baseAsset": s.base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": s.quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": [
                        {"filterType": "PRICE_FILTER", "minPrice": "0.00010000", "maxPrice": "1000000.00000000",
                         "tickSize": "0.00010000"},
                        {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
                         "stepSize": "0.00001000"},
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                }
                for s in series
            ],
        }  # fmt: skip

    def _klines(self, query: Mapping[str, str]) -> web.Response:
        series = self._by_id.get(query.get("symbol", ""))
        if series is None:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        if query.get("interval") != self.interval:
            return web.json_response({"code": -1120, "msg": "Invalid interval."}, status=400)
        try:
            limit = min(int(query.get("limit", "500")), self.max_klines)
            start = int(query["startTime"]) * _NS_PER_MS if "startTime" in query else None
            end = int(query["endTime"]) * _NS_PER_MS if "endTime" in query else None
        except ValueError:
            return web.json_response({"code": -1100, "msg": "Illegal characters found in a parameter."}, status=400)
        now = self.clock_ns()
        starts = [
            ts for ts in series.starts if ts <= now and (start is None or ts >= start) and (end is None or ts <= end)
        ]
        starts = starts[:limit] if start is not None else starts[-limit:]
        rows = []
        for ts in starts:
            o, h, lo, c, v = forming(series.rows[ts], (now - ts) / self.interval_ns)
            rows.append(
                [ts // _NS_PER_MS, _num(o), _num(h), _num(lo), _num(c), _num(v),
                 (ts + self.interval_ns) // _NS_PER_MS - 1, _num(v * c), 4, _num(v / 2), _num(v * c / 2), "0"]
            )  # fmt: skip
        return web.json_response(rows)

    # ----------------------------------------------------------------- websocket

    def _admit(self, conn: ServerConnection, request: Request) -> Response | None:
        """Refuse websocket handshakes while a ``drop`` fault says so."""
        if time.monotonic() < self._refuse_until:
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "service unavailable, try again later\n")
        return None

    async def _ws(self, conn: ServerConnection) -> None:
        self.connections += 1
        path = conn.request.path if conn.request is not None else "/"
        route, _, query = path.partition("?")
        if not (route == "/ws" or route.startswith("/ws/") or route == "/stream"):
            await conn.close(1008, "unknown path")
            return
        client = _Client(conn, route == "/stream", set())
        if client.combined and query.startswith("streams="):
            client.streams.update(s for s in query[len("streams=") :].split("/") if s)
            self.begin()
        self._clients.append(client)
        try:
            async for raw in conn:
                await self._request(client, raw)
        except ConnectionClosed:
            pass
        finally:
            self._clients.remove(client)

    async def _request(self, client: _Client, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            method, ident = message["method"], message.get("id")
        except (ValueError, TypeError, KeyError):
            await client.conn.send(json.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": None}))
            return
        params = [str(p) for p in message.get("params") or []]
        if method == "SUBSCRIBE":
            self.subscriptions.append(params)
            client.streams.update(params)
            result: Any = None
            self.begin()
        elif method == "UNSUBSCRIBE":
            client.streams.difference_update(params)
            result = None
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(client.streams)
        else:
            await client.conn.send(json.dumps({"error": {"code": 2, "msg": f"Invalid method {method}"}, "id": ident}))
            return
        await client.conn.send(json.dumps({"result": result, "id": ident}))

    async def _broadcast(self) -> None:
        """Send every scheduled kline and trade at its exchange time, and fire the scripted faults."""
        step = self.interval_ns // self.updates_per_bar
        point = None
        while True:
            now = self.clock_ns()
            if self._begun_mono is None or not self._clients:
                point = None  # a client connecting later gets the market as it is then, not a backlog
                await asyncio.sleep(0.005)
                continue
            if point is None:
                point = now - (now - self.t0) % step
            if point > self.t_end:
                await asyncio.sleep(0.02)
                continue
            if now < point:
                await asyncio.sleep(min(0.05, self.real_seconds(point - now)))
                continue
            if time.monotonic() < self._stall_until:
                point = now - (now - self.t0) % step + step  # what the stall swallowed is never sent
                await asyncio.sleep(0.005)
                continue
            await self._send_point(point)
            point += step

    async def _send_point(self, point: int) -> None:
        offset = point - self.t0
        k, j = divmod(offset // (self.interval_ns // self.updates_per_bar), self.updates_per_bar)
        start = self.t0 + k * self.interval_ns
        fault = self.faults.pop(k, None) if j == 0 else None
        if fault is not None and fault.kind in ("drop", "shutdown", "malformed", "stall", "skip"):
            await self._fire(fault.kind, k, fault.seconds)
            if fault.kind == "stall":
                return
        frames: list[tuple[str, str, dict[str, Any]]] = []  # (market id, stream kind, payload)
        for series in self.series.values():
            if j == 0 and start - self.interval_ns in series.rows:
                frames += self._candle(series, start - self.interval_ns, 1.0, point, k - 1)
            frames += self._candle(series, start, j / self.updates_per_bar, point, k)
        if fault is not None and fault.kind == "duplicate":
            self.fired.append(("duplicate", k))
            frames += [frame for frame in frames if frame[1] != "trade"]
        if fault is not None and fault.kind == "out_of_order":
            self.fired.append(("out_of_order", k))
            for series in self.series.values():
                for back, fraction in ((2, 1.0), (1, 0.5)):
                    start_back = start - back * self.interval_ns
                    frames += self._candle(series, start_back, fraction, point, k - back, trades=False)
        await self._send_frames(frames)

    def _candle(
        self, series: _Series, start: int, fraction: float, point: int, k: int, *, trades: bool = True
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """The kline payload of one candle at exchange time ``point`` and the trades made since the last one."""
        values = series.rows.get(start)
        if values is None or k in self._skipped:
            return []
        event_ms = point // _NS_PER_MS + self.skew_ms
        o, h, lo, c, v = forming(values, fraction)
        kline = {
            "e": "kline",
            "E": event_ms,
            "s": series.market_id,
            "k": {
                "t": start // _NS_PER_MS,
                "T": (start + self.interval_ns) // _NS_PER_MS - 1,
                "s": series.market_id,
                "i": self.interval,
                "f": 100,
                "L": 200,
                "o": _num(o),
                "c": _num(c),
                "h": _num(h),
                "l": _num(lo),
                "v": _num(v),
                "n": 100,
                "x": fraction >= 1.0,
                "q": _num(v * c),
                "V": _num(v / 2),
                "Q": _num(v * c / 2),
                "B": "0",
            },
        }
        frames = [(series.market_id, f"kline_{self.interval}", kline)]
        if trades:
            frames += self._trades(series, start, fraction, point)
        return frames

    def _trades(self, series: _Series, start: int, fraction: float, point: int) -> list[tuple[str, str, dict]]:
        """The bar's trades (open, high or low, low or high, close) made since the previous update."""
        o, h, lo, c, v = series.rows[start]
        path = [(0.1, o), (0.35, h), (0.6, lo), (0.85, c)] if c >= o else [(0.1, o), (0.35, lo), (0.6, h), (0.85, c)]
        previous = fraction - 1.0 / self.updates_per_bar
        out = []
        for n, (at, price) in enumerate(path):
            if previous < at <= fraction:
                ts_ms = (start + int(at * self.interval_ns)) // _NS_PER_MS
                trade = {
                    "e": "trade",
                    "E": point // _NS_PER_MS + self.skew_ms,
                    "s": series.market_id,
                    "t": start // _NS_PER_MS * 10 + n,
                    "p": _num(price),
                    "q": _num(v / 4),
                    "T": ts_ms,
                    "m": n % 2 == 0,
                    "M": True,
                }
                out.append((series.market_id, "trade", trade))
        return out

    async def _send_frames(self, frames: list[tuple[str, str, dict[str, Any]]]) -> None:
        for client in list(self._clients):
            for market_id, kind, payload in frames:
                stream = f"{market_id.lower()}@{kind}"
                if stream not in client.streams:
                    continue
                body = {"stream": stream, "data": payload} if client.combined else payload
                with contextlib.suppress(ConnectionClosed):
                    await client.conn.send(json.dumps(body))

    async def _fire(self, kind: str, k: int, seconds: float = 0.0) -> None:
        self.fired.append((kind, k))
        if kind == "drop":
            self._refuse_until = time.monotonic() + seconds
            for client in list(self._clients):
                client.conn.transport.abort()
        elif kind == "shutdown":
            event = json.dumps({"e": "serverShutdown", "E": self.clock_ns() // _NS_PER_MS + self.skew_ms})
            for client in list(self._clients):
                with contextlib.suppress(ConnectionClosed):
                    await client.conn.send(event)
                    await client.conn.close(1001, "server shutdown")
        elif kind == "malformed":
            for client in list(self._clients):
                with contextlib.suppress(ConnectionClosed):
                    await client.conn.send(MALFORMED)
        elif kind == "stall":
            self._stall_until = time.monotonic() + seconds
        elif kind == "skip":
            self._skipped.add(k)

    # ----------------------------------------------------------------- faults from the test thread

    def _call(self, kind: str, seconds: float = 0.0) -> None:
        if self._loop is None:
            raise RuntimeError("the server is not running")
        k = (self.clock_ns() - self.t0) // self.interval_ns
        asyncio.run_coroutine_threadsafe(self._fire(kind, k, seconds), self._loop).result(5.0)

    def drop(self, refuse_s: float = 0.0) -> None:
        """Abort every websocket connection now, without a close frame; refuse new ones for ``refuse_s``."""
        self._call("drop", refuse_s)

    def shutdown(self) -> None:
        """Send ``serverShutdown`` and close every websocket connection (1001)."""
        self._call("shutdown")

    def malformed(self) -> None:
        """Send a truncated JSON frame on every websocket connection."""
        self._call("malformed")

    def stall(self, seconds: float) -> None:
        """Send no market data for ``seconds`` of real time."""
        self._call("stall", seconds)

    def fail_rest(self, path: str, status: int, body: str, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` (e.g. ``/api/v3/klines``) with ``status`` and ``body``."""
        self._rest_failures.setdefault(path, []).extend([(status, body)] * times)
