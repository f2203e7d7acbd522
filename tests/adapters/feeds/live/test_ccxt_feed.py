"""Tests of ``CcxtFeed`` through the real ccxt client against the fake Binance server on 127.0.0.1.

The fake runs its exchange clock ``SPEED`` times faster than real time (a one-minute candle lasts 150 ms)
and the feed reads that clock (``clock=server.clock_ns``), so grace periods are in exchange seconds while
staleness and backoff stay in real seconds.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.request import urlopen

import pandas as pd
import pytest
from websockets.sync.client import connect

from fakes.binance import FakeBinance, Fault
from robohost.adapters.feeds.live.ccxt_feed import CcxtFeed
from robohost.adapters.feeds.synthetic import synthetic_bars
from robohost.domain.market import BAR
from robohost.engine.ports import LiveMarketFeed, MarketEvent
from robohost.errors import ConfigError, DataError, StateError

SPEED = 400.0
GRACE_S = 60.0  # exchange seconds: 0.15 s of real time at SPEED, room for a loaded CI machine
"""Exchange seconds a candle may still change after its end: 50 ms of real time at SPEED."""
PAIRS = ["BTC/USDT", "ETH/USDT"]
TIMEOUT_S = 20.0

Statuses = list[tuple[str, Mapping[str, Any]]]


def bars_frame(n: int, symbols: Sequence[str] = tuple(PAIRS)) -> pd.DataFrame:
    return pd.concat(
        [synthetic_bars(n, symbol=s, seed=i + 1, price=100.0 * (i + 1)) for i, s in enumerate(symbols)],
        ignore_index=True,
    )


@pytest.fixture
def exchange() -> Iterator[Callable[..., FakeBinance]]:
    """Start fake Binance servers serving ``n`` one-minute bars of PAIRS; stop them after the test."""
    servers: list[FakeBinance] = []

    def start(n: int = 6, **options: Any) -> FakeBinance:
        server = FakeBinance(bars_frame(n), speed=SPEED, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def make_feed(server: FakeBinance, statuses: Statuses | None = None, **options: Any) -> CcxtFeed:
    """A feed on the fake: its URLs, its clock, a short grace; statuses appended to ``statuses``."""
    symbols = options.pop("symbols", PAIRS)
    settings: dict[str, Any] = {
        "urls": server.ccxt_urls(),
        "clock": server.clock_ns,
        "grace_s": GRACE_S,
        "skew_threshold_ms": 1e12,
        "on_status": None if statuses is None else (lambda kind, details: statuses.append((kind, details))),
    }
    settings.update(options)
    return CcxtFeed("binance", symbols, **settings)


def collect(
    feed: CcxtFeed, server: FakeBinance, symbols: Sequence[str] = PAIRS, start_seq: int = 0
) -> list[MarketEvent]:
    """Iterate the feed until every symbol's last bar arrived (or TIMEOUT_S passed), then close it."""
    final = {i: server.expected(s)[-1][0] for i, s in enumerate(symbols)}
    timer = threading.Timer(TIMEOUT_S, feed.close)
    timer.daemon = True
    timer.start()
    got: list[MarketEvent] = []
    events = feed.events(start_seq)
    try:
        for event in events:
            got.append(event)
            if event[3] == final.get(event[2]):
                del final[event[2]]
                if not final:
                    break
    finally:
        events.close()  # type: ignore[attr-defined]
        timer.cancel()
        feed.close()
    return got


def assert_bars(
    server: FakeBinance, events: list[MarketEvent], symbols: Sequence[str] = PAIRS, first: Sequence[int] = (0, 1)
) -> dict[str, int]:
    """Each symbol's bars are the frame's, from one of ``first`` to the end, once each, in order, final values.

    Returns the index of each symbol's first bar.
    """
    starts = {}
    for idx, symbol in enumerate(symbols):
        got = [(e[3], *e[4:]) for e in events if e[2] == idx]
        expected = server.expected(symbol)
        assert got, f"no bars for {symbol}"
        j = [row[0] for row in expected].index(got[0][0])
        assert j in first, f"{symbol} started at bar {j}, expected one of {first}"
        assert got == expected[j:], f"{symbol}: bars differ from the source frame"
        starts[symbol] = j
    assert all(e[1] == BAR for e in events)
    return starts


