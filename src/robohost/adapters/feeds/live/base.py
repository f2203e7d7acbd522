"""``LiveFeed``: a ``MarketFeed`` of closed bars streamed by an asyncio client, run in a background thread.

A subclass speaks to one venue through a few hooks (``_connect``, ``_next``, ``_pending`` or
``_pending_trades``, ``_history``); this base runs them on an event loop of its own in a daemon thread and
hands closed bars to the thread that iterates ``events`` through a ``queue.Queue``. The rules it keeps:

- **Closed bars only, each once, in order.** Candle updates go through a ``CandleCloser``: a candle is
  emitted when a later one of the same symbol starts, or ``grace_s`` after its end provided the venue was
  heard from about the symbol after that end (a candle is never closed by the clock across a silence,
  which could hide a final update). Per symbol, a bar not later than the last one emitted never reaches
  the consumer (counted in ``stats``); a late or out-of-order update never changes an emitted bar.
- **Reconnect, resubscribe, fill the gap.** Any network failure, and a silence of ``stale_after_s``,
  closes the connection and reconnects after an exponential backoff with jitter (``backoff_base_s``
  doubling up to ``backoff_cap_s``, each delay drawn from [half, all] of that; ``max_reconnects`` failures
  in a row without data end the feed with ``DataError``). Candles held open are dropped (their updates may
  be incomplete). Right after subscribing, the candles that closed since each symbol's last bar are
  fetched from the venue's REST history (paginated, deduplicated by (symbol, ts)) and emitted in time
  order before any live bar; the candle in progress is left to the stream, whose updates carry its whole
  state, so a REST snapshot of a forming candle is never emitted. With ``fill_missing``, a candle closed by
  an update that skipped intervals (updates were lost) is taken from REST, with the skipped ones.
- **Bars from trades** (``bars_from="trades"``): a ``TradeBarBuilder`` on exact interval boundaries
  (see ``bars`` for the late-trade rule). After (re)subscribing, the bars up to the interval of each
  symbol's first trade come from REST candles (trades before the subscription were missed; candles
  without volume make no bar); a bar closes by the clock only up to the stream's last message plus the
  grace. Trades lost without a disconnect or a stale stream cannot be noticed (no sequence numbers).
- **Resume.** ``resume_after_ts`` (before ``events``) names the last bar the engine processed, for all
  symbols or per symbol; the feed then starts with the bars since then, from REST. Without it a symbol
  starts with the candle in progress when the feed first connects.
- **Watchdog and clock.** No data from the stream for ``stale_after_s`` (REST gap fills do not count):
  ``on_status("degraded", ...)`` once, then ``("recovered", ...)`` when data flow again. The venue's clock
  (``_exchange_time_ns``) is compared with ``clock`` (default ``time.time_ns``) at start and every
  ``skew_check_s``; a difference beyond ``skew_threshold_ms`` is reported as ``("clock_skew",
  {"skew_ms": ...})``, at most once a minute.

Statuses (``on_status(kind, details)``, called in the thread iterating ``events``, like ``AlpacaFeed``):
``connected``, ``reconnected``, ``reconnecting``, ``gap_filled``, ``degraded``, ``recovered``,
``clock_skew``, ``late_data``. ``stats`` counts them, the bars emitted and the updates dropped. Errors
that retrying cannot cure (an unknown symbol, refused credentials) end ``events`` with ``ConfigError`` or
``DataError``. Secrets passed as ``secrets`` are replaced by ``<redacted>`` in every message. ``ready``
(called from the thread iterating ``events``) says whether the next bar is at hand, so that a live run can
group its commits.

This module must not import robohost.config, robohost.cli, robohost.services or robohost.adapters.db.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from robohost.adapters.feeds.live.bars import CandleCloser, ClosedBar, TradeBarBuilder
from robohost.domain.market import BAR
from robohost.engine.history import History
from robohost.engine.ports import MarketEvent
from robohost.errors import DataError, RobohostError, StateError

log = logging.getLogger(__name__)

StatusHook = Callable[[str, Mapping[str, Any]], None]
"""``on_status(kind, details)``: called in the thread that iterates ``events``."""
Update = tuple[int, int, float, float, float, float, float]
"""A candle update from the venue: (symbol index, candle start ns, open, high, low, close, volume)."""
TradeUpdate = tuple[int, int, float, float]
"""A trade from the venue: (symbol index, ts ns, price, size)."""
BARS_FROM = ("ohlcv", "candles", "trades")
"""Where bars come from: the venue's candles (``"ohlcv"``, or its synonym ``"candles"``) or its trades."""

