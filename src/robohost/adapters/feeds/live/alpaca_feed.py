"""Live one-minute stock bars from Alpaca's market-data websocket (IEX or SIP) as a ``MarketFeed``.

The connection is alpaca-py's own ``StockDataStream`` (msgpack, auth, subscribe, its reconnect loop),
run on an asyncio loop in a background thread; ``url_override`` points it elsewhere (a test server).
A thin subclass only tunes what the library leaves open: the reconnect delay (exponential backoff with
equal jitter, ``backoff_s``), and hooks that report connections, subscriptions and error frames, and
turn a refused login into an error instead of retrying it forever.

Rules the feed keeps, in the thread that iterates ``events`` (``on_status`` is called there too):

- **Closed bars only.** Alpaca sends a minute bar (``"T":"b"``, labelled by its start) right after the
  minute ends and never changes it on that channel; each becomes one ``BAR`` event.
- **A bar is never changed after the robot saw it.** Updated bars (``"T":"u"``, a late recomputation)
  are never applied or emitted: each is counted and reported as ``updated_bar_ignored``. A replay of the
  recorded ``b`` bars thus gives the robot exactly what it saw live.
- **Time order per symbol.** A bar not later than the symbol's last bar is dropped and reported
  (``duplicate_bar_dropped`` / ``out_of_order_bar_dropped``).
- **Reconnect and fill the gap.** After a drop alpaca-py reconnects (after ``backoff_s``), logs in and
  resubscribes. Once the server confirms the subscription, the feed asks ``historical(symbol, start_ns,
  end_ns)`` for each symbol's bars starting in [its last bar + 1 ns, the current minute) and emits the
  missing ones in time order before any newer live bar (``gap_filled``); live copies of them are dropped
  quietly. Without ``historical`` the missed minutes stay missing. ``alpaca_history`` builds one over
  Alpaca's REST bars endpoint.
- **Resume.** ``resume_after_ts`` (before ``events``) names the last bar the engine processed; the first
  subscription then fills each symbol's bars since then the same way. Without it a symbol starts with
  the first bar that arrives live.
- **Credentials stay secret.** The key and secret appear in no log line, exception or repr; frame
  payloads are never logged (the websocket debug log shows only their size).
- **Latency probe (benchmarks).** With ``probe`` set before ``events``, the connection notes the
  ``time.monotonic_ns()`` at which the event loop read each message's bytes from the socket (in
  ``data_received``, before the websocket frame is parsed; a message gets the time of the read that
  completed it) and each live bar goes to the consumer with the time of its message:
  ``probe.arrived(seq, ns)`` just before the bar is yielded. Alpaca's bars are final on arrival, so this
  is the moment the bar became known. Gap-filled bars (from REST) have no arrival. Without a probe nothing
  is stamped.

``events`` can be iterated once per feed; ``close`` (any thread) ends it; ``ready`` (from the thread
iterating ``events``) says whether the next bar is at hand, so that a live run can group its commits. A
refused login (``auth failed``) or a plan without the SIP feed (``insufficient subscription``) raises
``ConfigError`` from ``events``; other failures are retried. Statuses reported through ``on_status(kind, details)``:
``connected``, ``reconnected``, ``reconnecting``, ``subscribed``, ``auth_error``, ``stream_error`` (an
error frame such as 407 slow client), ``trading_status`` (halts), ``updated_bar_ignored``,
``duplicate_bar_dropped``, ``out_of_order_bar_dropped``, ``malformed_message``, ``gap_filled``,
``gap_fill_failed``. ``stats`` counts them and the ``bars`` emitted.

This module must not import robohost.config, robohost.cli, robohost.services or robohost.adapters.db.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import queue
import re
import threading
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import msgpack

from robohost.domain.market import BAR
from robohost.domain.values import NS_PER_MINUTE, NS_PER_SECOND
from robohost.engine.history import History
from robohost.engine.ports import LatencyProbe, MarketEvent
from robohost.errors import ConfigError, DataError, StateError

with warnings.catch_warnings():  # alpaca-py 0.44 still imports websockets.legacy, deprecated since websockets 14
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    from alpaca.common.utils import reconnect_delay
    from alpaca.data.enums import DataFeed
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.live.stock import StockDataStream
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame
    from websockets.legacy.client import WebSocketClientProtocol

log = logging.getLogger(__name__)

FEEDS = ("iex", "sip")
"""Alpaca stock feeds: IEX (free) and SIP (every US exchange; needs a paid data plan)."""
StatusHook = Callable[[str, Mapping[str, Any]], None]
"""``on_status(kind, details)``: called in the thread that iterates ``events``."""
HistoricalBars = Callable[[str, int, int], Iterable[Sequence[float]]]
"""``historical(symbol, start_ns, end_ns)``: closed bars starting in [start_ns, end_ns) as (ts, o, h, l, c, v)."""

_Row = tuple[int, int, float, float, float, float, float]
"""A bar for the consumer: (symbol index, start ns, open, high, low, close, volume)."""
_POLL_S = 0.05
_JOIN_S = 5.0
_FATAL = {
    "auth failed": "Alpaca refused the API key id and secret key (auth failed); check the robot's Alpaca "
    "credentials in secrets.toml or the environment",
    "insufficient subscription": "Alpaca refused the stream (insufficient subscription): the SIP feed needs "
    'a paid market-data plan; use feed = "iex"',
}
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATUS_LEVELS = {"connected": logging.INFO, "reconnected": logging.INFO, "subscribed": logging.INFO}


class _Credentials:
    """The API key pair, kept out of every repr."""

    __slots__ = ("key_id", "secret_key")

    def __init__(self, key_id: str, secret_key: str) -> None:
        self.key_id = key_id
        self.secret_key = secret_key

    def __repr__(self) -> str:
        return "_Credentials(<redacted>)"


class _NoPayloads(logging.Filter):
    """Replace the websocket library's frame dumps by their size: the auth frame holds the credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        frame = record.args[0] if isinstance(record.args, tuple) and len(record.args) == 1 else None
        if record.msg in ("< %s", "> %s") and hasattr(frame, "opcode") and hasattr(frame, "data"):
            record.args = (f"{frame.opcode.name} frame of {len(frame.data)} bytes (payload not logged)",)
        return True


