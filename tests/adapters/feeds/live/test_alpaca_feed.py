"""AlpacaFeed against the fake Alpaca server, through the real alpaca-py client (msgpack on the wire).

Each test plays a small market (two symbols, a dozen minutes, some minutes without bars) at 20 ms per
minute, with scripted faults, and checks the events the engine would see and what the feed reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgpack
import pandas as pd
import pytest
from websockets.sync.client import connect

from fakes.alpaca import FakeAlpacaServer
from robohost.adapters.feeds.live.alpaca_feed import AlpacaFeed, _ts_ns, alpaca_history
from robohost.adapters.feeds.synthetic import synthetic_bars
from robohost.domain.market import BAR
from robohost.domain.values import NS_PER_MINUTE, NS_PER_SECOND
from robohost.engine.ports import MarketEvent
from robohost.errors import ConfigError, StateError

SYMBOLS = ["AAA", "BBB"]
KEY_ID = "AKFAKEKEYID0042"
SECRET = "s3cr3t-Value-that-must-not-leak"
DEADLINE_S = 10.0
"""Longest a test waits for a stream; a timer closes the feed then, so no test can hang."""


def market(minutes: int = 12) -> pd.DataFrame:
    """Bars of SYMBOLS over ``minutes`` minutes; minute 4 has no bar at all (no trades), AAA none at minute 7."""
    absent = {("AAA", 4), ("BBB", 4), ("AAA", 7)}
    frames = [synthetic_bars(minutes, symbol=s, seed=i + 1, price=100.0 * (i + 1)) for i, s in enumerate(SYMBOLS)]
    frame = pd.concat(frames, ignore_index=True)
    minute = ((frame["ts"] - frame["ts"].min()) // pd.Timedelta("1min")).astype(int)
    keep = [(s, m) not in absent for s, m in zip(frame["symbol"], minute, strict=True)]
    return frame[keep].reset_index(drop=True)


def expected(frame: pd.DataFrame, start_seq: int = 0, skip: set[tuple[str, int]] | None = None) -> list[MarketEvent]:
    """The events of ``frame`` in time order (ties by symbol index), without ``skip`` (symbol, minute)."""
    first = frame["ts"].min()
    rows = []
    for row in frame.itertuples(index=False):
        if skip and (row.symbol, (row.ts - first) // pd.Timedelta("1min")) in skip:
            continue
        idx = SYMBOLS.index(row.symbol)
        rows.append((BAR, idx, row.ts.value, row.open, row.high, row.low, row.close, float(row.volume)))
    rows.sort(key=lambda r: (r[2], r[1]))
    return [(start_seq + i, *r) for i, r in enumerate(rows)]


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeAlpacaServer]]:
    """Start fake servers (credentials KEY_ID/SECRET) and stop them after the test."""
    servers: list[FakeAlpacaServer] = []

    def start(frame: pd.DataFrame | None = None, **options: Any) -> FakeAlpacaServer:
        fake = FakeAlpacaServer(market() if frame is None else frame, key_id=KEY_ID, secret_key=SECRET, **options)
        servers.append(fake.start())
        return fake

    yield start
    for fake in servers:
        fake.stop()


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    yield
    assert not [t.name for t in threading.enumerate() if t.name.startswith("alpaca-")]


class Recorder:
    """An on_status hook that keeps every report."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, details: Any) -> None:
        self.reports.append((kind, dict(details)))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.reports]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [details for k, details in self.reports if k == kind]


def rest(fake: FakeAlpacaServer, secret_key: str = SECRET) -> Callable[[str, int, int], Any]:
    """Gap fill over the fake's REST endpoint, through alpaca-py's historical client."""
    return alpaca_history(key_id=KEY_ID, secret_key=secret_key, url_override=fake.rest_url)


def make_feed(fake: FakeAlpacaServer, recorder: Recorder | None = None, **options: Any) -> AlpacaFeed:
    options.setdefault("url_override", fake.url)
    options.setdefault("clock", fake.now_ns)
    return AlpacaFeed(SYMBOLS, key_id=KEY_ID, secret_key=SECRET, on_status=recorder, backoff_s=(0.02, 0.1), **options)


def collect(
    feed: AlpacaFeed, start_seq: int = 0, until: Callable[[MarketEvent], bool] | None = None
) -> list[MarketEvent]:
    """Iterate ``feed.events`` to its end (or the first event ``until`` accepts); a timer bounds the wait."""
    timer = threading.Timer(DEADLINE_S, feed.close)
    timer.start()
    events = []
    try:
        with contextlib.closing(feed.events(start_seq)) as stream:
            for event in stream:
                events.append(event)
                if until is not None and until(event):
                    break
    finally:
        timer.cancel()
    return events


