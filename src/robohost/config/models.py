"""The configuration schema of ``robohost.toml``: frozen models that reject unknown keys.

Defaults here are the documented defaults (README, "Configuration reference"). Imports pydantic,
the standard library and ``schedule_syntax`` (which checks schedule times) only.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from robohost.config.backup_syntax import (
    LABEL,
    check_host_port,
    check_recipient,
    check_target,
    is_sftp,
    parse_host_key,
    parse_sftp_url,
)
from robohost.config.monitoring import (
    AlertsConfig,
    AlertSecrets,
    HealthConfig,
    LoggingConfig,
    MetricsConfig,
    MetricsSecrets,
)
from robohost.config.schedule_syntax import (
    ALWAYS_OPEN,
    NEVER,
    OFF,
    MarketTime,
    check_calendar,
    format_duration,
    looks_like_cron,
    parse_duration,
    parse_market_time,
    parse_when,
)

PositiveFloat = Annotated[float, Field(gt=0)]
ROBOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SPEED = re.compile(r"^(max|\d+(\.\d+)?x)$")


class Strict(BaseModel):
    """Base: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DataConfig(Strict):
    """Where the robot's market data come from: a replay of files, or a live source."""

    source: Literal["replay", "ccxt", "alpaca"] = "replay"
    symbols: list[str] | None = None
    # replay
    path: list[str] = Field(default_factory=list, description="CSV or Parquet files, relative to the home")
    start: str | None = Field(default=None, alias="from")
    end: str | None = Field(default=None, alias="to")
    speed: str = "max"
    # live sources
    exchange: str | None = Field(default=None, description="ccxt exchange id, e.g. 'binance'")
    timeframe: str = "1m"
    sandbox: bool = False
    websocket: bool = True
    bars_from: Literal["ohlcv", "trades"] = "ohlcv"
    feed: Literal["iex", "sip"] = "iex"
    urls: dict[str, Any] | None = Field(default=None, description="ccxt: override the exchange's URLs")
    url: str | None = Field(default=None, description="alpaca: override the stream URL")
    rest_url: str | None = Field(default=None, description="alpaca: override the REST URL (gap fill)")
    grace_s: float = Field(default=2.0, ge=0, le=60)
    stale_after_s: float = Field(default=120.0, gt=0)

    @field_validator("path", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("speed")
    @classmethod
    def _speed(cls, value: str) -> str:
        if not SPEED.match(value):
            raise ValueError("speed must be 'max' or a multiple of real time like '1x' or '60x'")
        return value

    @model_validator(mode="after")
    def _source_needs(self) -> DataConfig:
        if self.source == "replay" and not self.path:
            raise ValueError("path: a replay needs one or more CSV or Parquet files")
        if self.source != "replay" and not self.symbols:
            raise ValueError(f'symbols: the {self.source} source needs the symbols to stream, e.g. ["BTC/USDT"]')
        if self.source == "ccxt" and not self.exchange:
            raise ValueError("exchange: the ccxt source needs a ccxt exchange id such as 'binance'")
        return self

    @property
    def live(self) -> bool:
        """True for a live source (the run goes on until stopped)."""
        return self.source != "replay"


class FeesConfig(Strict):
    """Commissions. Percentages are of notional: 0.1 means 0.1 %."""

    per_share: Decimal = Field(default=Decimal(0), ge=0)
    percent: Decimal = Field(default=Decimal(0), ge=0)
    maker_percent: Decimal | None = Field(default=None, ge=0)
    taker_percent: Decimal | None = Field(default=None, ge=0)
    minimum: Decimal = Field(default=Decimal(0), ge=0)


class FillsConfig(Strict):
    """The fill model's rules (see the README's "Fill model")."""

    latency_ms: float = Field(default=250.0, ge=0)
    slippage_bps: float = Field(default=1.0, ge=0)
    slippage_range_fraction: float = Field(default=0.0, ge=0, le=1)
    touch_fill_probability: float = Field(default=0.0, ge=0, le=1)
    participation: float = Field(default=0.10, gt=0, le=1)
    allow_short: bool = False
    tick_size: PositiveFloat = 0.01
    lot_size: PositiveFloat = 1.0


class RiskConfig(Strict):
    """Risk limits checked before every order; leave a key out to switch its limit off."""

    max_position: PositiveFloat | None = None
    max_position_notional: PositiveFloat | None = None
    max_gross_exposure: PositiveFloat | None = None
    max_order_notional: PositiveFloat | None = None
    max_orders_per_minute: Annotated[int, Field(gt=0)] | None = None
    max_daily_loss: PositiveFloat | None = None


DEFAULT_JOBS = {
    "backup": "close + 15m",
    "verify": "0 6 * * sun",
    "report": "close + 30m",
    "weekly_report": "0 18 * * fri",
    "health": "*/5 * * * *",
}
"""The chores every robot has unless its ``[robots.NAME.schedule.jobs]`` changes or switches them off."""
CHORE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _chore_name(value: str) -> str:
    if value == "session":
        raise ValueError("'session' is the robot's own session (session_start, session_end): name the chore otherwise")
    if not CHORE_NAME.match(value):
        raise ValueError("a chore's name is lower-case letters, digits and '_' (at most 32), starting with a letter")
    return value


def _chore_when(value: str) -> str:
    text = " ".join(value.split())
    if text.lower() in ("", OFF):
        return OFF
    return str(parse_when(text))


class ScheduleConfig(Strict):
    """When the robot's session and its chores run (README, "Schedules"); times in the calendar's zone.

    ``calendar`` and ``session_end`` default by the robot's data source: use ``RobotConfig.schedule_settings``.
    """

    mode: Literal["auto", "manual", "both"] = "both"
    calendar: str | None = Field(default=None, description="an exchange_calendars name or '24/7'")
    session_start: str = "open"
    session_end: str | None = Field(default=None, description="market-relative, or 'never' (24/7 only)")
    grace: str = Field(default="15m", description="a duration: how late a missed job may still run")
    retries: int = Field(default=2, ge=0, le=100)
    retry_delay: str = Field(default="1m", description="a duration between the retries of a failed job")
    jobs: dict[Annotated[str, AfterValidator(_chore_name)], Annotated[str, AfterValidator(_chore_when)]] = Field(
        default_factory=lambda: dict(DEFAULT_JOBS)
    )

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, value: str | None) -> str | None:
        return None if value is None else check_calendar(value)

    @field_validator("session_start")
    @classmethod
    def _start(cls, value: str) -> str:
        return str(parse_when(" ".join(value.split())))

    @field_validator("session_end")
    @classmethod
    def _end(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() == NEVER:
            return None if value is None else NEVER
        if looks_like_cron(value):
            raise ValueError("the session's end is market-relative ('close', 'close + 10m') or 'never', not cron")
        return str(parse_market_time(value))

    @field_validator("grace", "retry_delay", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        """Check a duration ('90s', '15m', '1h30m'; a number is seconds) and write it the one way."""
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return format_duration(timedelta(seconds=value))
        return format_duration(parse_duration(value)) if isinstance(value, str) else value

    @field_validator("jobs", mode="before")
    @classmethod
    def _with_default_jobs(cls, value: Any) -> Any:
        return {**DEFAULT_JOBS, **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _session_window(self) -> ScheduleConfig:
        if self.session_end == NEVER and self.calendar not in (None, ALWAYS_OPEN):
            raise ValueError(f"session_end: 'never' (a continuous session) needs calendar = '{ALWAYS_OPEN}'")
        start = parse_when(self.session_start)
        if self.session_end not in (None, NEVER) and isinstance(start, MarketTime):
            end = parse_market_time(self.session_end)
            if (start.anchor, end.anchor) == ("close", "open") or (
                start.anchor == end.anchor and end.offset <= start.offset
            ):
                raise ValueError(f"session_end: '{end}' is not after session_start '{start}'")
        return self

    @property
    def enabled_jobs(self) -> dict[str, str]:
        """The chores that are on: name -> when."""
        return {name: when for name, when in self.jobs.items() if when != OFF}


class RobotConfig(Strict):
    """One robot: its strategy, data, account and rules."""

    strategy: str = Field(description="'path/to/file.py:Class' relative to the home, or 'module:Class'")
    params: dict[str, Any] = Field(default_factory=dict)
    starting_cash: Decimal = Field(default=Decimal(100_000), gt=0)
    timezone: str = "America/New_York"
    seed: int = 42
    history: int = Field(default=1000, ge=0, le=1_000_000)
    on_strategy_error: Literal["halt", "skip"] = "halt"
    commit_every: int = Field(default=5000, ge=1)
    data: DataConfig
    fills: FillsConfig = FillsConfig()
    fees: FeesConfig = FeesConfig()
    risk: RiskConfig = RiskConfig()
    schedule: ScheduleConfig = ScheduleConfig()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like 'America/New_York')") from None
        return value

    @model_validator(mode="after")
    def _schedule_fits_calendar(self) -> RobotConfig:
        if self.schedule.session_end == NEVER and self.calendar_name != ALWAYS_OPEN:
            raise ValueError(
                f"schedule: session_end = 'never' (a continuous session) needs calendar = '{ALWAYS_OPEN}'; "
                f"this robot's calendar is {self.calendar_name!r}"
            )
        return self

    @property
    def calendar_name(self) -> str:
        """The schedule's calendar: as configured, else '24/7' for a ccxt source and 'XNYS' otherwise."""
        if self.schedule.calendar is not None:
            return self.schedule.calendar
        return ALWAYS_OPEN if self.data.source == "ccxt" else "XNYS"

    @property
    def schedule_settings(self) -> ScheduleConfig:
        """The schedule with its defaults resolved: the calendar, and the session end ('never' on 24/7)."""
        calendar = self.calendar_name
        end = self.schedule.session_end or (NEVER if calendar == ALWAYS_OPEN else "close")
        return self.schedule.model_copy(update={"calendar": calendar, "session_end": end})


class DatabaseConfig(Strict):
    """The trading database. Credentials never go here: use secrets.toml or ROBOHOST_DATABASE_URL."""

    url: str = "sqlite:///robohost.db"


class ServeConfig(Strict):
    """``robohost serve``: its loop and how it stops."""

    tick_s: float = Field(default=1.0, gt=0, le=60, description="how often the loop looks at schedules and requests")
    stop_timeout_s: float = Field(default=30.0, gt=0, le=600, description="SIGTERM: how long jobs in hand get")


def _host_key(value: str) -> str:
    parse_host_key(value)
    return value.strip()


class BackupConfig(Strict):
    """``[backup]``: who can read the backups (public keys only), where they go, how many are kept."""

    recipients: list[Annotated[str, AfterValidator(check_recipient)]] = Field(
        default_factory=list, description="age public keys (age1...) or SSH public keys that can open the backups"
    )
    targets: list[Annotated[str, AfterValidator(check_target)]] = Field(
        default_factory=lambda: ["backups"], description="folders (relative to the home) and sftp:// URLs"
    )
    host_keys: dict[Annotated[str, AfterValidator(check_host_port)], Annotated[str, AfterValidator(_host_key)]] = Field(
        default_factory=dict, description='pinned SSH host keys: "host:port" = "ssh-ed25519 AAAA..."'
    )
    keep_daily: int = Field(default=7, ge=0, le=10_000)
    keep_weekly: int = Field(default=4, ge=0, le=10_000)
    keep_monthly: int = Field(default=12, ge=0, le=10_000)
    label: str | None = Field(default=None, description="names the archives; default: the home folder's name")

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        if value is not None and not LABEL.match(value):
            raise ValueError("a label is letters, digits, '.', '-' and '_' (at most 64)")
        return value

    @model_validator(mode="after")
    def _sftp_hosts_pinned(self) -> BackupConfig:
        for target in self.targets:
            if is_sftp(target):
                host_port = parse_sftp_url(target).host_port
                if host_port not in self.host_keys:
                    raise ValueError(
                        f"host_keys: no pinned host key for {host_port} (target {target}); add "
                        f'"{host_port}" = "ssh-ed25519 AAAA..." (from a trusted \'ssh-keyscan -p PORT HOST\')'
                    )
        return self


class WebConfig(Strict):
    """``[web]``: the dashboard and its API, served over HTTPS by ``robohost serve`` (README, "Dashboard")."""

    enabled: bool = Field(default=True, description="serve the dashboard (once a user exists: robohost user add)")
    host: str = Field(default="127.0.0.1", min_length=1, description="address to listen on; 0.0.0.0: every one")
    port: int = Field(default=8443, ge=1, le=65535, description="the HTTPS port")
    http_port: int = Field(default=8080, ge=0, le=65535, description="plain HTTP, redirect only; 0 switches it off")
    names: list[str] = Field(
        default_factory=list, description="extra DNS names and IP addresses for the generated certificate"
    )
    cert: str | None = Field(default=None, description="your own certificate chain (PEM), relative to the home")
    key: str | None = Field(default=None, description="its private key (PEM, mode 0600), relative to the home")
    session_idle_minutes: float = Field(default=30.0, gt=0, le=7 * 24 * 60, description="sign out after this idle")
    session_max_hours: float = Field(default=12.0, gt=0, le=30 * 24, description="sign out this long after sign-in")
    lockout_failures: int = Field(default=5, ge=1, le=1000, description="failed sign-ins of an account: lock it")
    lockout_ip_failures: int = Field(default=20, ge=1, le=100_000, description="failed sign-ins from an address")
    lockout_minutes: float = Field(default=15.0, gt=0, le=7 * 24 * 60, description="how long a lock-out lasts")
    login_delay_s: float = Field(default=1.0, ge=0, le=60, description="wait after a failure, doubled per failure")
    refresh_s: float = Field(default=5.0, ge=1, le=3600, description="how often the pages refresh themselves")

    @model_validator(mode="after")
    def _cert_with_key(self) -> WebConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert: give both cert and key (your own certificate and its private key), or neither")
        if self.http_port == self.port:
            raise ValueError("http_port: must differ from port (or be 0 to switch the redirect off)")
        return self


class RobohostConfig(Strict):
    """The whole of ``robohost.toml``."""

    database: DatabaseConfig = DatabaseConfig()
    serve: ServeConfig = ServeConfig()
    backup: BackupConfig = BackupConfig()
    web: WebConfig = WebConfig()
    logging: LoggingConfig = LoggingConfig()
    health: HealthConfig = HealthConfig()
    alerts: AlertsConfig = AlertsConfig()
    metrics: MetricsConfig = MetricsConfig()
    robots: dict[str, RobotConfig] = Field(min_length=1)

    @field_validator("robots")
    @classmethod
    def _names(cls, value: dict[str, RobotConfig]) -> dict[str, RobotConfig]:
        for name in value:
            if not ROBOT_NAME.match(name):
                raise ValueError(f"robot name {name!r} must be letters, digits, '-' or '_' (at most 64)")
        return value


class CcxtSecrets(Strict):
    """API credentials of the ccxt exchange (market data needs none on most exchanges)."""

    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None


class AlpacaSecrets(Strict):
    """Alpaca API key id and secret (market data needs them)."""

    key_id: SecretStr
    secret_key: SecretStr


class FeedSecrets(Strict):
    """Credentials of the live sources."""

    ccxt: CcxtSecrets | None = None
    alpaca: AlpacaSecrets | None = None


class BackupSecrets(Strict):
    """The SSH key robohost logs in to SFTP targets with (a path; the key file stays out of every backup)."""

    ssh_key: str | None = Field(default=None, description="path of the SSH private key, relative to the home")
    ssh_key_passphrase: SecretStr | None = None


class SecretsConfig(Strict):
    """The whole of ``secrets.toml`` (mode 0600). Later issues add SMTP and backup keys."""

    database: DatabaseConfig | None = None
    feeds: FeedSecrets = FeedSecrets()
    backup: BackupSecrets = BackupSecrets()
    alerts: AlertSecrets = AlertSecrets()
    metrics: MetricsSecrets = MetricsSecrets()
