"""The configuration schema of ``robohost.toml``: frozen models that reject unknown keys.

Defaults here are the documented defaults (README, "Configuration reference"). Imports pydantic
and the standard library only.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

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

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like 'America/New_York')") from None
        return value


class DatabaseConfig(Strict):
    """The trading database. Credentials never go here: use secrets.toml or ROBOHOST_DATABASE_URL."""

    url: str = "sqlite:///robohost.db"


class RobohostConfig(Strict):
    """The whole of ``robohost.toml``."""

    database: DatabaseConfig = DatabaseConfig()
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


class SecretsConfig(Strict):
    """The whole of ``secrets.toml`` (mode 0600). Later issues add SMTP and backup keys."""

    database: DatabaseConfig | None = None
    feeds: FeedSecrets = FeedSecrets()