def per_symbol_increasing(events: list[MarketEvent]) -> bool:
    last: dict[int, int] = {}
    for _, _, idx, ts, *_ in events:
        if ts <= last.get(idx, -1):
            return False
        last[idx] = ts
    return True


def test_handshake_auth_subscribe_in_msgpack_then_bars_in_order(serve: Callable[..., FakeAlpacaServer]) -> None:
    frame = market()
    fake = serve(frame)
    recorder = Recorder()
    want = expected(frame, start_seq=7)
    events = collect(make_feed(fake, recorder, max_bars=len(want)), start_seq=7)

    assert events == want  # the frame's values, labelled by the bar's start, numbered from start_seq
    assert fake.content_types == ["application/msgpack"]
    assert fake.paths == ["/v2/iex"]
    assert fake.requests[0] == (1, {"action": "auth", "key": KEY_ID, "secret": "***"})
    assert fake.requests[1][1]["action"] == "subscribe"
    assert fake.requests[1][1]["bars"] == SYMBOLS
    assert recorder.kinds() == ["connected", "subscribed"]


def test_feed_describes_itself_and_validates_its_options() -> None:
    feed = AlpacaFeed(SYMBOLS, key_id=KEY_ID, secret_key=SECRET)
    assert list(feed.symbols) == SYMBOLS
    assert dict(feed.kinds) == {s: frozenset({BAR}) for s in SYMBOLS}
    assert dict(feed.intervals_ns) == {s: NS_PER_MINUTE for s in SYMBOLS}
    assert feed.event_columns() is None
    assert feed.signature == hashlib.sha256(repr(("alpaca", "iex", tuple(SYMBOLS))).encode()).hexdigest()
    assert feed.signature != AlpacaFeed(SYMBOLS, key_id=KEY_ID, secret_key=SECRET, feed="sip").signature
    assert feed.signature != AlpacaFeed(["AAA"], key_id=KEY_ID, secret_key=SECRET).signature
    for text in (repr(feed), str(vars(feed))):
        assert SECRET not in text and KEY_ID not in text
    with pytest.raises(ConfigError, match="unknown Alpaca feed"):
        AlpacaFeed(SYMBOLS, key_id=KEY_ID, secret_key=SECRET, feed="otc")
    with pytest.raises(ConfigError, match="secret key"):
        AlpacaFeed(SYMBOLS, key_id=KEY_ID, secret_key="")
    with pytest.raises(ConfigError, match="twice"):
        AlpacaFeed(["AAA", "AAA"], key_id=KEY_ID, secret_key=SECRET)
    with pytest.raises(ConfigError, match="at least one symbol"):
        AlpacaFeed([], key_id=KEY_ID, secret_key=SECRET)