def kinds(statuses: Statuses) -> list[str]:
    return [kind for kind, _ in statuses]


# ----------------------------------------------------------------- streaming


def test_websocket_bars_are_closed_final_in_order_and_numbered(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=6)
    statuses: Statuses = []
    feed = make_feed(server, statuses)
    events = collect(feed, server, start_seq=7)
    assert_bars(server, events)
    assert [e[0] for e in events] == list(range(7, 7 + len(events)))
    assert feed.mode == "websocket"
    assert kinds(statuses)[0] == "connected"
    assert "reconnecting" not in kinds(statuses)
    assert server.subscriptions == [["btcusdt@kline_1m", "ethusdt@kline_1m"]]  # one SUBSCRIBE for both
    assert server.unknown_requests == []
    assert feed.stats["bars"] == len(events)


def test_rest_polling_when_the_websocket_is_not_used(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=6)
    feed = make_feed(server, use_websocket=False, poll_interval_s=0.04, stale_after_s=5.0)
    assert feed.mode == "polling"
    events = collect(feed, server)
    assert_bars(server, events)
    assert server.connections == 0
    assert "/api/v3/klines" in server.requests


def test_a_dropped_connection_is_reconnected_and_the_gap_filled_from_rest(
    exchange: Callable[..., FakeBinance],
) -> None:
    server = exchange(n=9, faults=[Fault("drop", at=3, seconds=0.4)])  # refused for ~2.7 candles
    statuses: Statuses = []
    feed = make_feed(server, statuses)
    events = collect(feed, server)
    assert_bars(server, events)  # nothing missing, nothing twice
    assert server.fired == [("drop", 3)]
    names = kinds(statuses)
    assert names.index("reconnecting") < names.index("gap_filled") < names.index("reconnected")
    assert sum(d["bars"] for k, d in statuses if k == "gap_filled") >= 2
    assert len(server.subscriptions) >= 2  # subscribed again on the new connection


def test_server_shutdown_event_and_malformed_json_are_survived(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=8, faults=[Fault("shutdown", at=2), Fault("malformed", at=5)])
    statuses: Statuses = []
    feed = make_feed(server, statuses, stale_after_s=0.4)
    events = collect(feed, server)
    assert_bars(server, events)
    assert server.fired == [("shutdown", 2), ("malformed", 5)]
    errors = [d["error"] for k, d in statuses if k == "reconnecting"]
    assert "closing code 1001" in errors[0]  # the server closed the socket after serverShutdown
    assert "StaleStreamError" in errors[1]  # ccxt stopped reading after the bad frame: the watchdog reconnected


def test_duplicate_out_of_order_and_missing_klines_never_reach_the_consumer(
    exchange: Callable[..., FakeBinance],
) -> None:
    faults = [Fault("duplicate", at=2), Fault("out_of_order", at=4), Fault("skip", at=6)]
    server = exchange(n=9, faults=faults)
    statuses: Statuses = []
    feed = make_feed(server, statuses)
    events = collect(feed, server)
    assert_bars(server, events)  # once each, in order, final values despite a late smaller update, none missing
    assert server.fired == [("duplicate", 2), ("out_of_order", 4), ("skip", 6)]
    assert feed.stats["late_updates"] >= 2  # the old candles re-sent after newer ones started
    assert ("gap_filled", {"bars": 1}) in statuses  # candle 6, never streamed, from REST


def test_a_short_silence_that_swallowed_final_updates_is_repaired_from_rest(
    exchange: Callable[..., FakeBinance],
) -> None:
    server = exchange(n=7, faults=[Fault("stall", at=3, seconds=0.2)])  # ~1.3 candles lost, no reconnect
    statuses: Statuses = []
    events = collect(make_feed(server, statuses), server)
    assert_bars(server, events)  # candle 2's final update was never streamed: REST supplied it
    assert "reconnecting" not in kinds(statuses)
    assert "gap_filled" in kinds(statuses)


