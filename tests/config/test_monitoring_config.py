"""``[logging]``, ``[health]``, ``[alerts]`` and ``[metrics]``: defaults, refusals naming the file and key, and the
secrets from ``secrets.toml`` or the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from robohost.config.loader import load_home
from robohost.errors import ConfigError
from robohost.services.observability import alert_channels

ROBOT = '[robots.bot]\nstrategy = "x.py:X"\n[robots.bot.data]\npath = ["a.csv"]\n'


def _home(tmp_path: Path, config: str, secrets: str | None = None) -> Path:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "robohost.toml").write_text(ROBOT + config)
    if secrets is not None:
        (home / "secrets.toml").write_text(secrets)
        (home / "secrets.toml").chmod(0o600)
    return home


def test_defaults(tmp_path: Path) -> None:
    config = load_home(_home(tmp_path, "")).config
    assert config.logging.level == "info" and config.logging.remote is None and config.logging.file_max_mb == 20
    assert config.metrics.enabled and config.metrics.host == "127.0.0.1" and config.metrics.port == 9464
    assert config.alerts.email is None and config.alerts.webhooks == [] and config.alerts.reminder_after == "4h"
    assert not (config.alerts.trading.fills or config.alerts.trading.halts or config.alerts.trading.daily_summary)
    assert config.health.disk_free_percent_warn == 10 and config.health.backup_age_hours_critical == 50


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[metrics]\nhost = "0.0.0.0"\n', "metrics.username: the metrics endpoint on 0.0.0.0 (not loopback) needs"),
        ('[[alerts.webhooks]]\nname = "a"\nurl = "https://x.example/hook?token=abc"\n',
         "alerts.webhooks.0.url: holds a token: put the URL in secrets.toml"),
        ('[[alerts.webhooks]]\nname = "a"\nurl = "https://u:p@x.example/hook"\n', "alerts.webhooks.0.url"),
        ('[[alerts.webhooks]]\nname = "t"\nkind = "telegram"\n', "alerts.webhooks.0.chat_id: a telegram webhook"),
        ('[logging.remote]\nhost = "h"\nca = "ca.pem"\ncert = "c.pem"\n', "logging.remote.cert: give both"),
        ("[health]\nmemory_percent_warn = 99\n", "health.memory_percent_warn: must not be above"),
        ('[alerts]\nreminder_after = "soon"\n', "alerts.reminder_after"),
        ('[alerts.email]\nhost = "h"\nfrom = "a@b"\nto = []\n', "alerts.email.to"),
    ],
)  # fmt: skip
def test_refusals_name_the_file_and_the_key(tmp_path: Path, config: str, message: str) -> None:
    home = _home(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        load_home(home)
    assert str(caught.value).startswith(f"{home / 'robohost.toml'}: ") and message in str(caught.value)
    assert "token=abc" not in str(caught.value) and "u:p@" not in str(caught.value), "a URL is never echoed"


def test_a_metrics_user_needs_a_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _home(tmp_path, '[metrics]\nhost = "0.0.0.0"\nusername = "prom"\n')
    with pytest.raises(ConfigError, match=r"robohost.toml: metrics.username: needs a password"):
        load_home(home)
    monkeypatch.setenv("ROBOHOST_METRICS_PASSWORD", "from-the-environment")
    assert load_home(home).secrets.metrics.password.get_secret_value() == "from-the-environment"  # type: ignore[union-attr]


def test_channel_secrets_from_the_file_and_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = (
        '[alerts.email]\nhost = "smtp.example.com"\nfrom = "a@example.com"\nto = "b@example.com"\nusername = "a"\n'
        '[[alerts.webhooks]]\nname = "team-chat"\nkind = "slack"\n'
        '[[alerts.webhooks]]\nname = "phone"\nkind = "telegram"\nchat_id = "1"\n'
    )
    home = _home(tmp_path, config, '[alerts.webhooks.team-chat]\nurl = "https://hooks.example.com/services/T/B/XYZ"\n')
    with pytest.raises(ConfigError, match=r"alerts\.email\.username: needs a password"):
        alert_channels(load_home(home))
    monkeypatch.setenv("ROBOHOST_SMTP_PASSWORD", "smtp-from-env")
    with pytest.raises(ConfigError, match=r"alerts.webhooks.phone: telegram needs the bot token"):
        alert_channels(load_home(home))
    monkeypatch.setenv("ROBOHOST_WEBHOOK_PHONE_TOKEN", "123:telegram")
    monkeypatch.setenv("ROBOHOST_WEBHOOK_TEAM_CHAT_URL", "https://hooks.example.com/services/T/B/FROM-ENV")
    loaded = load_home(home)
    email, slack, telegram = alert_channels(loaded)
    assert email._password == "smtp-from-env"  # type: ignore[attr-defined]
    assert slack._url.endswith("FROM-ENV") and telegram._token == "123:telegram"  # type: ignore[attr-defined]
    assert "smtp-from-env" not in repr(loaded.secrets) and "123:telegram" not in repr(loaded.secrets)