def test_refused_login_is_a_clear_config_error_without_the_credentials(
    serve: Callable[..., FakeAlpacaServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = serve()
    recorder = Recorder()
    feed = AlpacaFeed(
        SYMBOLS,
        key_id=KEY_ID,
        secret_key="wrong-" + SECRET,
        url_override=fake.url,
        on_status=recorder,
        backoff_s=(0.02, 0.1),
    )
    with pytest.raises(ConfigError, match="auth failed") as caught:
        collect(feed)

    message = str(caught.value)
    assert "credentials" in message and "secrets.toml" in message
    assert SECRET not in message and KEY_ID not in message
    assert caught.value.__cause__ is None
    assert fake.connections == 1  # refused once, not retried forever
    assert recorder.of("auth_error") == [{"reason": "auth failed"}]
    assert SECRET not in caplog.text and KEY_ID not in caplog.text


def test_sip_feed_streams_from_v2_sip_or_says_the_plan_lacks_it(serve: Callable[..., FakeAlpacaServer]) -> None:
    frame = market(minutes=6)
    fake = serve(frame)
    want = expected(frame)
    assert collect(make_feed(fake, feed="sip", url_override=fake.url_for("sip"), max_bars=len(want))) == want
    assert fake.paths == ["/v2/sip"]

    no_sip = serve(frame, sip_allowed=False)
    with pytest.raises(ConfigError, match=r'insufficient subscription.*feed = "iex"'):
        collect(make_feed(no_sip, feed="sip", url_override=no_sip.url_for("sip")))


def test_drop_mid_stream_reconnects_resubscribes_and_fills_the_gap(serve: Callable[..., FakeAlpacaServer]) -> None:
    frame = market(minutes=16)
    fake = serve(frame, faults={3: "drop"})
    recorder = Recorder()
    want = expected(frame)
    events = collect(make_feed(fake, recorder, historical=rest(fake), max_bars=len(want)))

    assert events == want  # every bar exactly once, in order: the gap filled from REST, live copies dropped
    assert fake.connections == 2
    assert {r["symbols"] for r in fake.rest_requests} == set(SYMBOLS)
    assert all(r["timeframe"] == "1Min" and r["feed"] == "iex" for r in fake.rest_requests)
    assert fake.subscribed(1) == fake.subscribed(2) == SYMBOLS
    assert [r for r in recorder.kinds() if r in ("connected", "reconnected", "subscribed")] == [
        "connected",
        "subscribed",
        "reconnected",
        "subscribed",
    ]
    assert len(recorder.of("gap_filled")) == 1
    assert "duplicate_bar_dropped" not in recorder.kinds()


def test_when_the_gap_fill_fails_a_drop_loses_minutes_but_never_order(serve: Callable[..., FakeAlpacaServer]) -> None:
    frame = market(minutes=24)
    fake = serve(frame, faults={2: "drop"})
    recorder = Recorder()
    last = expected(frame)[-1]
    refused = rest(fake, secret_key="wrong-" + SECRET)
    events = collect(make_feed(fake, recorder, historical=refused), until=lambda e: e[2:4] == last[2:4])

    assert events[-1][1:] == last[1:]  # the stream went on to the end after the reconnect
    assert per_symbol_increasing(events)
    assert {e[1:] for e in events} <= {e[1:] for e in expected(frame)}
    assert [e[0] for e in events] == list(range(len(events)))
    failures = recorder.of("gap_fill_failed")
    assert [d["symbol"] for d in failures] == SYMBOLS
    assert all(d["error"].startswith("APIError") and "unauthorized" in d["error"] for d in failures)
    assert not any(SECRET in d["error"] for d in failures)
    assert fake.connections == 2


def test_malformed_frames_and_bars_are_survived_without_reconnecting(serve: Callable[..., FakeAlpacaServer]) -> None:
    frame = market()
    fake = serve(frame, faults={3: "malformed", 5: "bad_bar"})
    recorder = Recorder()
    want = expected(frame)
    assert collect(make_feed(fake, recorder, max_bars=len(want))) == want
    assert fake.connections == 1
    assert [(d["symbol"], d["error"]) for d in recorder.of("malformed_message")] == [
        ("AAA", "ValueError"),
        ("BBB", "ValueError"),
    ]


@pytest.mark.parametrize(
    ("wire", "ns"),
    [
        ("2021-02-22T19:15:00Z", 1614021300 * NS_PER_SECOND),
        ("2021-02-22T19:15:00.123456789Z", 1614021300 * NS_PER_SECOND + 123456789),
        ("2021-02-22T14:15:00.5-05:00", 1614021300 * NS_PER_SECOND + 500_000_000),
        (msgpack.Timestamp(1614021300, 7), 1614021300 * NS_PER_SECOND + 7),
        (datetime(2021, 2, 22, 19, 15, 0, 250, tzinfo=UTC), 1614021300 * NS_PER_SECOND + 250_000),
    ],
)
def test_wire_times_are_read_to_the_nanosecond(wire: Any, ns: int) -> None:
    assert _ts_ns(wire) == ns


def test_updated_bars_are_never_applied_only_reported(serve: Callable[..., FakeAlpacaServer]) -> None:
    frame = market()
    fake = serve(frame, faults={2: ["updated", "halt"], 5: "updated"})
    recorder = Recorder()
    want = expected(frame)
    assert collect(make_feed(fake, recorder, max_bars=len(want))) == want  # the original values

    ignored = recorder.of("updated_bar_ignored")
    first = int(frame["ts"].min().value)
    assert sorted((d["symbol"], (d["ts"] - first) // NS_PER_MINUTE) for d in ignored) == [
        ("AAA", 2),
        ("AAA", 5),
        ("BBB", 2),
        ("BBB", 5),
    ]
    assert all(d["seen"] for d in ignored)
    halts = recorder.of("trading_status")
    assert sorted(d["symbol"] for d in halts) == SYMBOLS
    assert {(d["code"], d["reason_code"]) for d in halts} == {("H", "T12")}


def test_duplicate_and_out_of_order_bars_are_dropped_and_counted(serve: Callable[..., FakeAlpacaServer]) -> None:
    frame = market()
    fake = serve(frame, faults={2: "duplicate", 5: "out_of_order"})
    recorder = Recorder()
    feed = make_feed(fake, recorder)
    last = expected(frame)[-1]
    events = collect(feed, until=lambda e: e[2:4] == last[2:4])

    # minute 5's bars arrive after minute 6's: both symbols had a bar at 6, so both are dropped
    assert [e[1:] for e in events] == [e[1:] for e in expected(frame, skip={("AAA", 5), ("BBB", 5)})]
    assert [d["symbol"] for d in recorder.of("duplicate_bar_dropped")] == SYMBOLS
    assert [d["symbol"] for d in recorder.of("out_of_order_bar_dropped")] == SYMBOLS
    assert feed.stats["duplicate_bar_dropped"] == feed.stats["out_of_order_bar_dropped"] == 2
    assert feed.stats["bars"] == len(events)


def test_slow_client_error_is_reported_then_the_feed_reconnects(serve: Callable[..., FakeAlpacaServer]) -> None:
    frame = market()
    fake = serve(frame, faults={3: "slow_client"})
    recorder = Recorder()
    want = expected(frame)
    assert collect(make_feed(fake, recorder, historical=fake.historical_bars, max_bars=len(want))) == want
    assert recorder.of("stream_error") == [{"code": 407, "msg": "slow client"}]
    assert "reconnected" in recorder.kinds()


def test_a_stalled_socket_is_replaced_after_stall_timeout(serve: Callable[..., FakeAlpacaServer]) -> None:
    frame = market(minutes=30)
    fake = serve(frame, faults={3: "stall"})
    recorder = Recorder()
    want = expected(frame)
    feed = make_feed(fake, recorder, historical=fake.historical_bars, max_bars=len(want), stall_timeout_s=0.2)
    assert collect(feed) == want
    assert fake.connections == 2
    assert "reconnected" in recorder.kinds()


def test_close_from_another_thread_ends_events_and_the_feed_stays_closed(
    serve: Callable[..., FakeAlpacaServer],
) -> None:
    frame = market(minutes=4)
    fake = serve(frame)
    feed = make_feed(fake)
    closer = threading.Thread(target=lambda: fake.finished.wait(DEADLINE_S) and feed.close())
    closer.start()
    events = collect(feed)  # no max_bars: only close() ends it
    closer.join(DEADLINE_S)
    assert fake.finished.is_set()
    assert len(events) <= len(expected(frame))
    with pytest.raises(StateError, match="streamed already"):
        next(feed.events(0))
    unused = make_feed(fake)
    unused.close()
    assert list(unused.events(0)) == []


def test_events_runs_once_per_feed_and_a_failing_status_hook_is_harmless(
    serve: Callable[..., FakeAlpacaServer], caplog: pytest.LogCaptureFixture
) -> None:
    frame = market(minutes=3)
    fake = serve(frame)

    def failing(kind: str, details: Any) -> None:
        raise ValueError("hook bug")

    want = expected(frame)
    feed = AlpacaFeed(
        SYMBOLS, key_id=KEY_ID, secret_key=SECRET, url_override=fake.url, on_status=failing, max_bars=len(want)
    )
    first = feed.events(0)
    assert next(first) == want[0]
    with pytest.raises(StateError, match="streamed already"):
        next(feed.events(0))
    assert [want[0], *first] == want
    assert "on_status hook failed" in caplog.text


def test_resume_fills_from_rest_the_bars_since_the_last_one_processed(serve: Callable[..., FakeAlpacaServer]) -> None:
    frame = market()
    fake = serve(frame, start_at=6)  # the market is at minute 6 when the feed connects
    recorder = Recorder()
    first = int(frame["ts"].min().value)
    want = expected(frame, skip={(s, m) for s in SYMBOLS for m in range(3)})
    feed = make_feed(fake, recorder, historical=rest(fake), max_bars=len(want))
    feed.resume_after_ts(first + 2 * NS_PER_MINUTE)  # the engine processed minute 2 last
    assert [e[1:] for e in collect(feed)] == [e[1:] for e in want]
    assert recorder.of("gap_filled")[0]["bars"] >= 4  # minutes 3 and 5 of both (4 has none), maybe 6 too
    with pytest.raises(StateError):
        feed.resume_after_ts(0)


def test_credentials_never_appear_in_logs(
    serve: Callable[..., FakeAlpacaServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the websocket frame dumps included
    frame = market()
    fake = serve(frame, faults={2: "drop", 4: "malformed", 6: "slow_client"})
    want = expected(frame)
    assert collect(make_feed(fake, historical=rest(fake), max_bars=len(want))) == want
    assert fake.rest_requests  # the REST gap fill ran too
    with pytest.raises(ConfigError):
        collect(AlpacaFeed(SYMBOLS, key_id=KEY_ID, secret_key=SECRET + "x", url_override=fake.url))

    assert "frame of" in caplog.text  # the wire was logged, by size only
    logged = caplog.text + "".join(str(r.args) + str(r.exc_text) for r in caplog.records)
    for secret in (SECRET, KEY_ID):
        for form in (secret, secret.encode().hex(), " ".join(f"{b:02x}" for b in secret.encode()[:8])):
            assert form not in logged


def test_the_fake_speaks_json_to_a_client_without_msgpack(serve: Callable[..., FakeAlpacaServer]) -> None:
    fake = serve(market(minutes=3), minute_s=0.3)

    def reply(ws: Any, message: dict[str, Any] | str | None = None) -> list[dict[str, Any]]:
        if message is not None:
            ws.send(message if isinstance(message, str) else json.dumps(message))
        return json.loads(ws.recv(timeout=2))

    with connect(fake.url) as ws:
        assert reply(ws) == [{"T": "success", "msg": "connected"}]
        assert reply(ws, {"action": "subscribe", "bars": ["AAA"]}) == [
            {"T": "error", "code": 401, "msg": "not authenticated"}
        ]
        assert reply(ws, {"action": "auth", "key": KEY_ID, "secret": "no"})[0]["code"] == 402
        assert reply(ws, {"action": "auth", "key": KEY_ID, "secret": SECRET}) == [
            {"T": "success", "msg": "authenticated"}
        ]
        assert reply(ws, {"action": "auth", "key": KEY_ID, "secret": SECRET})[0]["code"] == 403
        assert reply(ws, "{oops")[0] == {"T": "error", "code": 400, "msg": "invalid syntax"}
        first = reply(ws, {"action": "subscribe", "trades": ["AAA"], "bars": ["AAA", "BBB"]})[0]
        assert first["T"] == "subscription" and first["trades"] == ["AAA"] and first["bars"] == ["AAA", "BBB"]
        second = reply(ws, {"action": "unsubscribe", "bars": ["BBB"]})[0]
        assert second["bars"] == ["AAA"] and second["trades"] == ["AAA"]  # always the whole set
        trades, bars = reply(ws), reply(ws)  # mid-minute trades, then the bars once the minute is over

    assert [t["T"] for t in trades] == ["t", "t"] and {t["S"] for t in trades} == {"AAA"}
    assert {"i", "x", "p", "s", "t", "c", "z"} <= set(trades[0])
    assert [(b["T"], b["S"]) for b in bars] == [("b", "AAA")]
    assert bars[0]["t"].endswith("Z") and pd.Timestamp(bars[0]["t"]) == market()["ts"].min()  # labelled by start
    assert {"o", "h", "l", "c", "v", "n", "vw"} <= set(bars[0])
    assert [r[1]["secret"] for r in fake.requests if r[1]["action"] == "auth"] == ["***"] * 3


class Arrivals:
    """The feed's part of a latency probe: the arrival stamp of each bar, by event number."""

    def __init__(self) -> None:
        self.stamps: dict[int, int] = {}

    def arrived(self, seq: int, arrival_ns: int) -> None:
        self.stamps[seq] = arrival_ns

    def accepted(self, seq: int) -> None:
        raise AssertionError("a feed reports arrivals only")

    def committed(self, seq: int, commit_ns: int) -> None:
        raise AssertionError("a feed reports arrivals only")


def test_a_probe_gets_each_bars_arrival_and_ready_tells_what_is_at_hand(
    serve: Callable[..., FakeAlpacaServer],
) -> None:
    frame = market()
    fake = serve(frame)
    want = expected(frame)
    feed = make_feed(fake, max_bars=len(want))
    probe = Arrivals()
    feed.probe = probe
    assert not feed.ready()  # nothing streams before events()
    before = time.monotonic_ns()
    events: list[MarketEvent] = []
    yielded: list[int] = []
    at_hand: list[bool] = []
    timer = threading.Timer(DEADLINE_S, feed.close)
    timer.start()
    try:
        with contextlib.closing(feed.events()) as stream:
            for event in stream:
                yielded.append(time.monotonic_ns())
                events.append(event)
                at_hand.append(feed.ready())
                if len(events) == 2:  # the last bar of the first minute
                    assert feed.ready(2.0)  # waits for the next minute's message
    finally:
        timer.cancel()
    assert events == want
    assert sorted(probe.stamps) == list(range(len(want)))
    assert all(before < probe.stamps[seq] <= yielded[seq] for seq in range(len(want)))
    for seq in range(len(want) - 1):
        if want[seq][3] == want[seq + 1][3]:  # one minute's bars come in one message
            assert probe.stamps[seq] == probe.stamps[seq + 1] and at_hand[seq]
