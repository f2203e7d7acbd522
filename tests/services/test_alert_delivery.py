"""Alerts delivered for real: e-mail over STARTTLS with a login (aiosmtpd), and webhooks shaped for a generic JSON
receiver, Telegram, Slack and ntfy; deduplicated, reminded, recovered; per-channel levels; trading notifications
only where asked; failed deliveries logged and retried, never raised."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from observability_support import Pki, SmtpSink, WebhookSink, free_port, make_pki
from robohost.adapters.alerts.outbox import Outbox
from robohost.adapters.ops.state_file import JsonStateFile
from robohost.config.loader import load_home
from robohost.services.alerts import AlertDispatcher
from robohost.services.health import Check
from robohost.services.observability import alert_channels

SMTP_PASSWORD = "smtp-Passw0rd-4e3d2c"
SLACK_TOKEN = "xoxbTOKEN0123456789abcdef"
TELEGRAM_TOKEN = "123456789:AAH-telegram-token-9f8e7d"
NTFY_TOKEN = "tk_ntfytoken0123456789"
JSON_TOKEN = "json-bearer-token-5a6b7c"
T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)

CONFIG = """
[robots.bot]
strategy = "robohost.examples.sma_cross:SmaCross"
[robots.bot.data]
path = ["data/bars.csv"]

[alerts]
reminder_after = "2h"
retries = 2
retry_delay_s = 0.05