def test_a_stall_reports_degraded_then_recovered_and_loses_nothing(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=9, faults=[Fault("stall", at=3, seconds=0.6)])
    statuses: Statuses = []
    feed = make_feed(server, statuses, stale_after_s=0.3, grace_s=20.0)  # grace (50 ms real) < staleness
    events = collect(feed, server)
    assert_bars(server, events)
    names = kinds(statuses)
    assert names.count("degraded") == 1 and names.count("recovered") == 1
    assert names.index("degraded") < names.index("recovered")
    degraded = dict(statuses)["degraded"]
    assert degraded["silent_s"] >= 0.3


def test_resume_after_ts_starts_with_the_gap_from_rest(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=12, start_at_bar=9.5)  # the feed connects in the middle of candle 9
    statuses: Statuses = []
    feed = make_feed(server, statuses)
    feed.resume_after_ts({"BTC/USDT": server.t0 + 3 * server.interval_ns, "ETH/USDT": -1})
    events = collect(feed, server)
    starts = assert_bars(server, events, first=(4, 9, 10))
    assert starts == {"BTC/USDT": 4, "ETH/USDT": 9}  # BTC resumes after bar 3; ETH starts live
    assert [(e[2], e[3]) for e in events[:5]] == [(0, server.t0 + k * server.interval_ns) for k in range(4, 9)]
    filled = [d["bars"] for k, d in statuses if k == "gap_filled"]
    assert filled and filled[0] >= 5  # BTC's bars 4 to 8, and those that closed while the feed connected
    with pytest.raises(StateError):
        feed.resume_after_ts(0)


def test_resume_after_ts_for_every_symbol(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=8, start_at_bar=5.3)
    feed = make_feed(server)
    feed.resume_after_ts(server.t0 + server.interval_ns)
    assert assert_bars(server, collect(feed, server), first=(2,)) == {"BTC/USDT": 2, "ETH/USDT": 2}


def test_a_long_gap_is_fetched_page_by_page_even_when_pages_are_short(
    exchange: Callable[..., FakeBinance],
) -> None:
    server = exchange(n=1000, start_at_bar=995.5, max_klines=300)  # the feed asks 1000, gets 300 a page
    feed = make_feed(server)
    feed.resume_after_ts({"BTC/USDT": server.t0 + server.interval_ns})
    events = collect(feed, server)
    assert assert_bars(server, events, first=(2, 995)) == {"BTC/USDT": 2, "ETH/USDT": 995}
    assert server.requests.count("/api/v3/klines") >= 4


def test_rest_failure_while_filling_the_gap_is_retried(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=8, faults=[Fault("drop", at=3, seconds=0.2)])
    statuses: Statuses = []

    def on_status(kind: str, details: Mapping[str, Any]) -> None:
        statuses.append((kind, details))
        if kind == "reconnecting" and details["attempt"] == 1:
            server.fail_rest("/api/v3/klines", 503, '{"code":-1001,"msg":"Internal error."}')

    events = collect(make_feed(server, on_status=on_status), server)
    assert_bars(server, events)
    assert any(k == "reconnecting" and "Internal error" in d["error"] for k, d in statuses)  # retried


def test_bars_built_from_trades_equal_the_source(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=6)
    statuses: Statuses = []
    feed = make_feed(server, statuses, bars_from="trades")
    assert feed.bars_from == "trades"
    events = collect(feed, server)
    assert_bars(server, events)  # the interval in progress at subscription from REST, the rest from trades
    assert server.subscriptions == [["btcusdt@trade", "ethusdt@trade"]]
    assert feed.stats["late_trades"] == 0
    assert sum(d["bars"] for k, d in statuses if k == "gap_filled") <= 4  # at most two per symbol from REST


def test_bars_from_trades_survive_a_dropped_connection(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=8, faults=[Fault("drop", at=3, seconds=0.2)])
    statuses: Statuses = []
    events = collect(make_feed(server, statuses, bars_from="trades"), server)
    assert_bars(server, events)  # the intervals missed, and the one the new connection joined, from REST
    assert "reconnected" in kinds(statuses)


