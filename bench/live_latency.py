"""Live latency: from a bar's message arriving at the socket to the robot's order accepted, then durable.

A local Alpaca market-data server (``tests/fakes/alpaca.py``, the real protocol, msgpack over a websocket,
in its own process) streams closed one-minute bars of ``--symbols`` symbols at a steady ``--rate`` bars/s
(each minute's bars spread evenly over the next ``symbols / rate`` seconds of real time), for
``--seconds``. The real ``AlpacaFeed`` (alpaca-py's client) feeds a live ``PaperTrading`` run with the
journal in a writer process on SQLite (a file in a temporary directory) or ``--db URL``; the robot sends
a market order on every ``--every``-th bar of each symbol (buy when flat, sell when long).

A ``LatencyProbe`` records, per bar (by event number), three ``time.monotonic_ns()`` stamps:
arrival (the event loop read the message's bytes from the socket, before the websocket frame is parsed;
Alpaca's bars are final on arrival, so the message that brought the bar is the one that made it final),
accepted (the paper broker accepted the robot's order) and durable (the writer process committed the
transaction holding the order; SQLite in WAL mode with ``synchronous=NORMAL``, robohost's setting, so
"durable" means committed to the database file, safe from a crash of robohost, not yet fsynced against a
power cut). Prints JSON lines: the run (bars sent, received, dropped, orders), then the ``decision``
(arrival → accepted) and ``durable`` (arrival → committed) latencies in ms (p50, p99, max), the ``wire``
delay from the server's send to the arrival stamp (which the arrival stamp cannot see: waiting for the
GIL, the kernel), and a last line with the targets (decision p99 < 1 ms, durable p99 < 20 ms, no bar
dropped) and ``pass``. Run: ``make bench-live`` (or ``python bench/live_latency.py --seconds 5``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the local servers live in the test package: tests.fakes

from robohost import Bar, Context, Strategy  # noqa: E402

KEY_ID, SECRET = "bench-key-id", "bench-secret-key"
ROBOT = "bench-live"
TARGETS_MS = {"decision_p99_ms": 1.0, "durable_p99_ms": 20.0}
Stamps = npt.NDArray[np.int64]


class EveryKthBar(Strategy):
    """Send a market order on every ``every``-th bar of each symbol: buy ``qty`` when flat, sell it when long."""

    params = {"every": 1, "qty": 1}

    def on_start(self, ctx: Context) -> None:
        """Count bars per symbol."""
        self.bars = 0
        self.seen = dict.fromkeys(ctx.symbols, 0)

    def on_bar(self, bar: Bar, ctx: Context) -> None:
        """Trade on every ``every``-th bar of the symbol."""
        self.bars += 1
        symbol = bar.symbol
        n = self.seen[symbol] = self.seen[symbol] + 1
        if n % self.params["every"] == 0:
            if ctx.position(symbol) > 0:
                ctx.sell(symbol, self.params["qty"])
            else:
                ctx.buy(symbol, self.params["qty"])


class ArrayProbe:
    """A ``LatencyProbe`` writing into preallocated arrays indexed by event number (0: not seen)."""

    def __init__(self, capacity: int) -> None:
        self.arrival_ns: Stamps = np.zeros(capacity, dtype=np.int64)
        self.accepted_ns: Stamps = np.zeros(capacity, dtype=np.int64)
        self.durable_ns: Stamps = np.zeros(capacity, dtype=np.int64)
        self.received = 0
        self.orders = 0
        self._durable_through = -1
        self._capacity = capacity

    def arrived(self, seq: int, arrival_ns: int) -> None:
        """Note a bar's arrival."""
        self.received += 1
        if seq < self._capacity:
            self.arrival_ns[seq] = arrival_ns

    def accepted(self, seq: int) -> None:
        """Note the first accepted order of the bar, now."""
        now = time.monotonic_ns()
        self.orders += 1
        if seq < self._capacity and not self.accepted_ns[seq]:
            self.accepted_ns[seq] = now

    def committed(self, seq: int, commit_ns: int) -> None:
        """Note the commit time of every event up to ``seq`` not yet durable."""
        start, stop = self._durable_through + 1, min(seq + 1, self._capacity)
        if stop > start:
            self.durable_ns[start:stop] = commit_ns
        self._durable_through = max(self._durable_through, seq)


@dataclass(frozen=True)
class LiveRun:
    """What one benchmark run measured; the stamp arrays are indexed by event number."""

    db: str
    symbols: int
    rate: float
    seconds: float
    every: int
    warmup_bars: int  # the first bars, left out of the latency figures (process start-up, first connections)
    bars_sent: int
    bars_received: int  # by the robot (on_bar calls)
    orders_accepted: int
    send_seconds: float
    arrival: Stamps
    accepted: Stamps
    durable: Stamps
    sent: Stamps  # the server's stamp just before sending each bar, in sending order


