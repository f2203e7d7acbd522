"""The configuration of logs, health checks, alerts and metrics: ``[logging]``, ``[health]``, ``[alerts]`` and
``[metrics]`` in ``robohost.toml``, and their secrets in ``secrets.toml`` (README, "Logs, monitoring and alerts").

Frozen models that reject unknown keys, like the rest of the configuration. Imports pydantic, the standard
library and ``schedule_syntax`` (durations) only; ``robohost.config.models`` builds on this module.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from robohost.config.schedule_syntax import format_duration, parse_duration

AlertLevel = Literal["info", "warning", "critical"]
"""How serious a message is; a channel receives the messages at its ``level`` and above."""
LEVEL_RANK = {"info": 0, "warning": 1, "critical": 2}
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_APP_NAME = re.compile(r"^[!-~]{1,48}$")  # RFC 5424 APP-NAME: printable US-ASCII, at most 48
_SECRET_QUERY = re.compile(r"(?i)(token|key|secret|pass|auth|sig)")
FACILITIES = {
    "user": 1,
    "daemon": 3,
    "auth": 4,
    "local0": 16,
    "local1": 17,
    "local2": 18,
    "local3": 19,
    "local4": 20,
    "local5": 21,
    "local6": 22,
    "local7": 23,
}
"""Syslog facilities (RFC 5424 section 6.2.1) a remote log may use."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _duration_or_off(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return format_duration(timedelta(seconds=value))
    if isinstance(value, str) and value.strip().lower() in ("off", "never", ""):
        return "off"
    return format_duration(parse_duration(value)) if isinstance(value, str) else value


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_credentials_in_url(value: str) -> str:
    """Refuse a URL in ``robohost.toml`` that carries a password or a token-like query parameter."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("expected an http:// or https:// URL")
    if parts.password is not None or parts.username is not None:
        raise ValueError("holds credentials: put the URL in secrets.toml ([alerts.webhooks.NAME] url) instead")
    if any(_SECRET_QUERY.search(name) for name, _ in parse_qsl(parts.query)):
        raise ValueError("holds a token: put the URL in secrets.toml ([alerts.webhooks.NAME] url) instead")
    return value


class RemoteLogConfig(_Strict):
    """``[logging.remote]``: a syslog collector reached over TLS (RFC 5424 messages, RFC 5425 transport)."""

    host: str = Field(min_length=1, description="the collector's address")
    port: int = Field(default=6514, ge=1, le=65535, description="its TLS syslog port (6514 is RFC 5425's)")
    ca: str = Field(min_length=1, description="PEM file of the CA that signed the collector's certificate")
    cert: str | None = Field(default=None, description="client certificate (PEM) for mutual TLS")
    key: str | None = Field(default=None, description="the client certificate's private key (PEM, mode 0600)")
    server_name: str | None = Field(default=None, description="the name the collector's certificate must carry")
    queue_max_mb: float = Field(default=50.0, gt=0, le=100_000, description="on-disk queue bound while unreachable")
    app_name: str = Field(default="robohost", description="RFC 5424 APP-NAME")
    facility: Literal[
        "user", "daemon", "auth", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"
    ] = "local0"

    @field_validator("app_name")
    @classmethod
    def _app_name(cls, value: str) -> str:
        if not _APP_NAME.match(value):
            raise ValueError("an APP-NAME is 1 to 48 printable ASCII characters without spaces")
        return value

    @model_validator(mode="after")
    def _cert_with_key(self) -> RemoteLogConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert: give both cert and key (the client certificate and its private key), or neither")
        return self


class LoggingConfig(_Strict):
    """``[logging]``: the JSON log file (rotated), the audit log, and the optional remote collector."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    file_max_mb: float = Field(default=20.0, gt=0, le=100_000, description="rotate logs/robohost.log at this size")
    file_backups: int = Field(default=10, ge=1, le=1000, description="rotated files kept (robohost.log.1 …)")
    remote: RemoteLogConfig | None = None


