"""Dashboard load: ``--clients`` authenticated clients poll the overview API of a real ``robohost serve`` over
HTTPS on loopback for ``--seconds``, while the same server replays a robot at full speed.

The home (a temporary folder) has ``--bars`` seeded synthetic one-minute bars and the SMA robot in manual mode;
the benchmark creates a user and an ``operate`` API token with ``robohost user``, starts ``robohost serve``,
asks it to run the robot through the API, waits until the replay is going (its data loaded), and starts the
clients: each its own keep-alive TLS connection (the home's CA pinned), each asking for
``/api/v1/robots/bench/overview`` every ``--interval`` seconds (a dashboard refreshes every few seconds; 0:
back to back, the worst case) with its token. Prints JSON lines: the load (requests, errors, requests/s,
p50/p90/p99/max latency in ms, the overview's size), the replay beside it (events processed during the load,
events/s, and whether it ran throughout), and a last line with the target (p99 < 50 ms) and ``pass``.

Run: ``python bench/dashboard_load.py`` (defaults: 50 clients, 30 s, polling every 1 s; ``--interval 0`` for
back-to-back requests). The client runs on the same two cores as the server: its own cost is in the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from robohost.adapters.feeds.synthetic import write_synthetic

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
ROBOT = "bench"
USER = "bench"
PASSWORD = "a benchmark password"
TARGET_P99_MS = 50.0
CONFIG = """
[serve]
tick_s = 0.5

[robots.bench]
strategy = "robohost.examples.sma_cross:SmaCross"
timezone = "UTC"
params = {{ fast = 10, slow = 30, qty = 10 }}

[robots.bench.data]
path = ["data/bars.parquet"]
speed = "max"

[robots.bench.schedule]
mode = "manual"
calendar = "24/7"

[robots.bench.schedule.jobs]
backup = "off"
verify = "off"
report = "off"
health = "off"

[web]
port = {port}
http_port = 0
"""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def robohost(home: Path, *args: str, stdin: str | None = None) -> str:
    """Run the ``robohost`` command on ``home``; raise on failure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOHOST_")}
    done = subprocess.run([ROBOHOST, "--home", str(home), *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=300, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"robohost {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def prepare(home: Path, bars: int, port: int) -> str:
    """The home with its data, a user and a token; returns the token."""
    (home / "data").mkdir(parents=True)
    write_synthetic(home / "data" / "bars.parquet", bars, symbol="SYN", seed=7)
    (home / "robohost.toml").write_text(CONFIG.format(port=port))
    robohost(home, "web", "cert")
    robohost(home, "user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
    return robohost(home, "user", "token", "add", USER, "--scope", "operate").strip().splitlines()[-1]


async def client(
    url: str, headers: dict[str, str], context: ssl.SSLContext, until: float, interval: float, out: list[float]
) -> tuple[int, int]:
    """Poll ``url`` until ``until`` (monotonic); append each latency (s) to ``out``; return (errors, bytes)."""
    errors = size = 0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(verify=context, headers=headers, limits=limits, timeout=10) as http:
        await http.get(url)  # connect (TLS handshake) before the measurement, as a dashboard left open has
        await asyncio.sleep(np.random.default_rng().uniform(0, max(interval, 0.05)))  # spread the requests
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                response = await http.get(url)
                took = time.perf_counter() - started
                if response.status_code == 200:
                    out.append(took)
                    size = len(response.content)
                else:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
                took = time.perf_counter() - started
            if interval > 0:
                await asyncio.sleep(max(0.0, interval - took))
    return errors, size


async def replay_progress(http: httpx.AsyncClient) -> tuple[str, str | None, int]:
    """The robot's status, its latest run and that run's events processed so far."""
    overview = (await http.get(f"/api/v1/robots/{ROBOT}/overview")).json()
    run = overview["run"] or {}
    return overview["status"]["status"], run.get("id"), int(run.get("events_processed") or 0)


async def start_replay(http: httpx.AsyncClient) -> None:
    """Ask for a run and wait (at most 120 s) until its replay has made progress: the data are loaded."""
    await http.post(f"/api/v1/robots/{ROBOT}/run")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, _, events = await replay_progress(http)
        if status == "running" and events > 0:
            return
        await asyncio.sleep(0.2)
    raise SystemExit("the replay did not start within 120 s")


async def load(
    base: str, token: str, context: ssl.SSLContext, clients: int, seconds: float, interval: float, replay: bool
) -> dict[str, Any]:
    """Run the clients (with ``replay``, while the robot replays at full speed); return the figures."""
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{base}/api/v1/robots/{ROBOT}/overview"
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, verify=context, headers=headers, timeout=30) as control:
        if replay:
            await start_replay(control)
        _, run_before, events_before = await replay_progress(control)
        start = time.monotonic()
        results = await asyncio.gather(
            *(client(url, headers, context, start + seconds, interval, latencies) for _ in range(clients))
        )
        elapsed = time.monotonic() - start
        status_after, run_after, events_after = await replay_progress(control)
    ms = np.array(latencies) * 1000
    replayed = events_after - events_before if replay and run_after == run_before else None
    return {
        "bench": "dashboard_load",
        "clients": clients,
        "seconds": round(elapsed, 2),
        "interval_s": interval,
        "requests": len(latencies),
        "errors": sum(e for e, _ in results),
        "requests_per_sec": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p90_ms": round(float(np.percentile(ms, 90)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        "max_ms": round(float(ms.max()), 2) if len(ms) else None,
        "overview_bytes": max((s for _, s in results), default=0),
        "replay": replay,
        "replay_ran_throughout": replay and status_after == "running" and run_after == run_before,
        "replay_events_during_load": replayed,
        "replay_events_per_sec": round(replayed / elapsed) if replayed is not None else None,
    }


def main() -> None:
    """Parse the options, run the benchmark, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a client's requests (0: none)")
    parser.add_argument("--bars", type=int, default=8_000_000, help="bars of the replay (enough to outlast the load)")
    parser.add_argument("--no-replay", action="store_true", help="measure the dashboard alone, without a replay")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="robohost-dashboard-load.") as folder:
        home = Path(folder) / "home"
        port = free_port()
        token = prepare(home, args.bars, port)
        context = ssl.create_default_context(cafile=str(home / "tls" / "ca.pem"))
        log = (Path(folder) / "serve.log").open("w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOHOST_")}
        server = subprocess.Popen([ROBOHOST, "--home", str(home), "serve"], stdout=log, stderr=subprocess.STDOUT,
                                  env=env)  # fmt: skip
        try:
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if server.poll() is not None:
                        raise SystemExit(
                            "robohost serve stopped: " + (Path(folder) / "serve.log").read_text()
                        ) from None
                    time.sleep(0.1)
            base = f"https://localhost:{port}"
            figures = asyncio.run(
                load(base, token, context, args.clients, args.seconds, args.interval, not args.no_replay)
            )
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
            log.close()
    print(json.dumps(figures))
    p99 = figures["p99_ms"]
    ok = p99 is not None and p99 < TARGET_P99_MS and figures["errors"] == 0
    ok = ok and (args.no_replay or figures["replay_ran_throughout"])
    print(json.dumps({"target_p99_ms": TARGET_P99_MS, "pass": ok}))


if __name__ == "__main__":
    main()
