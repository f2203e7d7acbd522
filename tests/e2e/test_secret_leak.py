"""No secret anywhere: a full ``robohost serve`` session with known secret values in ``secrets.toml`` and the
environment, each of them used for real — the Alpaca credentials against the local fake Alpaca server, the SMTP
password against an aiosmtpd server (STARTTLS, AUTH), webhook tokens (Slack URL, Telegram bot token, ntfy bearer),
the metrics password, dashboard sign-ins with a wrong and the right password, a backup (with an SSH key
passphrase configured) — while every record also goes to a real rsyslog over TLS. Then every file under the
robot home, a dump of every table of the database, the collector's files, the server's output, the reports (PDFs
as text) and the e-mails and webhook bodies are searched for every secret value: none appears.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pyrage
import sqlalchemy as sa

from fakes.alpaca import FakeAlpacaServer
from observability_support import Collector, SmtpSink, WebhookSink, free_port, make_pki, wait_for
from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.jobs import JobStore, RequestStore
from robohost.adapters.db.lease import read_lease
from robohost.adapters.feeds.synthetic import synthetic_bars
from system import need_program

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
SECRETS = {
    "alpaca key id": "PKLEAKTEST7Q2W3E4R5T",
    "alpaca secret": "alpaca-Secret-3c2b1a0f9e8d7c6b",
    "smtp password": "smtp-Passw0rd-e5f6a7b8",
    "slack token": "slackTOKEN9a8b7c6d5e4f",
    "telegram token": "987654321:AAF-telegram-Tok3n-b1c2",
    "ntfy token": "tk_ntfyLEAK0a1b2c3d4e5",
    "ssh key passphrase": "ssh-Passphrase-77a6b5c4",
    "metrics password": "metrics-Passw0rd-d4c3b2",
    "web password": "Owner-passw0rd-long-8d7c",
    "wrong web password": "Wrong-passw0rd-guess-1f2e",
}
MINUTES = 40
CONFIG = """
[serve]
tick_s = 0.2
stop_timeout_s = 20

[web]
port = {web_port}
http_port = 0
login_delay_s = 0

[metrics]
port = {metrics_port}
username = "prom"

[logging.remote]
host = "127.0.0.1"
port = {syslog_port}
ca = "{pki}/ca.pem"
cert = "{pki}/client.pem"
key = "{pki}/client.key"
server_name = "localhost"

[backup]
recipients = ["{recipient}"]
targets = ["backups"]

[health]
disk_free_percent_warn = 99.999
disk_free_percent_critical = 0
cpu_load_warn = 1000
cpu_load_critical = 1000
memory_percent_warn = 100
memory_percent_critical = 100
feed_lag_s_warn = 1e10  # the fake Alpaca server plays bars of 2024
feed_lag_s_critical = 1e10

[alerts]
retries = 1
retry_delay_s = 0.2

[alerts.trading]
fills = true
halts = true
daily_summary = true