def market_bars(symbols: int, minutes: int) -> Any:
    """Seeded one-minute bars of ``symbols`` symbols (S000, S001…), ``minutes`` each, liquid (volumes x100)."""
    import pandas as pd

    from robohost.adapters.feeds.synthetic import synthetic_bars

    frames = [synthetic_bars(minutes, symbol=f"S{k:03d}", seed=k, price=20.0 + k % 80) for k in range(symbols)]
    frame = pd.concat(frames, ignore_index=True)
    frame["volume"] *= 100
    return frame


def _serve_market(conn: Connection, symbols: int, minutes: int, minute_s: float) -> None:
    """The server process: play the bars steadily, report when done, stop when told."""
    from tests.fakes.alpaca import FakeAlpacaServer

    server = FakeAlpacaServer(
        market_bars(symbols, minutes), key_id=KEY_ID, secret_key=SECRET, minute_s=minute_s, steady=True
    )
    server.start()
    try:
        conn.send((server.url, server.rest_url))
        while not server.finished.wait(0.05):
            if conn.poll():  # the bench gave up early
                break
        conn.send((server.sent_bars, np.asarray(server.bar_send_ns, dtype=np.int64)))
        conn.recv()
    finally:
        server.stop()


@contextmanager
def _market(symbols: int, minutes: int, minute_s: float) -> Iterator[tuple[str, str, Connection]]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=_serve_market, args=(theirs, symbols, minutes, minute_s), name="fake-alpaca", daemon=True
    )
    process.start()
    theirs.close()
    try:
        if not ours.poll(60):
            raise RuntimeError("the fake Alpaca server did not start")
        url, rest_url = ours.recv()
        yield url, rest_url, ours
    finally:
        with suppress(OSError):
            ours.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)


def run_live(
    rate: float = 1000.0,
    symbols: int = 100,
    seconds: float = 20.0,
    db_url: str | None = None,
    every: int = 1,
    history: int = 0,
    warmup: float = 2.0,
) -> LiveRun:
    """Stream ``rate`` bars/s of ``symbols`` symbols for ``warmup`` + ``seconds`` into a live paper run; return
    the stamps (the first ``warmup`` seconds of bars are left out of the figures by ``report``)."""
    from robohost.adapters.db.engine import make_engine
    from robohost.adapters.db.journal import SqlJournal
    from robohost.adapters.db.migrate import upgrade
    from robohost.adapters.db.queries import ReadModel
    from robohost.adapters.db.writer import ProcessJournal
    from robohost.adapters.feeds.live.alpaca_feed import AlpacaFeed, alpaca_history
    from robohost.config.models import RobotConfig
    from robohost.services.paper import PaperTrading

    if rate <= 0 or symbols <= 0 or seconds <= 0 or every <= 0 or warmup < 0:
        raise ValueError("rate, symbols, seconds and every must be positive, warmup at least 0")
    minute_s = symbols / rate
    warmup_minutes = round(warmup / minute_s)
    minutes = warmup_minutes + max(1, round(seconds / minute_s))
    expected = minutes * symbols
    probe = ArrayProbe(expected + symbols)
    with tempfile.TemporaryDirectory() as tmp, _market(symbols, minutes, minute_s) as (url, rest_url, server):
        db = db_url or f"sqlite:///{tmp}/live.db"
        engine = make_engine(db)
        upgrade(engine)
        journal = SqlJournal(engine)
        names = [f"S{k:03d}" for k in range(symbols)]
        cfg = RobotConfig.model_validate(
            {
                "strategy": "bench.live_latency:EveryKthBar",
                "params": {"every": every, "qty": 1},
                "starting_cash": 1_000_000_000,
                "timezone": "UTC",
                "history": history,
                "data": {"source": "alpaca", "symbols": names, "url": url, "rest_url": rest_url},
                "fills": {"participation": 1.0},
            }
        )

        def make_feed(_cfg: RobotConfig) -> AlpacaFeed:
            feed = AlpacaFeed(
                names,
                key_id=KEY_ID,
                secret_key=SECRET,
                url_override=url,
                historical=alpaca_history(key_id=KEY_ID, secret_key=SECRET, url_override=rest_url),
            )
            feed.probe = probe
            return feed

        log = logging.getLogger("bench.live_latency")
        service = PaperTrading(
            ROBOT,
            cfg,
            journal,
            ReadModel(engine),
            make_feed,
            lambda _ref: EveryKthBar,
            log,
            open_writer=lambda: ProcessJournal(journal, db, probe=probe),
            probe=probe,
        )
        failure: list[BaseException] = []

        def trade() -> None:
            try:
                service.run("new")
            except BaseException as exc:  # reported below, in the main thread
                failure.append(exc)

        def received() -> int:
            """Bars the robot has seen (``on_bar`` calls)."""
            session = service.session
            return getattr(session.state.strategy, "bars", 0) if session is not None else 0

        runner = threading.Thread(target=trade, name="bench-live-run")
        runner.start()
        try:
            if not server.poll((warmup + seconds) * 3 + 60):
                raise RuntimeError("the fake Alpaca server did not finish sending")
            sent, send_ns = server.recv()
            deadline = time.monotonic() + 10.0
            while received() < sent and runner.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)  # the last bars are on their way; a dropped bar never comes
        finally:
            service.stop()
            runner.join(60)
            engine.dispose()
        if failure:
            raise failure[0]
        seen = received()
        send_seconds = (int(send_ns[-1]) - int(send_ns[0])) / 1e9 if len(send_ns) > 1 else 0.0
    return LiveRun(
        db="sqlite" if db_url is None else db_url.split(":", 1)[0],
        symbols=symbols,
        rate=rate,
        seconds=seconds,
        every=every,
        warmup_bars=warmup_minutes * symbols,
        bars_sent=int(sent),
        bars_received=seen,
        orders_accepted=probe.orders,
        send_seconds=send_seconds,
        arrival=probe.arrival_ns[: probe.received].copy(),
        accepted=probe.accepted_ns[: probe.received].copy(),
        durable=probe.durable_ns[: probe.received].copy(),
        sent=send_ns,
    )