def test_the_fake_speaks_binance_streams_and_rest(exchange: Callable[..., FakeBinance]) -> None:
    """The parts of the protocol ccxt does not use here: combined streams and the subscription replies."""
    server = exchange(n=3, start_at_bar=1.5)
    with connect(f"{server.ws_url}/stream?streams=btcusdt@kline_1m") as ws:
        wrapped = json.loads(ws.recv(timeout=5))
        assert wrapped["stream"] == "btcusdt@kline_1m"
        assert wrapped["data"]["e"] == "kline" and wrapped["data"]["k"]["x"] is False
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 7}))
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
        ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["ethusdt@trade"], "id": 9}))
        replies = {}
        for _ in range(50):
            message = json.loads(ws.recv(timeout=5))
            if "id" in message:
                replies[message["id"]] = message["result"]
            if len(replies) == 3:
                break
    assert replies == {7: None, 8: ["btcusdt@kline_1m", "ethusdt@trade"], 9: None}
    with urlopen(f"{server.rest_url}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=5", timeout=5) as reply:
        rows = json.loads(reply.read())
    first = server.expected("BTC/USDT")[0]
    assert rows[0][0] * 1_000_000 == first[0] and float(rows[0][4]) == first[4]  # closed: final values
    assert len(rows[0]) == 12 and rows[0][6] == rows[0][0] + 59_999
    assert float(rows[-1][5]) < server.expected("BTC/USDT")[1][5]  # the candle in progress: volume so far


# ----------------------------------------------------------------- clock, sandbox, configuration, errors


def test_clock_skew_is_reported_at_most_once_a_minute(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=5, skew_ms=600_000)
    statuses: Statuses = []
    feed = make_feed(server, skew_threshold_ms=2000.0, skew_check_s=0.05)
    feed.on_status = lambda kind, details: statuses.append((kind, details))  # set late, as the run service does
    collect(feed, server)
    skews = [d for k, d in statuses if k == "clock_skew"]
    assert len(skews) == 1
    assert abs(skews[0]["skew_ms"] - 600_000) < 2000
    assert server.requests.count("/api/v3/time") >= 3  # checked repeatedly, reported once


def test_sandbox_switches_ccxt_to_test_urls_before_the_override(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=4)
    feed = make_feed(server, sandbox=True)
    urls = feed.exchange.urls
    assert feed.exchange.isSandboxModeEnabled
    assert urls["apiBackup"]["public"] == "https://api.binance.com/api/v3"  # the production URLs, set aside
    assert urls["api"]["fapiPrivate"] == "https://testnet.binancefuture.com/fapi/v1"  # ccxt's test URLs...
    assert urls["api"]["public"] == f"{server.rest_url}/api/v3"  # ...then the test's override
    assert urls["api"]["ws"]["spot"] == f"{server.ws_url}/ws"
    assert_bars(server, collect(feed, server))


def test_unknown_symbol_is_a_config_error(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=3)
    feed = make_feed(server, symbols=["BTC/USDT", "DOGE/USDT"])
    with pytest.raises(ConfigError, match="no market DOGE/USDT"):
        collect(feed, server, symbols=["BTC/USDT"])


def test_gives_up_after_max_reconnects(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=3)
    urls = server.ccxt_urls()
    server.stop()  # nothing listens any more
    statuses: Statuses = []
    feed = make_feed(server, statuses, urls=urls, max_reconnects=2, backoff_cap_s=0.3)
    with pytest.raises(DataError, match="gave up after 2 reconnects"):
        collect(feed, server)
    assert [d["attempt"] for k, d in statuses if k == "reconnecting"] == [1, 2]