class EmailChannelConfig(_Strict):
    """``[alerts.email]``: an SMTP server; the password goes in secrets.toml or ``ROBOHOST_SMTP_PASSWORD``."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    from_: str = Field(alias="from", min_length=3, description="the sender address")
    to: list[str] = Field(min_length=1, description="the recipients")
    starttls: bool = Field(default=True, description="upgrade the connection with STARTTLS (required by default)")
    username: str | None = Field(default=None, description="log in with this user (and the secret password)")
    ca: str | None = Field(default=None, description="PEM file of a private CA to trust (default: the system's)")
    level: AlertLevel = "warning"
    trading: bool = Field(default=False, description="also carry the trading notifications of [alerts.trading]")
    timeout_s: float = Field(default=20.0, gt=0, le=300)

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class WebhookChannelConfig(_Strict):
    """``[[alerts.webhooks]]``: an HTTP endpoint (generic JSON, Telegram, Slack or ntfy).

    A URL that carries a token (Slack's, a private ntfy topic) and Telegram's bot token go in secrets.toml
    (``[alerts.webhooks.NAME] url``/``token``) or ``ROBOHOST_WEBHOOK_NAME_URL``/``_TOKEN``.
    """

    name: str = Field(description="names the channel (and its secrets)")
    kind: Literal["json", "telegram", "slack", "ntfy"] = "json"
    url: str | None = Field(default=None, description="the endpoint; telegram: the API base (default Telegram's)")
    chat_id: str | None = Field(default=None, description="telegram: the chat to post to")
    level: AlertLevel = "warning"
    trading: bool = Field(default=False, description="also carry the trading notifications of [alerts.trading]")
    timeout_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not CHANNEL_NAME.match(value):
            raise ValueError("a webhook's name is letters, digits, '-' and '_' (at most 32)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else refuse_credentials_in_url(value)

    @model_validator(mode="after")
    def _telegram_chat(self) -> WebhookChannelConfig:
        if self.kind == "telegram" and not self.chat_id:
            raise ValueError("chat_id: a telegram webhook needs the chat id to post to")
        return self


class TradingNotificationsConfig(_Strict):
    """``[alerts.trading]``: opt-in trading notifications, sent to the channels with ``trading = true``."""

    fills: bool = Field(default=False, description="each fill")
    halts: bool = Field(default=False, description="a halt by the kill switch")
    daily_summary: bool = Field(default=False, description="the day's P&L after the close (the pnl_summary chore)")


class AlertsConfig(_Strict):
    """``[alerts]``: where alerts go, how often a problem is repeated, how deliveries are retried."""

    email: EmailChannelConfig | None = None
    webhooks: list[WebhookChannelConfig] = Field(default_factory=list)
    reminder_after: str = Field(default="4h", description="repeat a problem still there after this ('off': never)")
    retries: int = Field(default=3, ge=0, le=100, description="delivery attempts after the first one failed")
    retry_delay_s: float = Field(default=30.0, gt=0, le=3600, description="first wait between attempts (doubles)")
    trading: TradingNotificationsConfig = TradingNotificationsConfig()

    @field_validator("reminder_after", mode="before")
    @classmethod
    def _reminder(cls, value: Any) -> Any:
        return _duration_or_off(value)

    @field_validator("webhooks")
    @classmethod
    def _unique(cls, value: list[WebhookChannelConfig]) -> list[WebhookChannelConfig]:
        names = [w.name for w in value]
        if len(set(names)) != len(names):
            raise ValueError("two webhooks share a name: give each its own")
        return value

    @property
    def reminder(self) -> timedelta | None:
        """The reminder interval, or None when reminders are off."""
        return None if self.reminder_after == "off" else parse_duration(self.reminder_after)


_HIGHER_IS_WORSE = (
    ("cpu_load", "per core, 5-minute load average"),
    ("memory_percent", "% of RAM used"),
    ("database_mb", "MB"),
    ("process_memory_mb", "MB resident"),
    ("open_files_percent", "% of the open-files limit"),
    ("job_failures", "failed jobs in the last 24 hours"),
    ("backup_age_hours", "hours since the last good backup"),
    ("feed_lag_s", "seconds since a live robot's last bar"),
)
_LOWER_IS_WORSE = (
    ("disk_free_percent", "% free"),
    ("database_full_days", "days until the database's volume is full at its growth rate"),
    ("certificate_days", "days until a certificate expires"),
)


class HealthConfig(_Strict):
    """``[health]``: the thresholds of the capacity and health checks (warn, then critical)."""

    cpu_load_warn: float = Field(default=2.0, gt=0)
    cpu_load_critical: float = Field(default=4.0, gt=0)
    memory_percent_warn: float = Field(default=90.0, gt=0, le=100)
    memory_percent_critical: float = Field(default=97.0, gt=0, le=100)
    disk_free_percent_warn: float = Field(default=10.0, ge=0, le=100)
    disk_free_percent_critical: float = Field(default=5.0, ge=0, le=100)
    database_mb_warn: float = Field(default=50_000.0, gt=0)
    database_mb_critical: float = Field(default=200_000.0, gt=0)
    database_full_days_warn: float = Field(default=30.0, ge=0)
    database_full_days_critical: float = Field(default=7.0, ge=0)
    process_memory_mb_warn: float = Field(default=2048.0, gt=0)
    process_memory_mb_critical: float = Field(default=4096.0, gt=0)
    open_files_percent_warn: float = Field(default=80.0, gt=0, le=100)
    open_files_percent_critical: float = Field(default=95.0, gt=0, le=100)
    job_failures_warn: int = Field(default=1, ge=1)
    job_failures_critical: int = Field(default=3, ge=1)
    backup_age_hours_warn: float = Field(default=26.0, gt=0)
    backup_age_hours_critical: float = Field(default=50.0, gt=0)
    feed_lag_s_warn: float = Field(default=900.0, gt=0)
    feed_lag_s_critical: float = Field(default=3600.0, gt=0)
    certificate_days_warn: float = Field(default=21.0, ge=0)
    certificate_days_critical: float = Field(default=7.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> HealthConfig:
        for name, _ in _HIGHER_IS_WORSE:
            warn, critical = getattr(self, f"{name}_warn"), getattr(self, f"{name}_critical")
            if warn > critical:
                raise ValueError(f"{name}_warn: must not be above {name}_critical ({warn} > {critical})")
        for name, _ in _LOWER_IS_WORSE:
            warn, critical = getattr(self, f"{name}_warn"), getattr(self, f"{name}_critical")
            if warn < critical:
                raise ValueError(f"{name}_warn: must not be below {name}_critical ({warn} < {critical})")
        return self


class MetricsConfig(_Strict):
    """``[metrics]``: the Prometheus endpoint ``robohost serve`` offers (``/metrics``).

    On an address other than loopback it needs ``username`` and a password in secrets.toml
    (``[metrics] password``) or ``ROBOHOST_METRICS_PASSWORD``: HTTP basic authentication.
    """

    enabled: bool = True
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=9464, ge=1, le=65535)
    username: str | None = Field(default=None, description="basic authentication (the password is a secret)")

    @model_validator(mode="after")
    def _bound_or_protected(self) -> MetricsConfig:
        if self.enabled and not is_loopback(self.host) and not self.username:
            raise ValueError(
                f"username: the metrics endpoint on {self.host} (not loopback) needs authentication: set username, "
                "and the password in secrets.toml ([metrics] password) or ROBOHOST_METRICS_PASSWORD"
            )
        return self


class EmailSecrets(_Strict):
    """``[alerts.email]`` in secrets.toml."""

    password: SecretStr | None = None


class WebhookSecrets(_Strict):
    """``[alerts.webhooks.NAME]`` in secrets.toml: a URL with a token in it, or a token (Telegram's bot token,
    a bearer token for ntfy or a JSON endpoint)."""

    url: SecretStr | None = None
    token: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in ("http", "https"):
            raise ValueError("expected an http:// or https:// URL")
        return value


class AlertSecrets(_Strict):
    """``[alerts]`` in secrets.toml."""

    email: EmailSecrets = EmailSecrets()
    webhooks: dict[str, WebhookSecrets] = Field(default_factory=dict)


class MetricsSecrets(_Strict):
    """``[metrics]`` in secrets.toml."""

    password: SecretStr | None = None


def describe_thresholds() -> list[tuple[str, str, str]]:
    """(key stem, unit, direction) of every health threshold, for documentation and messages."""
    return [(name, unit, "above") for name, unit in _HIGHER_IS_WORSE] + [
        (name, unit, "below") for name, unit in _LOWER_IS_WORSE
    ]