def _figures(name: str, source: str, target: str, delays_ns: Stamps) -> dict[str, object]:
    ms = delays_ns.astype(np.float64) / 1e6
    if not len(ms):
        return {"latency": name, "from": source, "to": target, "count": 0}
    return {
        "latency": name,
        "from": source,
        "to": target,
        "count": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def report(run: LiveRun) -> list[dict[str, object]]:
    """The JSON lines of one run: the run, the decision, durable and wire latencies, the targets."""
    traded = (run.arrival > 0) & (run.accepted > 0)
    traded[: run.warmup_bars] = False
    decision = _figures("decision", "arrival", "accepted", (run.accepted - run.arrival)[traded])
    done = traded & (run.durable > 0)
    durable = _figures("durable", "arrival", "committed", (run.durable - run.arrival)[done])
    lines: list[dict[str, object]] = [
        {
            "bench": "live_latency",
            "db": run.db,
            "symbols": run.symbols,
            "rate_bars_per_sec": run.rate,
            "seconds": run.seconds,
            "every": run.every,
            "warmup_bars": run.warmup_bars,
            "bars_sent": run.bars_sent,
            "bars_received": run.bars_received,
            "dropped": run.bars_sent - run.bars_received,
            "orders_accepted": run.orders_accepted,
            "sent_bars_per_sec": round((run.bars_sent - 1) / run.send_seconds) if run.send_seconds else None,
        },
        decision,
        durable,
    ]
    if len(run.arrival) == run.bars_sent == len(run.sent):  # one connection, in order: the k-th sent is seq k
        wire = (run.arrival - run.sent)[run.warmup_bars :]
        lines.append(_figures("wire", "server send", "arrival", wire))
    dropped = run.bars_sent - run.bars_received
    passed = {
        "decision_p99_ms": _p99(decision) < TARGETS_MS["decision_p99_ms"],
        "durable_p99_ms": _p99(durable) < TARGETS_MS["durable_p99_ms"],
        "dropped": dropped == 0,
    }
    targets: dict[str, dict[str, object]] = {
        "decision_p99_ms": {"target": TARGETS_MS["decision_p99_ms"], "measured": decision.get("p99_ms")},
        "durable_p99_ms": {"target": TARGETS_MS["durable_p99_ms"], "measured": durable.get("p99_ms")},
        "dropped": {"target": 0, "measured": dropped},
    }
    for key, ok in passed.items():
        targets[key]["pass"] = ok
    lines.append({"targets": targets, "pass": all(passed.values())})
    return lines


def _p99(figures: dict[str, object]) -> float:
    value = figures.get("p99_ms")
    return float(value) if isinstance(value, int | float) else math.inf  # no measurement: no pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="bars per second, all symbols together")
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds of bars")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of bars first, left out of the figures")
    parser.add_argument("--every", type=int, default=1, help="trade on every k-th bar of each symbol")
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary directory)")
    parser.add_argument("--history", type=int, default=0, help="bars of history kept per symbol (robot config)")
    args = parser.parse_args()
    run = run_live(args.rate, args.symbols, args.seconds, args.db, args.every, args.history, args.warmup)
    for line in report(run):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