def test_credentials_never_reach_logs_statuses_or_errors(
    exchange: Callable[..., FakeBinance], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = exchange(n=3)
    key, secret = "KEY-8c1f2e77", "SECRET-5a0b9d31"
    server.fail_rest("/api/v3/exchangeInfo", 401, f'{{"code":-2015,"msg":"Invalid API-key {key} / {secret}"}}')
    statuses: Statuses = []
    feed = make_feed(server, statuses, credentials={"apiKey": key, "secret": secret})
    assert key not in repr(feed) and secret not in repr(feed)
    with pytest.raises(ConfigError) as error:
        collect(feed, server)
    message = str(error.value)
    assert "binance refused the feed" in message and "<redacted>" in message
    for text in (message, caplog.text, repr(statuses)):
        assert key not in text and secret not in text


def test_configuration_is_checked_before_connecting() -> None:
    with pytest.raises(ConfigError, match="unknown ccxt exchange"):
        CcxtFeed("no-such-exchange", PAIRS)
    with pytest.raises(ConfigError, match="no timeframe '7m'"):
        CcxtFeed("binance", PAIRS, "7m")
    with pytest.raises(ConfigError, match="no fixed length"):
        CcxtFeed("binance", PAIRS, "1M")
    with pytest.raises(ConfigError, match="unknown ccxt credential keys apikey"):
        CcxtFeed("binance", PAIRS, credentials={"apikey": "x"})
    with pytest.raises(ConfigError, match="shorter than stale_after_s"):
        CcxtFeed("binance", PAIRS, use_websocket=False, poll_interval_s=5.0, stale_after_s=5.0)
    with pytest.raises(ConfigError, match="bars from trades need"):
        CcxtFeed("binance", PAIRS, bars_from="trades", use_websocket=False)
    with pytest.raises(ConfigError, match="bars_from must be"):
        CcxtFeed("binance", PAIRS, bars_from="ticks")
    with pytest.raises(ValueError, match="listed twice"):
        CcxtFeed("binance", ["BTC/USDT", "BTC/USDT"])


def test_market_feed_properties_and_single_use() -> None:
    feed = CcxtFeed("binance", PAIRS, "5m", max_bars=0)
    assert isinstance(feed, LiveMarketFeed)
    assert feed.symbols == tuple(PAIRS)
    assert feed.kinds == {"BTC/USDT": frozenset({BAR}), "ETH/USDT": frozenset({BAR})}
    assert feed.intervals_ns == {"BTC/USDT": 300_000_000_000, "ETH/USDT": 300_000_000_000}
    assert feed.event_columns() is None
    assert feed.bars_from == "ohlcv" and CcxtFeed("binance", PAIRS, bars_from="candles").bars_from == "ohlcv"
    assert feed.signature == CcxtFeed("binance", PAIRS, "5m").signature
    assert feed.signature != CcxtFeed("binance", PAIRS, "1m").signature
    assert feed.signature != CcxtFeed("binance", PAIRS[::-1], "5m").signature
    assert feed.signature != CcxtFeed("kraken", PAIRS, "5m").signature
    assert list(feed.events()) == []  # max_bars=0: nothing, and no connection
    with pytest.raises(StateError):
        list(feed.events())
    with pytest.raises(ValueError):
        feed.events(-1)


def test_close_ends_events_from_another_thread(exchange: Callable[..., FakeBinance]) -> None:
    server = exchange(n=40)
    feed = make_feed(server)
    events = feed.events()
    first = next(events)
    closer = threading.Timer(0.05, feed.close)
    closer.start()
    rest = list(events)  # ends soon after close(), long before the 40 bars
    closer.join()
    assert first[0] == 0 and len(rest) < 10


def test_ready_says_whether_the_next_bar_is_at_hand_and_can_wait_for_it(
    exchange: Callable[..., FakeBinance],
) -> None:
    server = exchange(n=6)
    statuses: Statuses = []
    feed = make_feed(server, statuses)
    assert not feed.ready()  # nothing streams before events()
    final = {i: server.expected(s)[-1][0] for i, s in enumerate(PAIRS)}
    got: list[MarketEvent] = []
    waited: list[bool] = []
    timer = threading.Timer(TIMEOUT_S, feed.close)
    timer.daemon = True
    timer.start()
    events = feed.events()
    try:
        for event in events:
            got.append(event)
            if event[3] == final.get(event[2]):
                del final[event[2]]
                if not final:
                    break
            waited.append(feed.ready(5.0))  # a candle lasts 150 ms: the next bar comes meanwhile
    finally:
        events.close()  # type: ignore[attr-defined]
        timer.cancel()
        feed.close()
    assert_bars(server, got)
    assert waited and all(waited)
    assert kinds(statuses)[0] == "connected"  # statuses queued before a bar are reported by ready too
