"""A protocol-faithful fake of Alpaca's stock market-data websocket (``/v2/{iex|sip}``) on 127.0.0.1.

It speaks the real protocol (see docs MARKETS.md §2.2): every server message is an array; on connect
``[{"T":"success","msg":"connected"}]``; ``{"action":"auth","key":..,"secret":..}`` answers
``authenticated`` or error 402 (401 when subscribing first, 403 when authenticating twice, 404 when no
auth arrives in time, 409 for the SIP feed when ``sip_allowed`` is false, 400 for a frame it cannot
parse); ``subscribe``/``unsubscribe`` answer with the
*whole* current subscription set. It answers in msgpack (times as msgpack timestamps) when the client
sent ``Content-Type: application/msgpack``, as alpaca-py always does, and in JSON (RFC 3339 times)
otherwise.

The market: the minute bars of a DataFrame (columns ``symbol, ts, open, high, low, close, volume``; ``ts``
is the bar's start) are played on a simulated clock that starts with the first subscription and moves
one minute every ``minute_s`` wall seconds, over every minute from the first bar to the last, so minutes
without a bar stay silent. ``start_at=k`` starts the clock at minute k, as if the client connected
mid-session: earlier bars are only in the REST history. In the middle of each minute the trades of the
minute (``"T":"t"``, derived from the bar) and any due updated bars go out; just after the minute ends
its bars (``"T":"b"``, labelled by their start) go out in one batch to the clients subscribed to them.
With ``steady=True`` (a benchmark's steady rate) they go out instead one message each, evenly spread over
the next ``minute_s`` (they are closed bars either way), and ``bar_send_ns`` records the
``time.monotonic_ns()`` just before each one was handed to the socket.

Faults are scripted per minute index (``faults={3: "drop", 5: ["duplicate", "updated"]}``) and act on
the clients connected at that minute:

- ``drop``: abort the TCP connections right after the minute's bars (no close frame);
- ``stall``: stay connected but send those clients nothing more (a mute socket);
- ``malformed``: send a frame that is not msgpack/JSON before the minute's bars;
- ``bad_bar``: send the minute's bars once with an unreadable time (``"t": "not a time"``) before the real ones;
- ``duplicate``: send the minute's bars a second time;
- ``out_of_order``: hold the minute's bars back and send them after the next minute's;
- ``updated``: half a minute later send an updated bar ``"T":"u"`` (new close and volume) for each;
- ``halt``: send a trading status ``"T":"s"`` (halt) for every symbol before the bars;
- ``slow_client``: send error 407 ``slow client`` and close the connections.

It also answers ``GET /v2/stocks/bars`` (``rest_url``; key headers checked, ``1Min`` bars, ``start``/``end``
inclusive, paged with ``limit``/``page_token``, symbol by symbol) with the bars already published, so that
alpaca-py's ``StockHistoricalDataClient`` can fill gaps from it.

The server keeps no secret in what it records (``requests`` shows the secret as ``***``) and its
websocket logger never logs frame payloads. Run it with ``start()``/``stop()`` or as a context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgpack
import pandas as pd
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

NS_PER_MINUTE = 60_000_000_000
FAULTS = frozenset(
    {"drop", "stall", "malformed", "bad_bar", "duplicate", "out_of_order", "updated", "halt", "slow_client"}
)
CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
"""Channels a client may subscribe to; corrections and cancelErrors follow trades, as on the real server."""
ERRORS = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    408: "v2 not enabled",
    409: "insufficient subscription",
    500: "internal error",
}


_AUTH_HEADERS = {"apca-api-key-id", "apca-api-secret-key", "authorization"}


class _NoSecrets(logging.Filter):
    """Keep credentials out of the websocket debug log: frames by their size only, auth headers redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg in ("< %s", "> %s") and len(args) == 1 and hasattr(args[0], "opcode"):
            record.args = (f"{args[0].opcode.name} frame of {len(args[0].data)} bytes",)
        elif record.msg == "< %s: %s" and len(args) == 2 and str(args[0]).lower() in _AUTH_HEADERS:
            record.args = (args[0], "<redacted>")
        return True