_WIRE_LOG = logging.getLogger(f"{__name__}.wire")
_WIRE_LOG.addFilter(_NoPayloads())


class _ArrivalStamps(WebSocketClientProtocol):
    """alpaca-py's websocket connection, noting when each message was read from the socket (with a probe).

    ``data_received`` is the event loop's callback right after it read bytes from the socket; a message
    parsed from them gets that time (the read that completed it; if the loop read again before the frame
    was parsed, the later read: the wait is then understated, never overstated). ``recv`` leaves the time
    of the message it returns in ``arrival_ns``; alpaca-py dispatches a message's bars before it calls
    ``recv`` again.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_ns = 0
        self._stamps: deque[int] = deque()
        self.arrival_ns = 0

    def data_received(self, data: bytes) -> None:
        self._read_ns = time.monotonic_ns()
        super().data_received(data)

    async def read_message(self) -> Any:
        message = await super().read_message()
        if message is not None:
            self._stamps.append(self._read_ns)
        return message

    async def recv(self) -> Any:
        message = await super().recv()
        self.arrival_ns = self._stamps.popleft()
        return message


class _Stream(StockDataStream):
    """alpaca-py's stock stream, reporting to a queue and giving up on a refused login."""

    def __init__(
        self,
        credentials: _Credentials,
        feed: str,
        url: str | None,
        out: queue.Queue[tuple[Any, ...]],
        backoff_s: tuple[float, float],
        stall_timeout_s: float | None,
        stamped: bool = False,
    ) -> None:
        params: dict[str, Any] = {"create_protocol": _ArrivalStamps} if stamped else {}
        super().__init__(
            credentials.key_id,
            credentials.secret_key,
            raw_data=True,
            feed=DataFeed(feed),
            url_override=url,
            websocket_params={
                "ping_interval": 10,
                "ping_timeout": 180,
                "max_queue": 1024,
                "close_timeout": 1,
                "logger": _WIRE_LOG,
                **params,
            },
            data_timeout=stall_timeout_s,
        )
        self._out = out
        self._backoff_s = backoff_s
        self._logins = 0
        self._refused = asyncio.Event()
        self.fatal: str | None = None

    def __repr__(self) -> str:
        return f"_Stream({self._endpoint!r})"

    def _reconnect_delay(self, retries: int) -> float:
        delay = reconnect_delay(retries, *self._backoff_s)
        self._out.put(("status", "reconnecting", {"attempt": retries, "delay_s": round(delay, 3)}))
        return delay

    async def _auth(self) -> None:
        try:
            await super()._auth()
        except ValueError as exc:
            reason = str(exc)
            self._out.put(("status", "auth_error", {"reason": reason}))
            if reason in _FATAL:
                self.fatal = reason
                self._refused.set()
            raise

    async def _start_ws(self) -> None:
        await super()._start_ws()
        self._logins += 1
        self._out.put(("status", "connected" if self._logins == 1 else "reconnected", {"connection": self._logins}))

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("T")
        if kind == "subscription":
            self._out.put(("subscribed", self._logins))
        elif kind == "error":
            self._out.put(("status", "stream_error", {"code": msg.get("code"), "msg": msg.get("msg")}))
        await super()._dispatch(msg)

    async def on_bar(self, msg: Any) -> None:
        self._out.put(("bar", msg))

    async def on_stamped_bar(self, msg: Any) -> None:
        self._out.put(("bar", msg, self._ws.arrival_ns))  # type: ignore[union-attr]

    async def on_updated_bar(self, msg: Any) -> None:
        self._out.put(("updated", msg))

    async def on_status(self, msg: Any) -> None:
        self._out.put(("trading_status", msg))

    async def serve(self, stop: Callable[[], bool]) -> None:
        """Run alpaca-py's connect/reconnect loop until ``stop()`` is true or the login is refused."""
        runner = asyncio.ensure_future(self._run_forever())
        refused = asyncio.ensure_future(self._refused.wait())
        try:
            while not (runner.done() or refused.done() or stop()):
                await asyncio.wait({runner, refused}, timeout=_POLL_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await self.stop_ws()
            refused.cancel()
            runner.cancel()
            await asyncio.wait({runner}, timeout=2.0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.close(), 2.0)
        error = runner.exception() if runner.done() and not runner.cancelled() else None
        if error is not None:
            raise error


class _Session:
    """The state of ``events``: the last bar of each symbol, what the gap fill emitted, the session's start."""

    def __init__(self, last_ts: list[int]) -> None:
        self.last_ts = last_ts
        self.filled: list[set[int]] = [set() for _ in last_ts]
        self.start_ns: int | None = None


class AlpacaFeed:
    """Closed one-minute bars of ``symbols`` streamed live from Alpaca (see the module docstring)."""

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        key_id: str,
        secret_key: str,
        feed: str = "iex",
        url_override: str | None = None,
        on_status: StatusHook | None = None,
        max_bars: int | None = None,
        historical: HistoricalBars | None = None,
        clock: Callable[[], int] = time.time_ns,
        backoff_s: tuple[float, float] = (1.0, 30.0),
        stall_timeout_s: float | None = None,
    ) -> None:
        """Configure the feed; nothing connects before ``events`` is iterated.

        ``feed`` is ``"iex"`` or ``"sip"``; ``url_override`` replaces the whole stream URL; ``max_bars``
        ends ``events`` after that many bars; ``historical`` fills gaps after a reconnect; ``clock`` gives
        the time (ns since the epoch, UTC) that bounds the gap fill; ``backoff_s`` is the (first, longest)
        reconnect delay; ``stall_timeout_s`` reconnects a socket silent that long (None: never, as a quiet
        market is legitimately silent). Raises ``ConfigError`` for a bad symbol list, feed or missing key.
        """
        names = [str(s).strip() for s in symbols]
        if not names or not all(names):
            raise ConfigError("the Alpaca feed needs at least one symbol, and no empty symbol")
        if len(set(names)) != len(names):
            raise ConfigError(f"the Alpaca feed lists a symbol twice: {', '.join(names)}")
        if feed not in FEEDS:
            raise ConfigError(f"unknown Alpaca feed {feed!r}; use 'iex' or 'sip'")
        if not key_id or not secret_key:
            raise ConfigError("the Alpaca feed needs an API key id and secret key (secrets.toml or the environment)")
        if max_bars is not None and max_bars < 0:
            raise ValueError(f"max_bars must be >= 0 or None, not {max_bars}")
        self._symbols = tuple(names)
        self._index = {s: i for i, s in enumerate(names)}
        self._credentials = _Credentials(key_id, secret_key)
        self._feed = feed
        self._url = url_override
        self.on_status = on_status  # the run service sets it once the run exists
        self.probe: LatencyProbe | None = None  # benchmarks: set before events() to stamp each bar's arrival
        self._max_bars = max_bars
        self._historical = historical
        self._clock = clock
        self._backoff_s = backoff_s
        self._stall_timeout_s = stall_timeout_s
        self._kinds = MappingProxyType({s: frozenset({BAR}) for s in names})
        self._intervals = MappingProxyType(dict.fromkeys(names, NS_PER_MINUTE))
        self._signature = hashlib.sha256(repr(("alpaca", feed, self._symbols)).encode()).hexdigest()
        self._stats: Counter[str] = Counter()
        self._resume = [-1] * len(names)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._used = False
        # Touched only by the thread iterating events(), once it started:
        self._inbox: queue.Queue[tuple[Any, ...]] | None = None  # what the stream thread sends
        self._session: _Session | None = None
        self._at_hand: deque[_Row] = deque()  # bars taken from the inbox, not yet yielded
        self._stamped = False  # a probe was set: each bar at hand has its arrival in _arrivals (0: from REST)
        self._arrivals: deque[int] = deque()

    def __repr__(self) -> str:
        return f"AlpacaFeed(feed={self._feed!r}, symbols={list(self._symbols)})"

    @property
    def symbols(self) -> Sequence[str]:
        """Symbols, indexed by the symbol index of each event."""
        return self._symbols

    @property
    def kinds(self) -> Mapping[str, frozenset[int]]:
        """Every symbol carries bars only."""
        return self._kinds

    @property
    def intervals_ns(self) -> Mapping[str, int]:
        """One minute for every symbol."""
        return self._intervals

    @property
    def signature(self) -> str:
        """sha256 (hex) of ("alpaca", feed, symbols): a resumed run must stream the same data."""
        return self._signature

    @property
    def feed(self) -> str:
        """The Alpaca feed streamed: ``iex`` or ``sip``."""
        return self._feed

    @property
    def stats(self) -> Mapping[str, int]:
        """Counts: ``bars`` emitted (live and gap-filled) and every status reported, by kind."""
        return MappingProxyType(self._stats)

    def event_columns(self) -> History | None:
        """None: a live feed holds no columns; the engine keeps the history itself."""
        return None

    def resume_after_ts(self, ts_ns: int | Mapping[str, int]) -> None:
        """Start after the bar starting at ``ts_ns`` (every symbol, or a map symbol -> ts; negative: none).

        Call before ``events``: once subscribed, the feed first emits each symbol's bars since then, from
        ``historical`` (without it they stay missing, reported as ``gap_fill_failed``), and drops live bars
        not later than ``ts_ns``.
        """
        with self._lock:
            if self._used:
                raise StateError("resume_after_ts must be called before events()")
            items = ts_ns.items() if isinstance(ts_ns, Mapping) else ((s, ts_ns) for s in self._symbols)
            for symbol, ts in items:
                if symbol not in self._index:
                    raise ValueError(f"{symbol!r} is not one of the feed's symbols {list(self._symbols)}")
                self._resume[self._index[symbol]] = max(-1, int(ts))

    def close(self) -> None:
        """End ``events`` (within a fraction of a second) and disconnect; the feed cannot stream again."""
        self._closed.set()

    def events(self, start_seq: int = 0) -> Iterator[MarketEvent]:
        """Connect, subscribe and yield closed bars numbered from ``start_seq`` until ``close`` or ``max_bars``.

        Blocks between bars. Raises ``ConfigError`` when Alpaca refuses the credentials or the feed, and
        ``DataError`` when the stream ends on its own.
        """
        if start_seq < 0:
            raise ValueError(f"start_seq must be >= 0, not {start_seq}")
        return self._stream(start_seq)

    def _stream(self, seq: int) -> Iterator[MarketEvent]:
        with self._lock:
            if self._used:
                raise StateError("this Alpaca feed has streamed already; create a new one")
            self._used = True
        out: queue.Queue[tuple[Any, ...]] = queue.Queue()
        stop = threading.Event()
        probe = self.probe
        self._stamped = probe is not None
        stream = _Stream(
            self._credentials, self._feed, self._url, out, self._backoff_s, self._stall_timeout_s, self._stamped
        )
        stream.subscribe_bars(stream.on_bar if probe is None else stream.on_stamped_bar, *self._symbols)
        stream.subscribe_updated_bars(stream.on_updated_bar, *self._symbols)
        stream.subscribe_trading_statuses(stream.on_status, *self._symbols)
        thread = threading.Thread(
            target=self._run, args=(stream, out, stop), name=f"alpaca-{self._feed}-feed", daemon=True
        )
        self._session = _Session(list(self._resume))
        self._inbox = out
        at_hand, arrivals = self._at_hand, self._arrivals
        emitted = 0
        try:
            if self._max_bars == 0 or self._closed.is_set():
                return
            thread.start()
            while not self._closed.is_set():
                if not at_hand:
                    self._take(_POLL_S)
                    continue
                idx, ts, o, h, lo, c, v = at_hand.popleft()
                emitted += 1
                self._stats["bars"] += 1
                if probe is not None:
                    arrival = arrivals.popleft()
                    if arrival:
                        probe.arrived(seq, arrival)
                yield seq, BAR, idx, ts, o, h, lo, c, v
                seq += 1
                if emitted == self._max_bars:
                    return
        finally:
            stop.set()
            if thread.is_alive():
                thread.join(_JOIN_S)
                if thread.is_alive():
                    log.warning("the Alpaca stream thread did not stop within %.0f s", _JOIN_S)

    def ready(self, wait_s: float = 0.0) -> bool:
        """Whether the next bar is at hand (``events`` would yield it without waiting), waiting up to ``wait_s``
        for it; items queued before it are handled now. Call from the thread iterating ``events``; raises
        what ``events`` would raise."""
        deadline = time.monotonic() + wait_s
        while not self._at_hand and self._take(deadline - time.monotonic()):
            pass
        return bool(self._at_hand)

    def _take(self, wait_s: float) -> bool:
        """Handle the next item from the stream thread, waiting up to ``wait_s`` for it (not at all if <= 0);
        its bars go to ``_at_hand``. Return whether an item came."""
        inbox, session = self._inbox, self._session
        if inbox is None or session is None:
            return False
        try:
            item = inbox.get(timeout=wait_s) if wait_s > 0 else inbox.get_nowait()
        except queue.Empty:
            return False
        rows = self._handle(item, session)
        if rows:
            self._at_hand.extend(rows)
            if self._stamped:
                self._arrivals.extend([item[2] if item[0] == "bar" else 0] * len(rows))
        return True

    def _run(self, stream: _Stream, out: queue.Queue[tuple[Any, ...]], stop: threading.Event) -> None:
        """The stream thread: run alpaca-py's loop, then tell the consumer why it ended."""
        try:
            asyncio.run(stream.serve(lambda: stop.is_set() or self._closed.is_set()))
        except Exception as exc:  # reported to the consumer, which raises it as a DataError
            out.put(("ended", self._describe(exc)))
            return
        if stream.fatal is not None:
            out.put(("fatal", stream.fatal))
        elif not (stop.is_set() or self._closed.is_set()):
            out.put(("ended", "the stream stopped on its own"))

    def _handle(self, item: tuple[Any, ...], session: _Session) -> list[_Row]:
        """Act on one item from the stream thread; return the bars to emit, in order."""
        tag = item[0]
        if tag == "bar":
            bar = self._parse_bar(item[1])
            return [bar] if bar is not None and self._in_order(bar[0], bar[1], session) else []
        if tag == "updated":
            self._updated(item[1], session)
        elif tag == "trading_status":
            msg = item[1]
            self._status(
                "trading_status",
                symbol=msg.get("S"),
                code=msg.get("sc"),
                message=msg.get("sm"),
                reason_code=msg.get("rc"),
                reason=msg.get("rm"),
            )
        elif tag == "status":
            self._status(item[1], **item[2])
        elif tag == "subscribed":
            self._status("subscribed", connection=item[1])
            first = session.start_ns is None
            if first:
                session.start_ns = self._clock() // NS_PER_MINUTE * NS_PER_MINUTE
            if not first or max(self._resume) >= 0:
                return self._fill_gap(session)
        elif tag == "fatal":
            raise ConfigError(_FATAL[item[1]])
        elif tag == "ended":
            raise DataError(f"the Alpaca market-data stream ended: {item[1]}")
        return []

    def _parse_bar(self, msg: Mapping[str, Any]) -> _Row | None:
        try:
            idx = self._index[msg["S"]]
            ts = _ts_ns(msg["t"])
            return idx, ts, float(msg["o"]), float(msg["h"]), float(msg["l"]), float(msg["c"]), float(msg["v"])
        except (KeyError, TypeError, ValueError) as exc:
            self._status("malformed_message", type=msg.get("T"), symbol=msg.get("S"), error=type(exc).__name__)
            return None

    def _in_order(self, idx: int, ts: int, session: _Session) -> bool:
        last = session.last_ts[idx]
        if ts > last:
            session.last_ts[idx] = ts
            return True
        if ts in session.filled[idx]:
            log.debug("live copy of a gap-filled bar dropped: %s %d", self._symbols[idx], ts)
            return False
        kind = "duplicate_bar_dropped" if ts == last else "out_of_order_bar_dropped"
        self._status(kind, symbol=self._symbols[idx], ts=ts, last_ts=last)
        return False

    def _updated(self, msg: Mapping[str, Any], session: _Session) -> None:
        try:
            idx, ts = self._index[msg["S"]], _ts_ns(msg["t"])
        except (KeyError, TypeError, ValueError) as exc:
            self._status("malformed_message", type=msg.get("T"), symbol=msg.get("S"), error=type(exc).__name__)
            return
        self._status("updated_bar_ignored", symbol=self._symbols[idx], ts=ts, seen=ts <= session.last_ts[idx])

    def _fill_gap(self, session: _Session) -> list[_Row]:
        """Fetch the closed bars missed while disconnected; return those newer than each symbol's last bar."""
        assert session.start_ns is not None
        if self._historical is None:
            self._status("gap_fill_failed", symbol="*", error="no historical source configured")
            return []
        end = self._clock() // NS_PER_MINUTE * NS_PER_MINUTE
        rows: list[tuple[int, int, float, float, float, float, float]] = []
        for idx, symbol in enumerate(self._symbols):
            last = session.last_ts[idx]
            start = last + 1 if last >= 0 else session.start_ns
            if start >= end:
                continue
            try:
                for row in self._historical(symbol, start, end):
                    ts, o, h, lo, c, v = row
                    if start <= int(ts) < end:
                        rows.append((int(ts), idx, float(o), float(h), float(lo), float(c), float(v)))
            except Exception as exc:  # the live stream goes on; the gap is reported
                self._status("gap_fill_failed", symbol=symbol, error=self._describe(exc))
        rows.sort(key=lambda r: (r[0], r[1]))
        bars = []
        for ts, idx, o, h, lo, c, v in rows:
            if self._in_order(idx, ts, session):
                session.filled[idx].add(ts)
                bars.append((idx, ts, o, h, lo, c, v))
        self._status("gap_filled", bars=len(bars), end_ns=end)
        return bars

    def _describe(self, exc: BaseException) -> str:
        """One line naming the exception, with the key id and secret replaced by ``<redacted>``."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        for secret in (self._credentials.secret_key, self._credentials.key_id):
            text = text.replace(secret, "<redacted>")
        text = text if len(text) <= 300 else text[:297] + "..."
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    def _status(self, kind: str, **details: Any) -> None:
        self._stats[kind] += 1
        level = _STATUS_LEVELS.get(kind, logging.WARNING)
        log.log(level, "alpaca %s feed: %s %s", self._feed, kind, details)
        if self.on_status is not None:
            try:
                self.on_status(kind, details)
            except Exception:  # a status hook must not stop the market data
                log.exception("the Alpaca feed's on_status hook failed on %s", kind)


def alpaca_history(
    *, key_id: str, secret_key: str, feed: str = "iex", url_override: str | None = None
) -> HistoricalBars:
    """Return a ``historical`` callable over Alpaca's REST bars endpoint (alpaca-py's ``StockHistoricalDataClient``).

    ``url_override`` replaces the REST base URL (``https://data.alpaca.markets``). The callable asks for the
    one-minute bars of one symbol starting in [start_ns, end_ns) from ``feed`` and returns (ts, o, h, l, c, v)
    rows; it blocks the calling thread for the request (alpaca-py pages and retries rate limits itself).
    """
    if feed not in FEEDS:
        raise ConfigError(f"unknown Alpaca feed {feed!r}; use 'iex' or 'sip'")
    client = StockHistoricalDataClient(key_id, secret_key, raw_data=True, url_override=url_override)
    data_feed = DataFeed(feed)

    def historical(symbol: str, start_ns: int, end_ns: int) -> list[tuple[int, float, float, float, float, float]]:
        request = StockBarsRequest(
            symbol_or_symbols=symbol,
            timeframe=TimeFrame.Minute,
            start=_utc(-(-start_ns // 1000)),  # the first microsecond at or after start_ns
            end=_utc((end_ns - 1) // 1000),  # Alpaca's end is inclusive
            feed=data_feed,
        )
        raw: Any = client.get_stock_bars(request)
        return [(_ts_ns(b["t"]), b["o"], b["h"], b["l"], b["c"], b["v"]) for b in raw.get(symbol, [])]

    return historical


def _utc(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _ts_ns(value: Any) -> int:
    """A wire time (msgpack timestamp, RFC 3339 text or aware datetime) as ns since the epoch, UTC."""
    if isinstance(value, msgpack.Timestamp):
        return int(value.to_unix_nano())
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive time")
        return (value - _EPOCH) // timedelta(microseconds=1) * 1000
    if isinstance(value, str):
        match = _RFC3339.fullmatch(value)
        if match is None:
            raise ValueError(f"not an RFC 3339 time: {value!r}")
        main, fraction, zone = match.groups()
        seconds = int(datetime.fromisoformat(main + ("+00:00" if zone == "Z" else zone)).timestamp())
        return seconds * NS_PER_SECOND + int((fraction or "0").ljust(9, "0"))
    raise TypeError(f"not a time: {type(value).__name__}")