_POLL_S = 0.1
_JOIN_S = 10.0
_CLOSE_S = 5.0
_SKEW_REPORT_S = 60.0
_STATUS_LEVELS = dict.fromkeys(("connected", "reconnected", "recovered", "gap_filled"), logging.INFO)


class StaleStreamError(Exception):
    """The stream delivered no market data for ``stale_after_s``; the feed reconnects."""


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Delay before reconnect ``attempt`` (1, 2, ...): ``base_s`` doubling up to ``cap_s``, times [0.5, 1]."""
    return min(cap_s, base_s * 2.0 ** min(attempt - 1, 30)) * rng.uniform(0.5, 1.0)


class LiveFeed(ABC):
    """Closed bars of ``symbols`` from a live venue (see the module docstring); subclasses implement the hooks."""

    source: ClassVar[str] = "live"
    retryable: ClassVar[tuple[type[BaseException], ...]] = (StaleStreamError, TimeoutError, OSError)
    """Exceptions after which the feed reconnects; anything else ends it."""

    def __init__(
        self,
        *,
        venue: str,
        symbols: Sequence[str],
        timeframe: str,
        interval_ns: int,
        grace_s: float = 2.0,
        stale_after_s: float = 60.0,
        on_status: StatusHook | None = None,
        max_bars: int | None = None,
        clock: Callable[[], int] = time.time_ns,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 30.0,
        max_reconnects: int | None = None,
        skew_threshold_ms: float = 2000.0,
        skew_check_s: float = 60.0,
        fill_missing: bool = True,
        bars_from: str = "ohlcv",
        history_page: int = 1000,
        max_history_pages: int = 1000,
        secrets: Iterable[str] = (),
    ) -> None:
        names = [str(s).strip() for s in symbols]
        if not names or not all(names):
            raise ValueError("a live feed needs at least one symbol, and no empty symbol")
        if len(set(names)) != len(names):
            raise ValueError(f"a symbol is listed twice: {', '.join(names)}")
        if interval_ns <= 0 or grace_s < 0 or stale_after_s <= 0:
            raise ValueError("interval_ns and stale_after_s must be positive and grace_s >= 0")
        if max_bars is not None and max_bars < 0:
            raise ValueError(f"max_bars must be >= 0 or None, not {max_bars}")
        if backoff_base_s <= 0 or backoff_cap_s < backoff_base_s:
            raise ValueError("backoff_base_s must be positive and backoff_cap_s at least backoff_base_s")
        if bars_from not in BARS_FROM:
            raise ValueError(f"bars_from must be 'ohlcv' or 'trades', not {bars_from!r}")
        if max_reconnects is not None and max_reconnects < 0:
            raise ValueError(f"max_reconnects must be >= 0 or None, not {max_reconnects}")
        self._venue = venue
        self._symbols = tuple(names)
        self._timeframe = timeframe
        self._interval_ns = interval_ns
        self._grace_ns = round(grace_s * 1e9)
        self._stale_after_s = stale_after_s
        self.on_status = on_status  # public: the run service may set it after construction, before events()
        self._max_bars = max_bars
        self._clock = clock
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._max_reconnects = max_reconnects
        self._skew_threshold_ms = skew_threshold_ms
        self._skew_check_s = skew_check_s
        self._fill_missing = fill_missing
        self._from_trades = bars_from == "trades"
        self._history_page = history_page
        self._max_history_pages = max_history_pages
        self._secrets = tuple(s for s in secrets if s)
        self._kinds = MappingProxyType({s: frozenset({BAR}) for s in names})
        self._intervals = MappingProxyType(dict.fromkeys(names, interval_ns))
        self._resume: dict[int, int] = {}
        self._stats: Counter[str] = Counter()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._used = False
        self._out: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._held: tuple[Any, ...] | None = None  # an item ``ready`` took from ``_out`` for ``events``
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._cancelled = False
        # Touched only in the feed's thread once it runs:
        self._closer = CandleCloser(interval_ns, self._grace_ns)
        self._builder = TradeBarBuilder(interval_ns, self._grace_ns)
        # Trades mode: after (re)subscribing, the bars up to the interval of a symbol's first trade come
        # from REST (earlier trades of that interval were missed): _fresh[symbol] = first ts REST owes
        # until that trade comes, then _owed[symbol] = (first ts, start of the first trade's interval).
        self._fresh: dict[int, int] = {}
        self._suspect: set[tuple[int, int]] = set()  # candles closed by an update that skipped intervals
        self._owed: dict[int, tuple[int, int]] = {}
        self._outbox: list[ClosedBar] = []
        self._flush_lock = asyncio.Lock()
        self._last_put: list[int | None] = [None] * len(names)
        self._heard_ns: dict[int, int] = {}
        self._live_ns = -(2**62)
        self._last_data = time.monotonic()
        self._degraded = False
        self._live = False
        self._delivered = False
        self._connections = 0
        self._late_seen = 0
        self._last_skew_report = -1e18
        self._rng = random.Random()

    # ----------------------------------------------------------------- MarketFeed

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
        """The timeframe's length, for every symbol."""
        return self._intervals

    @property
    @abstractmethod
    def signature(self) -> str:
        """A stable identity of the stream; subclasses hash (source, venue, symbols, timeframe)."""

    @property
    def bars_from(self) -> str:
        """``"ohlcv"`` (the venue's candles) or ``"trades"`` (bars built by the feed)."""
        return "trades" if self._from_trades else "ohlcv"

    @property
    def timeframe(self) -> str:
        """The bar length as the venue names it (``"1m"``)."""
        return self._timeframe

    @property
    def stats(self) -> Mapping[str, int]:
        """Counts: ``bars`` emitted, statuses by kind, and updates dropped (``late_updates``, ``stale_updates``,
        ``duplicate_bars``)."""
        counts = Counter(self._stats)
        counts["late_updates"] = sum(self._closer.late.values())
        counts["stale_updates"] = sum(self._closer.stale.values())
        counts["late_trades"] = sum(self._builder.late.values())
        return MappingProxyType(dict(counts))

    def event_columns(self) -> History | None:
        """None: a live feed holds no columns; the engine keeps the history itself."""
        return None

    def resume_after_ts(self, ts_ns: int | Mapping[str, int]) -> None:
        """Start after the bar starting at ``ts_ns`` (every symbol, or a map symbol -> ts; negative: none).

        Call before ``events``: the feed first emits each symbol's bars since then, from REST history.
        """
        with self._lock:
            if self._used:
                raise StateError("resume_after_ts must be called before events()")
            items = ts_ns.items() if isinstance(ts_ns, Mapping) else ((s, ts_ns) for s in self._symbols)
            for symbol, ts in items:
                if symbol not in self._symbols:
                    raise ValueError(f"{symbol!r} is not one of the feed's symbols {list(self._symbols)}")
                if int(ts) >= 0:
                    self._resume[self._symbols.index(symbol)] = int(ts)

    def close(self) -> None:
        """End ``events`` within a fraction of a second and disconnect; the feed cannot stream again."""
        with self._lock:
            self._closed.set()
            loop, task = self._loop, self._main_task
            if loop is None or task is None or self._cancelled:
                return
            self._cancelled = True  # once: a second cancel could interrupt the client's clean-up
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(task.cancel)

    def events(self, start_seq: int = 0) -> Iterator[MarketEvent]:
        """Connect and yield closed bars numbered from ``start_seq`` until ``close`` or ``max_bars``.

        Blocks between bars. Raises ``ConfigError`` or ``DataError`` when the venue cannot be used.
        """
        if start_seq < 0:
            raise ValueError(f"start_seq must be >= 0, not {start_seq}")
        return self._consume(start_seq)

    def _consume(self, seq: int) -> Iterator[MarketEvent]:
        with self._lock:
            if self._used:
                raise StateError(f"this {self.source} feed has streamed already; create a new one")
            self._used = True
        if self._max_bars == 0 or self._closed.is_set():
            return
        for idx, ts in self._resume.items():
            self._closer.skip_through(idx, ts)
            self._builder.skip_through(idx, ts)
            self._last_put[idx] = ts
        thread = threading.Thread(target=self._thread_main, name=f"{self.source}-{self._venue}-feed", daemon=True)
        thread.start()
        emitted = 0
        try:
            while not self._closed.is_set():
                if self._held is not None:
                    item, self._held = self._held, None
                else:
                    try:
                        item = self._out.get(timeout=_POLL_S)
                    except queue.Empty:
                        continue
                tag = item[0]
                if tag == "bar":
                    _, idx, ts, o, h, lo, c, v = item
                    emitted += 1
                    self._stats["bars"] += 1
                    yield seq, BAR, idx, ts, o, h, lo, c, v
                    seq += 1
                    if emitted == self._max_bars:
                        return
                elif tag == "status":
                    self._report(item[1], item[2])
                elif tag == "error":
                    raise item[1]
                elif tag == "ended":
                    return
        finally:
            self.close()
            thread.join(_JOIN_S)
            if thread.is_alive():
                log.warning("the %s %s feed thread did not stop within %.0f s", self.source, self._venue, _JOIN_S)

    def ready(self, wait_s: float = 0.0) -> bool:
        """Whether the next bar is at hand (``events`` would yield it without waiting), waiting up to ``wait_s``
        for it; statuses queued before it are reported now. Call from the thread iterating ``events``."""
        deadline = time.monotonic() + wait_s
        while self._held is None:
            left = deadline - time.monotonic()
            try:
                item = self._out.get(timeout=left) if left > 0 else self._out.get_nowait()
            except queue.Empty:
                return False
            if item[0] == "status":
                self._report(item[1], item[2])
            else:
                self._held = item
        return self._held[0] == "bar"

    def _report(self, kind: str, details: Mapping[str, Any]) -> None:
        self._stats[kind] += 1
        log.log(_STATUS_LEVELS.get(kind, logging.WARNING), "%s %s feed: %s %s", self.source, self._venue, kind, details)
        if self.on_status is not None:
            try:
                self.on_status(kind, details)
            except Exception:  # a status hook must not stop the market data
                log.exception("the %s feed's on_status hook failed on %s", self.source, kind)

    # ----------------------------------------------------------------- hooks for subclasses

    async def _open(self) -> None:
        """Prepare the client (on the feed's loop) before the first connection."""
        return  # an optional hook: nothing to do unless a client needs it

    async def _aclose(self) -> None:
        """Release the client: sockets, sessions."""
        return  # an optional hook: nothing to do unless a client needs it

    @abstractmethod
    async def _connect(self) -> None:
        """Connect and subscribe (failures may surface in ``_next``); the REST gap fill follows at once."""

    @abstractmethod
    async def _next(self) -> int:
        """Wait for more market data; return the time (``clock`` ns) at which the data were current."""

    @abstractmethod
    def _pending(self) -> list[Update]:
        """Return the candle updates received and not yet returned (changed values only).

        Whoever receives data calls ``_heard(as_of, symbol indices)``: a candle is closed by the clock only
        once its symbol was heard of after the candle's end.
        """

    def _pending_trades(self) -> list[TradeUpdate]:
        """Return the trades received and not yet returned (with ``bars_from="trades"``)."""
        return []

    @abstractmethod
    async def _history(self, index: int, since_ns: int, limit: int) -> list[Update]:
        """Fetch at most ``limit`` candles of symbol ``index`` starting at or after ``since_ns``, from REST."""

    async def _disconnect(self) -> None:
        """Drop the connection so that the next ``_connect`` starts afresh."""
        return  # an optional hook: nothing to do unless a client needs it

    async def _exchange_time_ns(self) -> int | None:
        """The venue's clock (ns since the epoch), or None when it cannot tell."""
        return None

    def _fatal(self, exc: BaseException) -> RobohostError:
        """The error ``events`` raises for an exception retrying cannot cure."""
        return DataError(f"{self._venue} market data failed: {self._describe(exc)}")

    def _describe(self, exc: BaseException) -> str:
        """One line naming the exception, secrets replaced by ``<redacted>``."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        text = text if len(text) <= 300 else text[:297] + "..."
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    # ----------------------------------------------------------------- the feed's thread

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # _main reports its own errors; this is a last resort
            self._out.put(("error", DataError(f"the {self._venue} feed stopped: {self._describe(exc)}")))

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_error)
        self._last_data = time.monotonic()
        with self._lock:
            if self._closed.is_set():
                return
            self._main_task = asyncio.current_task()
            self._loop = loop
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._open()
            tasks = [
                asyncio.create_task(self._run()),
                asyncio.create_task(self._tick()),
                asyncio.create_task(self._watch_skew()),
            ]
            done, _ = await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            self._out.put(("ended",))
        except asyncio.CancelledError:
            pass
        except RobohostError as exc:
            self._out.put(("error", exc))
        except Exception as exc:
            self._out.put(("error", self._fatal(exc)))
        cleanup = asyncio.ensure_future(self._cleanup(tasks))
        while not cleanup.done():  # a close() arriving now must not cut the client's clean-up short
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(cleanup)

    async def _cleanup(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: each task also checks the closed flag, should a cancellation get lost
            await asyncio.wait(tasks, timeout=_CLOSE_S)
        try:
            async with asyncio.timeout(_CLOSE_S):
                await self._aclose()
        except Exception as exc:
            log.warning("closing the %s feed failed: %s", self._venue, self._describe(exc))

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Log what the client library leaves unhandled (never the context's objects: they may hold secrets)."""
        exc = context.get("exception")
        log.debug("%s feed loop: %s%s", self._venue, context.get("message"), f" ({self._describe(exc)})" if exc else "")

    def _status(self, kind: str, **details: Any) -> None:
        self._out.put(("status", kind, details))

    async def _run(self) -> None:
        """Connect, stream, and on a retryable failure reconnect with backoff, forever."""
        attempt = 0
        while not self._closed.is_set():
            try:
                await self._session()
            except self.retryable as exc:
                self._live = False
                dropped = self._closer.discard_open() + self._builder.discard_open()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(_CLOSE_S):
                        await self._disconnect()
                if self._delivered:
                    attempt, self._delivered = 0, False
                attempt += 1
                if self._max_reconnects is not None and attempt > self._max_reconnects:
                    raise DataError(
                        f"{self._venue} market data: gave up after {attempt - 1} reconnects ({self._describe(exc)})"
                    ) from None
                delay = backoff_delay(attempt, *self._backoff, self._rng)
                self._status(
                    "reconnecting",
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    error=self._describe(exc),
                    open_bars_dropped=dropped,
                )
                await asyncio.sleep(delay)

    async def _session(self) -> None:
        """One connection: subscribe, fill the gap from REST, then stream until something fails."""
        self._live = False
        async with asyncio.timeout(self._stale_after_s):  # not wait_for: in 3.11 it can swallow a cancel
            await self._connect()
        await self._resync()
        self._live = True
        await self._flush()
        delivered = False
        while not self._closed.is_set():
            try:
                async with asyncio.timeout(self._stale_after_s):
                    as_of = await self._next()
            except TimeoutError:
                raise StaleStreamError(f"no market data for {self._stale_after_s:g} s") from None
            self._heard(as_of, ())
            if not delivered:
                delivered = self._delivered = True
                self._connections += 1
                self._status("connected" if self._connections == 1 else "reconnected", connection=self._connections)
            self._take()
            await self._flush()

    async def _resync(self) -> None:
        """Emit each symbol's closed candles since its last bar, from REST, before any live update.

        A REST candle is closed when a later one exists or its end plus the grace has passed; the candle
        in progress is left to the live stream (whose updates carry its whole state), so no REST snapshot
        of a forming candle can ever be emitted.
        """
        closer, builder = self._closer, self._builder
        closer.discard_open()
        builder.discard_open()
        now = self._clock()
        due = self._interval_ns + self._grace_ns
        bars: list[ClosedBar] = []
        for idx in range(len(self._symbols)):
            last = (builder if self._from_trades else closer).last_emitted(idx)
            if last is None:  # a fresh start: begin with the candle in progress
                last = now - self._interval_ns
                closer.skip_through(idx, last)
            rows = await self._history_since(idx, last + 1)
            mine: list[ClosedBar] = []
            for i, (_, ts, o, h, lo, c, v) in enumerate(rows):
                if (i + 1 < len(rows) or ts + due <= now) and not (self._from_trades and v <= 0):
                    mine += closer.update(idx, ts, o, h, lo, c, v)
            mine += closer.close(idx)
            bars += mine
            if self._from_trades:
                if mine:
                    builder.skip_through(idx, mine[-1].ts)
                    last = mine[-1].ts
                self._owed.pop(idx, None)
                self._fresh[idx] = last + 1
        self._heard(now, range(len(self._symbols)), live=False)
        bars.sort(key=lambda bar: (bar.ts, bar.symbol))
        self._outbox += bars
        if bars:
            self._status("gap_filled", bars=len(bars))

    def _needed_since(self, idx: int) -> int:
        """Where a poll of symbol ``idx`` must start: its open candle, else after its last bar, else now."""
        held = self._closer.open_ts(idx)
        if held is not None:
            return held
        last = self._closer.last_emitted(idx)
        return last + 1 if last is not None else self._clock() - self._interval_ns + 1

    async def _history_since(self, idx: int, since_ns: int, until_ns: int | None = None) -> list[Update]:
        """All REST candles of symbol ``idx`` starting in [since_ns, until_ns), paginated, in order, once each."""
        out: list[Update] = []
        last = since_ns - 1
        for _ in range(self._max_history_pages):
            page = await self._history(idx, last + 1, self._history_page)
            fresh = [u for u in page if u[1] > last and (until_ns is None or u[1] < until_ns)]
            fresh.sort(key=lambda u: u[1])
            for update in fresh:
                if update[1] > last:
                    out.append(update)
                    last = update[1]
            # pages may be shorter than asked (exchanges cap them): stop at the present or at until_ns
            horizon = until_ns if until_ns is not None else self._clock() + 1
            if not fresh or last + self._interval_ns >= horizon:
                return out
        raise DataError(
            f"{self._venue} market data: the gap for {self._symbols[idx]} is longer than "
            f"{self._max_history_pages} pages of {self._history_page} bars"
        )

    def _take(self) -> None:
        """Feed what arrived (in arrival order) to the closer or builder, close what the time allows, queue it."""
        if self._from_trades:
            builder, owed, fresh, interval = self._builder, self._owed, self._fresh, self._interval_ns
            for idx, ts, price, size in self._pending_trades():
                if idx in fresh:  # the first trade since subscribing: its interval may lack earlier trades
                    owed[idx] = (fresh.pop(idx), builder.bar_start(ts))
                if idx in owed and ts < owed[idx][1] + interval:
                    continue  # in an interval whose bar comes from REST
                self._outbox += builder.add(idx, ts, price, size)
            # by the clock only up to the stream's last sign of life: a silence may hide a bar's last trades
            self._outbox += builder.poll(min(self._clock(), self._live_ns + self._grace_ns))
            late_trades = builder.take_late()
            if late_trades:
                self._status("late_data", trades=len(late_trades), total=sum(builder.late.values()))
            return
        closer, interval = self._closer, self._interval_ns
        for idx, ts, o, h, lo, c, v in self._pending():
            closed = closer.update(idx, ts, o, h, lo, c, v)
            if closed and ts - closed[0].ts > interval:  # updates were lost: maybe this candle's last ones too
                self._suspect.add((idx, closed[0].ts))
            self._outbox += closed
        self._outbox += closer.poll(self._clock(), self._heard_ns)
        late = sum(closer.late.values())
        if late > self._late_seen:
            self._status("late_data", dropped=late - self._late_seen, total=late)
            self._late_seen = late

    async def _flush(self) -> None:
        """Hand the closed bars to the consumer in order, each preceded by any intervals it skipped (from REST)."""
        async with self._flush_lock:
            if self._owed:
                await self._pay_owed()
            while self._outbox:
                bar = self._outbox[0]
                idx = int(bar.symbol)  # type: ignore[call-overload]
                last = self._last_put[idx]
                skipped = last is not None and bar.ts - last > self._interval_ns
                suspect = (idx, bar.ts) in self._suspect
                if self._fill_missing and (skipped or suspect) and not self._from_trades:
                    since = last + 1 if last is not None else bar.ts
                    rows = await self._history_since(idx, since, bar.ts + (self._interval_ns if suspect else 0))
                    filled = 0
                    for update in rows:
                        if update[1] == bar.ts:  # the candle itself, final, from REST
                            bar = ClosedBar(idx, *update[1:])
                        else:
                            self._put(ClosedBar(idx, *update[1:]))
                            filled += 1
                    self._suspect.discard((idx, bar.ts))
                    if filled:
                        self._status("gap_filled", bars=filled)
                self._outbox.pop(0)
                self._put(bar)

    async def _pay_owed(self) -> None:
        """Trades mode: emit the bars REST owes a symbol once their last interval is over (its end plus the
        grace passed, or a later bar of the symbol waits), before that later bar."""
        now = self._clock()
        for idx, (first, through) in sorted(self._owed.items()):
            waiting = any(bar.symbol == idx for bar in self._outbox)
            if waiting or through + self._interval_ns + self._grace_ns <= now:
                rows = await self._history_since(idx, first, through + self._interval_ns)
                paid = [u for u in rows if u[6] > 0]  # no trades, no bar
                for update in paid:
                    self._put(ClosedBar(idx, *update[1:]))
                self._builder.skip_through(idx, through)
                del self._owed[idx]
                if paid:
                    self._status("gap_filled", bars=len(paid))

    def _put(self, bar: ClosedBar) -> None:
        idx = int(bar.symbol)  # type: ignore[call-overload]
        last = self._last_put[idx]
        if last is not None and bar.ts <= last:
            self._stats["duplicate_bars"] += 1
            return
        self._last_put[idx] = bar.ts
        self._out.put(("bar", idx, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume))

    def _heard(self, as_of: int, symbols: Iterable[int], *, live: bool = True) -> None:
        """Market data arrived, about ``symbols`` (indices) as of ``as_of``: tell the closer, and the watchdog
        unless the data came from REST history (``live=False``): only the stream's own data mean it flows."""
        for idx in symbols:
            if as_of > self._heard_ns.get(idx, as_of - 1):
                self._heard_ns[idx] = as_of
        if not live:
            return
        self._live_ns = max(self._live_ns, as_of)
        now = time.monotonic()
        silent, self._last_data = now - self._last_data, now
        if self._degraded:
            self._degraded = False
            self._status("recovered", silent_s=round(silent, 3))

    async def _tick(self) -> None:
        """Every 100 ms: the watchdog, updates that arrived without waking ``_next``, and closing by time."""
        while not self._closed.is_set():
            await asyncio.sleep(_POLL_S)
            silent = time.monotonic() - self._last_data
            if not self._degraded and silent >= self._stale_after_s:
                self._degraded = True
                self._status("degraded", silent_s=round(silent, 3), reason="no market data")
            if not self._live:
                continue
            self._take()
            try:
                await self._flush()
            except Exception as exc:  # the session's next flush retries, and reconnects if it fails too
                log.debug("%s feed: flush failed: %s", self._venue, self._describe(exc))

    async def _watch_skew(self) -> None:
        """Compare the venue's clock with ours now and every ``skew_check_s``."""
        while not self._closed.is_set():
            try:
                before = self._clock()
                async with asyncio.timeout(10.0):
                    venue = await self._exchange_time_ns()
                after = self._clock()
                if venue is None:
                    return
                skew_ms = (venue - (before + after) / 2) / 1e6
                now = time.monotonic()
                if abs(skew_ms) > self._skew_threshold_ms and now - self._last_skew_report >= _SKEW_REPORT_S:
                    self._last_skew_report = now
                    self._status("clock_skew", skew_ms=round(skew_ms, 1), threshold_ms=self._skew_threshold_ms)
            except Exception as exc:
                log.debug("%s feed: clock check failed: %s", self._venue, self._describe(exc))
            await asyncio.sleep(self._skew_check_s)