_WIRE_LOG = logging.getLogger("tests.fakes.alpaca.wire")
_WIRE_LOG.addFilter(_NoSecrets())


@dataclass(eq=False)
class _Client:
    ws: ServerConnection
    id: int
    packed: bool
    path: str
    authenticated: bool = False
    muted: bool = False
    subs: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})

    def wants(self, channel: str, symbol: str) -> bool:
        subs = self.subs[channel]
        return symbol in subs or "*" in subs


@dataclass(frozen=True, slots=True)
class _Bar:
    symbol: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def message(self, kind: str = "b") -> dict[str, Any]:
        return {
            "T": kind,
            "S": self.symbol,
            "o": self.open,
            "h": self.high,
            "l": self.low,
            "c": self.close,
            "v": self.volume,
            "t": self.ts,
            "n": 3,
            "vw": round((self.high + self.low + self.close) / 3, 4),
        }


class FakeAlpacaServer:
    """A fake Alpaca market-data websocket server playing ``bars`` in a background thread."""

    def __init__(
        self,
        bars: pd.DataFrame,
        *,
        key_id: str = "fake-key-id",
        secret_key: str = "fake-secret-key",
        minute_s: float = 0.02,
        faults: Mapping[int, str | Sequence[str]] | None = None,
        trades_per_bar: int = 2,
        auth_timeout_s: float = 10.0,
        sip_allowed: bool = True,
        start_at: int = 0,
        steady: bool = False,
    ) -> None:
        self._key_id, self._secret_key = key_id, secret_key
        self.minute_s = minute_s
        self.steady = steady
        self.trades_per_bar = trades_per_bar
        self.auth_timeout_s = auth_timeout_s
        self.sip_allowed = sip_allowed
        self._faults: dict[int, tuple[str, ...]] = {}
        for step, names in (faults or {}).items():
            names = (names,) if isinstance(names, str) else tuple(names)
            unknown = set(names) - FAULTS
            if unknown:
                raise ValueError(f"unknown faults {sorted(unknown)}; choose from {sorted(FAULTS)}")
            self._faults[step] = names
        self._bars = _read_bars(bars)
        self._by_minute: dict[int, list[_Bar]] = {}
        for bar in self._bars:
            self._by_minute.setdefault(bar.ts - bar.ts % NS_PER_MINUTE, []).append(bar)
        first, last = min(self._by_minute), max(self._by_minute)
        self.minutes = list(range(first, last + NS_PER_MINUTE, NS_PER_MINUTE))
        """Every minute from the first bar's to the last bar's, with or without bars."""
        if not 0 <= start_at < len(self.minutes):
            raise ValueError(f"start_at must be a minute index in [0, {len(self.minutes)})")
        self._start_at = start_at
        self._now_ns = self.minutes[start_at]
        self._clients: dict[int, _Client] = {}
        self._ids = itertools.count(1)
        self.requests: list[tuple[int, dict[str, Any]]] = []
        """Every message the clients sent, as (connection id, message) with the secret replaced by ``***``."""
        self.rest_requests: list[dict[str, str]] = []
        """The path and query of each REST request (headers, which hold the credentials, are not kept)."""
        self.paths: list[str] = []
        """The request path of each connection, in order."""
        self.content_types: list[str | None] = []
        """The Content-Type header of each connection, in order."""
        self.sent_bars = 0
        self.bar_send_ns: list[int] = []
        """With ``steady``: the monotonic ns just before each bar message was sent, in order."""
        self.finished = threading.Event()
        """Set when the last minute has been played."""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._go: asyncio.Event | None = None
        self._ready = threading.Event()
        self._port = 0
        self._error: BaseException | None = None

    # --- control (any thread) ---------------------------------------------------------------------------

    def start(self) -> FakeAlpacaServer:
        """Start serving on a free port of 127.0.0.1; return self."""
        self._thread = threading.Thread(target=self._run, name="fake-alpaca", daemon=True)
        self._thread.start()
        if not self._ready.wait(5.0):
            raise RuntimeError("the fake Alpaca server did not start within 5 s")
        if self._error is not None:
            raise RuntimeError(f"the fake Alpaca server failed to start: {self._error}")
        return self

    def stop(self) -> None:
        """Close every connection and stop the server (waits at most a few seconds)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(5.0)

    def __enter__(self) -> FakeAlpacaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The IEX stream URL (``ws://127.0.0.1:PORT/v2/iex``)."""
        return self.url_for("iex")

    def url_for(self, feed: str) -> str:
        """The stream URL of ``feed`` (``iex``, ``sip`` or ``test``)."""
        return f"ws://127.0.0.1:{self._port}/v2/{feed}"

    def now_ns(self) -> int:
        """The simulated time: the start of the minute in progress (every earlier bar has been published)."""
        return self._now_ns

    def historical_bars(
        self, symbol: str, start_ns: int, end_ns: int
    ) -> list[tuple[int, float, float, float, float, float]]:
        """Published bars of ``symbol`` starting in [start_ns, end_ns), as the REST bars endpoint would give."""
        end_ns = min(end_ns, self._now_ns)
        return [
            (b.ts, b.open, b.high, b.low, b.close, b.volume)
            for b in self._bars
            if b.symbol == symbol and start_ns <= b.ts < end_ns
        ]

    @property
    def rest_url(self) -> str:
        """The base URL of the REST bars endpoint (``http://127.0.0.1:PORT``), for ``url_override``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        return len(self.paths)

    def subscribed(self, connection: int) -> list[str]:
        """Symbols subscribed to bars in each ``subscribe`` request of ``connection``."""
        return [
            s
            for cid, msg in self.requests
            if cid == connection and msg.get("action") == "subscribe"
            for s in msg.get("bars", [])
        ]

    # --- the server thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start() or left for the test to see as a missing stream
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop, self._go = asyncio.Event(), asyncio.Event()
        async with serve(
            self._serve, "127.0.0.1", 0, process_request=self._rest, logger=_WIRE_LOG, close_timeout=1
        ) as server:
            self._port = next(iter(server.sockets)).getsockname()[1]
            market = asyncio.create_task(self._market())
            self._ready.set()
            await self._stop.wait()
            market.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await market
            for client in list(self._clients.values()):
                client.ws.transport.abort()

    def _rest(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer a plain HTTP GET of ``/v2/stocks/bars`` like Alpaca's REST API; let websockets through."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        url = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.rest_requests.append({"path": url.path, **query})
        if url.path != "/v2/stocks/bars":
            return _json(connection, 404, {"message": "not found"})
        if (request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")) != (
            self._key_id,
            self._secret_key,
        ):
            return _json(connection, 401, {"message": "unauthorized."})
        if query.get("timeframe") != "1Min":
            return _json(connection, 422, {"message": "this fake serves 1Min bars only"})
        symbols = set(query.get("symbols", "").split(","))
        start = pd.Timestamp(query["start"]).value if "start" in query else 0
        end = pd.Timestamp(query["end"]).value if "end" in query else self._now_ns  # inclusive, as on Alpaca
        rows = [b for b in self._bars if b.symbol in symbols and start <= b.ts <= end and b.ts < self._now_ns]
        rows.sort(key=lambda b: (b.symbol, b.ts))  # Alpaca pages symbol by symbol
        offset, limit = int(query.get("page_token") or 0), int(query.get("limit") or 1000)
        bars: dict[str, list[dict[str, Any]]] = {}
        for bar in rows[offset : offset + limit]:
            message = bar.message()
            bars.setdefault(bar.symbol, []).append(
                {
                    k: (_rfc3339(v) if k == "t" and isinstance(v, int) else v)
                    for k, v in message.items()
                    if k not in ("T", "S")
                }
            )
        token = str(offset + limit) if offset + limit < len(rows) else None
        return _json(connection, 200, {"bars": bars, "next_page_token": token})

    async def _serve(self, ws: ServerConnection) -> None:
        request = ws.request
        content_type = request.headers.get("Content-Type") if request is not None else None
        path = request.path if request is not None else ""
        self.paths.append(path)
        self.content_types.append(content_type)
        client = _Client(ws, next(self._ids), packed=content_type == "application/msgpack", path=path)
        self._clients[client.id] = client
        watchdog = asyncio.create_task(self._auth_timeout(client))
        try:
            await self._send(client, [{"T": "success", "msg": "connected"}])
            async for raw in ws:
                await self._on_message(client, raw)
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()
            self._clients.pop(client.id, None)

    async def _auth_timeout(self, client: _Client) -> None:
        await asyncio.sleep(self.auth_timeout_s)
        if not client.authenticated:
            await self._error_to(client, 404)
            await client.ws.close()

    async def _on_message(self, client: _Client, raw: str | bytes) -> None:
        try:
            msg = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
        except (ValueError, msgpack.UnpackException):
            await self._error_to(client, 400)
            return
        if not isinstance(msg, dict):
            await self._error_to(client, 400)
            return
        self.requests.append((client.id, {k: ("***" if k == "secret" else v) for k, v in msg.items()}))
        action = msg.get("action")
        if action == "auth":
            if client.authenticated:
                await self._error_to(client, 403)
            elif msg.get("key") != self._key_id or msg.get("secret") != self._secret_key:
                await self._error_to(client, 402)
            elif client.path.endswith("/sip") and not self.sip_allowed:
                await self._error_to(client, 409)
            else:
                client.authenticated = True
                await self._send(client, [{"T": "success", "msg": "authenticated"}])
        elif action in ("subscribe", "unsubscribe"):
            if not client.authenticated:
                await self._error_to(client, 401)
                return
            for channel in CHANNELS:
                symbols = msg.get(channel) or []
                if action == "subscribe":
                    client.subs[channel].update(symbols)
                else:
                    client.subs[channel].difference_update(symbols)
            reply: dict[str, Any] = {"T": "subscription"}
            reply.update({c: sorted(client.subs[c]) for c in CHANNELS})
            reply["corrections"] = reply["cancelErrors"] = reply["trades"]
            await self._send(client, [reply])
            if any(client.subs.values()):
                assert self._go is not None
                self._go.set()
        else:
            await self._error_to(client, 400)

    # --- the market --------------------------------------------------------------------------------------

    async def _market(self) -> None:
        assert self._go is not None
        await self._go.wait()
        loop = asyncio.get_running_loop()
        start = loop.time()
        held: list[_Bar] = []
        updates: list[_Bar] = []
        for step, minute in enumerate(self.minutes):
            if step < self._start_at:
                continue
            at = step - self._start_at
            await asyncio.sleep(max(0.0, start + (at + 0.5) * self.minute_s - loop.time()))
            bars = self._by_minute.get(minute, [])
            await self._broadcast("trades", self._trades(bars))
            await self._broadcast("updatedBars", [b.message("u") for b in updates])
            updates = []
            await asyncio.sleep(max(0.0, start + (at + 1) * self.minute_s - loop.time()))
            faults = self._faults.get(step, ())
            self._now_ns = minute + NS_PER_MINUTE  # published before anyone can subscribe in between
            targets = [c for c in self._clients.values() if c.authenticated and not c.muted]
            if "malformed" in faults:
                for client in targets:
                    await self._raw(client, b"\xc1\xc1 not msgpack" if client.packed else "[{not json")
            if "bad_bar" in faults:
                await self._broadcast("bars", [{**b.message(), "t": "not a time"} for b in bars], targets)
            if "halt" in faults:
                halts = [_halt(s, minute + NS_PER_MINUTE) for s in sorted({b.symbol for b in self._bars})]
                await self._broadcast("statuses", halts, targets)
            if "out_of_order" in faults:
                held = held + bars
            elif self.steady:
                for k, bar in enumerate(bars):
                    await asyncio.sleep(max(0.0, start + (at + 1 + k / len(bars)) * self.minute_s - loop.time()))
                    self.bar_send_ns.append(time.monotonic_ns())
                    await self._broadcast("bars", [bar.message()], targets)
            else:
                await self._broadcast("bars", [b.message() for b in bars], targets)
                if held:
                    await self._broadcast("bars", [b.message() for b in held], targets)
                    held = []
            if "duplicate" in faults:
                await self._broadcast("bars", [b.message() for b in bars], targets)
            if "updated" in faults:
                updates = [_updated(b) for b in bars]
            self.sent_bars += len(bars)
            if "stall" in faults:
                for client in targets:
                    client.muted = True
            if "drop" in faults:
                for client in targets:
                    client.ws.transport.abort()
            if "slow_client" in faults:
                for client in targets:
                    await self._error_to(client, 407)
                    await client.ws.close(1008, "slow client")
        self.finished.set()

    def _trades(self, bars: Iterable[_Bar]) -> list[dict[str, Any]]:
        trades = []
        n = self.trades_per_bar
        for bar in bars:
            prices = [bar.open, bar.high, bar.low, bar.close]
            for k in range(n):
                trades.append(
                    {
                        "T": "t",
                        "S": bar.symbol,
                        "i": bar.ts // 1_000_000 + k,
                        "x": "V",
                        "p": prices[min(k * 3 // max(n - 1, 1), 3)] if n > 1 else bar.close,
                        "s": max(1, int(bar.volume) // n),
                        "t": bar.ts + (k + 1) * NS_PER_MINUTE // (n + 1),
                        "c": ["@"],
                        "z": "C",
                    }
                )
        return trades

    async def _broadcast(
        self, channel: str, messages: list[dict[str, Any]], targets: Iterable[_Client] | None = None
    ) -> None:
        if not messages:
            return
        for client in list(self._clients.values()) if targets is None else targets:
            if client.authenticated and not client.muted:
                mine = [m for m in messages if client.wants(channel, m["S"])]
                if mine:
                    await self._send(client, mine)

    async def _error_to(self, client: _Client, code: int) -> None:
        await self._send(client, [{"T": "error", "code": code, "msg": ERRORS[code]}])

    async def _send(self, client: _Client, messages: list[dict[str, Any]]) -> None:
        if client.packed:
            data: str | bytes = msgpack.packb([_packable(m) for m in messages])
        else:
            data = json.dumps(
                [{k: (_rfc3339(v) if k == "t" and isinstance(v, int) else v) for k, v in m.items()} for m in messages]
            )
        await self._raw(client, data)

    async def _raw(self, client: _Client, data: str | bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await client.ws.send(data)


def _read_bars(frame: pd.DataFrame) -> list[_Bar]:
    missing = {"symbol", "ts", "open", "high", "low", "close", "volume"} - set(frame.columns)
    if missing:
        raise ValueError(f"the bars frame lacks columns {sorted(missing)}")
    if frame.empty:
        raise ValueError("the bars frame is empty")
    stamps = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True)).as_unit("ns").asi8.tolist()
    rows = zip(
        frame["symbol"].astype(str),
        stamps,
        *(frame[c].astype(float) for c in ("open", "high", "low", "close", "volume")),
        strict=True,
    )
    return [_Bar(s, int(t), o, h, lo, c, v) for s, t, o, h, lo, c, v in rows]


def _json(connection: ServerConnection, status: int, body: dict[str, Any]) -> Response:
    response = connection.respond(status, json.dumps(body))
    response.headers["Content-Type"] = "application/json"
    return response


def _packable(message: dict[str, Any]) -> dict[str, Any]:
    if isinstance(message.get("t"), int):
        return {**message, "t": msgpack.Timestamp.from_unix_nano(message["t"])}
    return message


def _rfc3339(ts: int) -> str:
    seconds, nanos = divmod(ts, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos:09d}Z" if nanos else f"{text}Z"


def _halt(symbol: str, ts: int) -> dict[str, Any]:
    return {
        "T": "s",
        "S": symbol,
        "sc": "H",
        "sm": "Trading Halt",
        "rc": "T12",
        "rm": "Additional Information Requested",
        "t": ts,
        "z": "C",
    }


def _updated(bar: _Bar) -> _Bar:
    close = round((bar.high + bar.low) / 2, 4)
    return _Bar(bar.symbol, bar.ts, bar.open, bar.high, bar.low, close, bar.volume + 100)
