"""The Prometheus endpoint of ``robohost serve``: a server steps through simulated hours (a replay session, health
checks), then ``/metrics`` is scraped over HTTP with basic authentication, as Prometheus would."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from observability_support import free_port
from robohost.adapters.db.jobs import JobStore
from robohost.adapters.feeds.synthetic import write_synthetic
from robohost.bootstrap import App, open_app
from robohost.services.server.clock import SimulatedClock

BARS = 300
PASSWORD = "metrics-Passw0rd-1a2b"
CONFIG = """
[database]
url = "{url}"

[metrics]
port = {port}
username = "prom"

[robots.bot]
strategy = "robohost.examples.sma_cross:SmaCross"
timezone = "UTC"
params = {{ fast = 3, slow = 8, qty = 10 }}

[robots.bot.data]
path = ["data/bars.parquet"]

[robots.bot.schedule]
mode = "auto"
calendar = "24/7"
session_start = "open + 1h"
session_end = "close - 1h"

[robots.bot.schedule.jobs]
health = "*/30 * * * *"
backup = "off"
verify = "off"
report = "off"
weekly_report = "off"
"""


@pytest.fixture
def app(tmp_path: Path, db_url: str) -> Iterator[App]:
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    write_synthetic(home / "data" / "bars.parquet", BARS, symbol="SYN", seed=3)
    (home / "robohost.toml").write_text(CONFIG.format(url=db_url, port=free_port()))
    secrets = home / "secrets.toml"
    secrets.write_text(f'[metrics]\npassword = "{PASSWORD}"\n')
    secrets.chmod(0o600)
    opened = open_app(home)
    try:
        yield opened
    finally:
        opened.close()


def _get(url: str, user: str | None = None, password: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if user is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_a_scrape_shows_the_engine_the_jobs_and_the_health(app: App) -> None:
    start = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    server = app.server(SimulatedClock(start, start + timedelta(hours=2)), tick_s=3600)
    server.serve()
    port = app.home.config.metrics.port
    url = f"http://127.0.0.1:{port}/metrics"
    assert _get(url)[0] == 401, "no scrape without the password"
    assert _get(url, "prom", "wrong")[0] == 401
    status, text = _get(url, "prom", PASSWORD)
    assert status == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip
    bot = (("robot", "bot"),)
    run = app.read.latest_run("bot")
    assert run is not None and run.status == "completed"
    fills = len(app.read.fills("bot"))
    assert samples[("robohost_events_total", bot)] == BARS
    assert samples[("robohost_fills_total", bot)] == fills > 0
    assert samples[("robohost_orders_total", bot)] >= fills / 2
    assert ("robohost_order_rejections_total", bot) in samples
    assert samples[("robohost_equity", bot)] == pytest.approx(app.read.equity("bot")[-1].equity)
    assert samples[("robohost_pnl", bot)] == pytest.approx(samples[("robohost_equity", bot)] - 100_000)
    assert samples[("robohost_jobs_total", (("job", "session"), ("outcome", "ok"), ("robot", "bot")))] == 1
    health = {dict(labels)["outcome"]: v for (name, labels), v in samples.items()
              if name == "robohost_jobs_total" and ("job", "health") in labels}  # fmt: skip
    rows = [r for r in JobStore(app.engine).history("bot", 100) if r.job == "health"]
    assert health.get("ok", 0) == sum(r.outcome == "ok" for r in rows) and len(rows) >= 4, (health, rows)
    assert samples[("robohost_health_check_level", (("check", "robot:bot"),))] == 0
    assert "process_resident_memory_bytes" in text and "robohost_backup_age_seconds" in text
    assert PASSWORD not in text