[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
from = "robohost@example.com"
to = ["owner@example.com"]
username = "alerts"
ca = "pki/ca.pem"
level = "critical"
trading = true

[[alerts.webhooks]]
name = "generic"
kind = "json"
url = "{hooks}/generic"
level = "warning"

[[alerts.webhooks]]
name = "phone"
kind = "telegram"
url = "{hooks}/tg"
chat_id = "-100200300"
level = "warning"
trading = true

[[alerts.webhooks]]
name = "team"
kind = "slack"
level = "warning"

[[alerts.webhooks]]
name = "ntfy"
kind = "ntfy"
url = "{hooks}/ntfy/robohost-alerts"
level = "info"
"""
SECRETS = f"""
[alerts.email]
password = "{SMTP_PASSWORD}"
[alerts.webhooks.generic]
token = "{JSON_TOKEN}"
[alerts.webhooks.phone]
token = "{TELEGRAM_TOKEN}"
[alerts.webhooks.team]
url = "{{hooks}}/services/T0001/B0002/{SLACK_TOKEN}"
[alerts.webhooks.ntfy]
token = "{NTFY_TOKEN}"
"""


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rig:
    dispatcher: AlertDispatcher
    clock: Clock
    smtp: SmtpSink
    hooks: WebhookSink

    def flush(self) -> None:
        assert self.dispatcher.outbox.flush(20), "deliveries did not finish"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "home" / "pki")


@pytest.fixture
def rig(tmp_path: Path, pki: Pki) -> Iterator[Rig]:
    home = tmp_path / "home"
    with SmtpSink(pki, "alerts", SMTP_PASSWORD) as smtp, WebhookSink() as hooks:
        (home / "robohost.toml").write_text(CONFIG.format(smtp_port=smtp.port, hooks=hooks.url))
        secrets = home / "secrets.toml"
        secrets.write_text(SECRETS.replace("{hooks}", hooks.url))
        secrets.chmod(0o600)
        loaded = load_home(home)
        clock = Clock()
        cfg = loaded.config.alerts
        outbox = Outbox(cfg.retries, cfg.retry_delay_s)
        state = JsonStateFile(home / "state" / "alerts.json")
        dispatcher = AlertDispatcher(alert_channels(loaded), outbox, state, cfg.reminder, clock, host="testhost")
        try:
            yield Rig(dispatcher, clock, smtp, hooks)
        finally:
            dispatcher.close(10)


def _disk(level: str) -> Check:
    return Check("disk:home", level, "free space of home (/srv): 3%", 3.0, "%", "health:disk:home")


def test_an_alert_its_reminder_and_its_recovery_reach_every_channel_of_its_level(rig: Rig) -> None:
    rig.dispatcher.health([_disk("critical")])
    rig.flush()
    assert rig.smtp.subjects() == ["[robohost] CRITICAL free space of home (/srv): 3%"]
    assert rig.smtp.logins == [("LOGIN", True)] or rig.smtp.logins == [("PLAIN", True)], rig.smtp.logins
    assert len(rig.hooks.hits) == 4, "generic, telegram, slack and ntfy"

    rig.clock.now = T0 + timedelta(minutes=30)
    rig.dispatcher.health([_disk("critical")])  # the same problem at the next check: said once
    rig.flush()
    assert len(rig.smtp.messages) == 1 and len(rig.hooks.hits) == 4

    rig.clock.now = T0 + timedelta(hours=2)
    rig.dispatcher.health([_disk("critical")])
    rig.flush()
    assert rig.smtp.subjects()[-1] == "[robohost] STILL CRITICAL free space of home (/srv): 3%"
    assert "Still open since 2026-11-27 14:00 UTC (3 times seen)." in rig.smtp.messages[-1][2]

    rig.clock.now = T0 + timedelta(hours=3)
    rig.dispatcher.health([Check("disk:home", "ok", "free space of home: 40%", 40.0, "%", "health:disk:home")])
    rig.flush()
    assert rig.smtp.subjects()[-1] == "[robohost] RESOLVED resolved after 3h00m: free space of home (/srv): 3%"
    assert len(rig.smtp.messages) == 3 and len(rig.hooks.hits) == 12
    rig.dispatcher.health([Check("disk:home", "ok", "fine", 40.0, "%", "health:disk:home")])
    rig.flush()
    assert len(rig.smtp.messages) == 3, "a recovery is sent once"
    assert all(SMTP_PASSWORD not in content for _, _, content in rig.smtp.messages)


def test_the_webhook_payloads(rig: Rig) -> None:
    rig.dispatcher("job_failed", {"robot": "bot", "job": "backup", "error": "disk full", "attempts": 3})
    rig.flush()
    assert rig.smtp.messages == [], "the e-mail channel takes critical alerts only"
    (generic,) = rig.hooks.at("/generic")
    body = generic.json()
    assert generic.headers["Authorization"] == f"Bearer {JSON_TOKEN}"
    assert body["state"] == "alert" and body["kind"] == "job_failed" and body["level"] == "warning"
    assert body["key"] == "job_failed:bot:backup" and body["robot"] == "bot" and body["host"] == "testhost"
    assert body["details"] == {"robot": "bot", "job": "backup", "error": "disk full", "attempts": 3}
    (telegram,) = rig.hooks.at("/tg")
    assert telegram.path == f"/tg/bot{TELEGRAM_TOKEN}/sendMessage"
    assert telegram.json()["chat_id"] == "-100200300" and "bot: job backup failed" in telegram.json()["text"]
    (slack,) = rig.hooks.at("/services/")
    assert slack.path == f"/services/T0001/B0002/{SLACK_TOKEN}"
    assert slack.json()["text"].startswith("*[robohost] WARNING bot: job backup failed: disk full*\n")
    (ntfy,) = rig.hooks.at("/ntfy/")
    assert ntfy.headers["Title"] == "[robohost] WARNING bot: job backup failed: disk full"
    assert ntfy.headers["Priority"] == "4" and ntfy.headers["Tags"] == "rotating_light,job_failed"
    assert ntfy.headers["Authorization"] == f"Bearer {NTFY_TOKEN}" and b"failed" in ntfy.body

    rig.dispatcher.job_ok("bot", "backup")  # the next backup succeeds: a recovery
    rig.flush()
    recovered = rig.hooks.at("/generic")[-1].json()
    assert recovered["state"] == "recovery" and recovered["key"] == "job_failed:bot:backup"


def test_a_stale_feed_alerts_and_its_recovery_clears_it(rig: Rig) -> None:
    rig.dispatcher("degraded", {"robot": "bot", "silent_s": 130})
    rig.dispatcher("degraded", {"robot": "bot", "silent_s": 190})  # the feed says it again: not repeated
    rig.clock.now = T0 + timedelta(minutes=4)
    rig.dispatcher("recovered", {"robot": "bot", "after_s": 240})
    rig.flush()
    states = [(h.json()["state"], h.json()["key"]) for h in rig.hooks.at("/generic")]
    assert states == [("alert", "feed_degraded:bot"), ("recovery", "feed_degraded:bot")]
    assert rig.smtp.subjects() == [
        "[robohost] CRITICAL bot: live data stale (silent_s=130)",
        "[robohost] RESOLVED resolved after 4m00s: bot: live data stale (silent_s=190)",
    ]


def test_trading_notifications_go_only_where_asked(rig: Rig) -> None:
    rig.dispatcher.notify("fill", "bot: buy 10 AAPL @ 187.5", {"fee": "1.00"}, "bot")
    rig.flush()
    assert rig.smtp.subjects() == ["[robohost] NOTE bot: buy 10 AAPL @ 187.5"]
    assert [h.path.split("/")[1] for h in rig.hooks.hits] == ["tg"], "telegram has trading = true, the rest not"


def test_failed_deliveries_are_retried_and_logged_never_raised(
    rig: Rig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig.hooks.statuses[:] = [500, 502]  # the first webhook request fails twice, then succeeds
    with caplog.at_level(logging.WARNING, logger="robohost.alerts"):
        rig.dispatcher("lease_lost", {"robot": "bot"})
        rig.flush()
        wait = rig.dispatcher.outbox
        assert wait.flush(20) and wait.pending() == 0
    assert len(rig.smtp.messages) == 1 and len(rig.hooks.hits) == 6, "two failures, then all four delivered"
    retried = [r for r in caplog.records if getattr(r, "event", "") == "alert_delivery_failed"]
    assert len(retried) == 2 and "answered HTTP 50" in retried[0].getMessage()
    assert all(SLACK_TOKEN not in r.getMessage() and TELEGRAM_TOKEN not in r.getMessage() for r in caplog.records)

    dead = Outbox(retries=1, retry_delay_s=0.01)
    channel = alert_channels(load_home(tmp_path / "home"))[0]
    channel.port = free_port()  # type: ignore[attr-defined]  # nothing listens: refused
    lonely = AlertDispatcher([channel], dead, JsonStateFile(tmp_path / "other.json"), None, rig.clock)
    with caplog.at_level(logging.WARNING, logger="robohost.alerts"):
        lonely("robot_halted", {"robot": "bot", "reason": "max_daily_loss"})  # never raises
        assert dead.flush(20)
    lonely.close(5)
    gave_up = [r for r in caplog.records if getattr(r, "event", "") == "alert_delivery_gave_up"]
    assert len(gave_up) == 1 and "ConnectionRefusedError" in gave_up[0].getMessage()