[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
from = "robohost@example.com"
to = ["owner@example.com"]
username = "alerts"
ca = "{pki}/ca.pem"
level = "info"
trading = true

[[alerts.webhooks]]
name = "team"
kind = "slack"
level = "info"
trading = true

[[alerts.webhooks]]
name = "phone"
kind = "telegram"
url = "{hooks}/tg"
chat_id = "42"
level = "warning"

[[alerts.webhooks]]
name = "ntfy"
kind = "ntfy"
url = "{hooks}/ntfy/robohost"
level = "warning"

[robots.bot]
strategy = "robohost.examples.sma_cross:SmaCross"
timezone = "UTC"
params = {{ fast = 3, slow = 8, qty = 10 }}

[robots.bot.data]
source = "alpaca"
symbols = ["AAA", "BBB"]
url = "{alpaca_url}"
rest_url = "{alpaca_rest}"

[robots.bot.schedule]
mode = "manual"
calendar = "24/7"

[robots.bot.schedule.jobs]
health = "off"
backup = "off"
verify = "off"
report = "off"
weekly_report = "off"
"""
SECRETS_TOML = f"""
[feeds.alpaca]
key_id = "{SECRETS["alpaca key id"]}"
secret_key = "{SECRETS["alpaca secret"]}"

[alerts.email]
password = "{SECRETS["smtp password"]}"

[alerts.webhooks.team]
url = "{{hooks}}/services/T0001/B0002/{SECRETS["slack token"]}"

[alerts.webhooks.ntfy]
token = "{SECRETS["ntfy token"]}"

[backup]
ssh_key_passphrase = "{SECRETS["ssh key passphrase"]}"
"""


def _bars() -> pd.DataFrame:
    frames = [synthetic_bars(MINUTES, symbol=s, seed=k, price=p) for k, (s, p) in enumerate([("AAA", 50), ("BBB", 90)])]
    return pd.concat(frames, ignore_index=True)


def _events(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT max(events_processed) FROM runs WHERE robot = 'bot'")).scalar() or 0)


def _job(engine: sa.Engine, name: str) -> str:
    """Ask the server for a chore (as ``robohost trigger job`` does) and wait until it has ended."""
    request = RequestStore(engine).add("bot", "job", name, "the test", time.time_ns())
    jobs = JobStore(engine)

    def ended() -> bool:
        handled = RequestStore(engine).get(request)
        row = jobs.newest("bot", name)
        return handled is not None and handled.outcome is not None and row is not None and row.outcome != "running"

    wait_for(ended, f"the {name} job", 120)
    row = jobs.newest("bot", name)
    assert row is not None
    return row.outcome


def _sign_in(port: int, ca: Path, password: str) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, timeout=20) as client:
        form = client.get("/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert token is not None, form.text[:500]
        done = client.post("/login", data={"username": "owner", "password": password, "login_csrf": token.group(1)})
        return done.status_code


def _database_dump(path: Path) -> str:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"'))


def test_a_full_session_leaves_no_secret_anywhere(tmp_path: Path) -> None:
    pdftotext = need_program("pdftotext", "poppler-utils")
    pki = make_pki(tmp_path / "pki")
    home = tmp_path / "home"
    home.mkdir()
    collector = Collector(tmp_path / "rsyslog", pki).start()
    engine = make_engine(f"sqlite:///{home / 'robohost.db'}")
    serve_out = tmp_path / "serve.out"
    try:
        with (
            SmtpSink(pki, "alerts", SECRETS["smtp password"]) as smtp,
            WebhookSink() as hooks,
            FakeAlpacaServer(_bars(), key_id=SECRETS["alpaca key id"], secret_key=SECRETS["alpaca secret"],
                             minute_s=0.05) as alpaca,
        ):  # fmt: skip
            web_port, metrics_port = free_port(), free_port()
            (home / "robohost.toml").write_text(
                CONFIG.format(
                    web_port=web_port, metrics_port=metrics_port, syslog_port=collector.port, pki=pki.folder,
                    recipient=pyrage.x25519.Identity.generate().to_public(), smtp_port=smtp.port, hooks=hooks.url,
                    alpaca_url=alpaca.url, alpaca_rest=alpaca.rest_url,
                )
            )  # fmt: skip
            secrets = home / "secrets.toml"
            secrets.write_text(SECRETS_TOML.replace("{hooks}", hooks.url))
            secrets.chmod(0o600)
            env = {
                **os.environ,
                "ROBOHOST_WEBHOOK_PHONE_TOKEN": SECRETS["telegram token"],
                "ROBOHOST_METRICS_PASSWORD": SECRETS["metrics password"],
            }
            user_add = [ROBOHOST, "--home", str(home), "user", "add", "owner", "--password-stdin"]
            password = SECRETS["web password"] + "\n"
            added = subprocess.run(user_add, env=env, input=password, capture_output=True, text=True, timeout=120)
            assert added.returncode == 0, added.stderr
            with serve_out.open("w") as out:
                server = subprocess.Popen([ROBOHOST, "--home", str(home), "serve"], env=env, stdout=out,
                                          stderr=subprocess.STDOUT)  # fmt: skip
            try:
                wait_for(lambda: (row := read_lease(engine, "bot")) is not None and row.released_at is None,
                         "the server to hold the robot", 60)  # fmt: skip
                started = subprocess.run([ROBOHOST, "--home", str(home), "trigger", "run", "--wait", "30"], env=env,
                                         capture_output=True, text=True, timeout=120)  # fmt: skip
                assert started.returncode == 0 and "started session job" in started.stdout, started.stderr
                wait_for(lambda: _events(engine) >= len(_bars()), "every live bar to be processed", 60)
                assert _job(engine, "health") == "ok"
                assert _job(engine, "backup") == "ok"
                assert _job(engine, "report") == "ok"
                assert _job(engine, "health") == "ok"  # the backup's warning has cleared: a recovery
                assert _sign_in(web_port, home / "tls" / "ca.pem", SECRETS["wrong web password"]) == 401
                assert _sign_in(web_port, home / "tls" / "ca.pem", SECRETS["web password"]) == 303
                auth = ("prom", SECRETS["metrics password"])
                metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", auth=auth, timeout=20)
                assert metrics.status_code == 200
                wait_for(lambda: len(smtp.messages) >= 5, "the alerts and notifications by e-mail", 30)
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    assert server.wait(timeout=60) == 0, serve_out.read_text()[-3000:]
                finally:
                    if server.poll() is None:
                        server.kill()
                        server.wait(timeout=30)
        queue = sqlite3.connect(home / "logs" / "remote-queue.db")
        assert queue.execute("SELECT count(*) FROM queue").fetchone()[0] == 0, "the server delivered its log"
        queue.close()
    finally:
        engine.dispose()
        collector.stop()

    subjects = smtp.subjects()
    assert any(s.startswith("[robohost] NOTE bot: buy") for s in subjects), subjects  # a fill
    assert any("P&L" in s for s in subjects), subjects  # the daily summary
    assert any("free space of home" in s for s in subjects), subjects  # a health warning
    assert any(s.startswith("[robohost] RESOLVED") and "backups: none" in s for s in subjects), subjects
    assert all(ok for _, ok in smtp.logins) and smtp.logins, "logged in with the SMTP password, over STARTTLS"
    assert hooks.at(f"/tg/bot{SECRETS['telegram token']}/"), "the Telegram token from the environment was used"
    assert hooks.at("/services/T0001/B0002/") and hooks.at("/ntfy/robohost")
    assert any(h.headers.get("Authorization") == f"Bearer {SECRETS['ntfy token']}" for h in hooks.at("/ntfy/"))
    samples = metrics.text
    assert re.search(r'robohost_fills_total\{robot="bot"\} [1-9]', samples)
    assert re.search(r'robohost_event_to_order_seconds_count\{robot="bot"\} [1-9]', samples), "live bars timed"
    audit = (home / "logs" / "audit.log").read_text()
    assert audit.count('"event": "audit_login"') == 2 and "failed: bad-password" in audit, audit
    assert '"event": "audit_user_add"' in audit and '"event": "command"' in audit
    received = collector.text().decode(errors="replace")
    assert '"event": "command"' in received and '"event": "alert_raised"' in received and "login" in received

    searched: dict[str, bytes] = {}
    for path in home.rglob("*"):
        if path.is_file() and path != home / "secrets.toml":  # where they belong (mode 0600)
            searched[str(path)] = path.read_bytes()
            if path.suffix == ".pdf":
                searched[f"{path} (text)"] = subprocess.run([pdftotext, str(path), "-"], capture_output=True,
                                                             timeout=60, check=True).stdout  # fmt: skip
    searched["database dump"] = _database_dump(home / "robohost.db").encode()
    for path in collector.folder.rglob("*"):
        if path.is_file():
            searched[str(path)] = path.read_bytes()
    searched["serve output"] = serve_out.read_bytes()
    searched["e-mails"] = "\n".join(content for _, _, content in smtp.messages).encode()
    searched["webhook bodies"] = b"\n".join(h.body for h in hooks.hits)
    assert any(name.endswith(".pdf") for name in searched) and any("/backups/" in name for name in searched)
    assert len(searched["database dump"]) > 10_000 and len(received) > 10_000
    leaks = [(what, where) for what, value in SECRETS.items() for where, data in searched.items()
             if value.encode() in data]  # fmt: skip
    assert leaks == [], "\n".join(f"{what} in {where}" for what, where in leaks)
    print(f"searched {len(searched)} files and dumps ({sum(map(len, searched.values())):,} bytes): no secret")
