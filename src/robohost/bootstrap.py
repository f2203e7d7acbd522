"""The composition root: the only place that wires adapters (database, feeds, strategy loading) to
the services and the engine. The CLI asks it for ready-made objects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.journal import SqlJournal
from robohost.adapters.db.migrate import upgrade
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.db.writer import ProcessJournal
from robohost.adapters.feeds.replay import ReplayFeed, load_replay
from robohost.adapters.strategies import load_strategy_class
from robohost.config.loader import Home, load_home
from robohost.config.models import RobotConfig
from robohost.engine.ports import MarketFeed
from robohost.errors import ConfigError
from robohost.services.paper import PaperTrading

LOG_DIR = "logs"


@dataclass(frozen=True)
class ReplayOverrides:
    """Command-line overrides of a robot's replay settings."""

    speed: str | None = None
    start: str | None = None
    end: str | None = None


def parse_speed(text: str) -> float | None:
    """'max' -> None (as fast as possible); '60x' -> 60.0."""
    if text == "max":
        return None
    try:
        value = float(text.removesuffix("x"))
    except ValueError:
        raise ConfigError(f"speed must be 'max' or like '1x' / '60x', got {text!r}") from None
    if value <= 0:
        raise ConfigError(f"speed must be positive, got {text!r}")
    return value


def parse_time(text: str | None, what: str) -> datetime | None:
    """Parse an ISO date or date-time given on the command line or in the config."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what}: expected an ISO date like 2010-01-31 or 2010-01-31T15:30, got {text!r}") from None


def replay_feed(home: Path, cfg: RobotConfig, overrides: ReplayOverrides) -> ReplayFeed:
    """Build the robot's replay feed from its data files."""
    data = cfg.data
    return load_replay(
        [home / p if "=" not in p else p.split("=", 1)[0] + "=" + str(home / p.split("=", 1)[1]) for p in data.path],
        symbols=data.symbols,
        start=parse_time(overrides.start or data.start, "from"),
        end=parse_time(overrides.end or data.end, "to"),
        timezone=cfg.timezone,
        speed=parse_speed(overrides.speed or data.speed),
    )


def robot_feed(home: Home, cfg: RobotConfig, overrides: ReplayOverrides) -> MarketFeed:
    """The robot's market data: a replay of its files, or its live source.

    The live client libraries are imported only when a live source is used: ccxt alone takes over half a
    second to import, which every other command would pay.
    """
    data = cfg.data
    if data.source == "replay":
        return replay_feed(home.path, cfg, overrides)
    if overrides != ReplayOverrides():
        raise ConfigError("--speed, --from and --to apply to replays; this robot's data source is live")
    symbols = list(data.symbols or ())
    if data.source == "ccxt":
        from robohost.adapters.feeds.live.ccxt_feed import CcxtFeed  # heavy: only when used (see above)

        secrets = home.secrets.feeds.ccxt
        names = {"api_key": "apiKey", "secret": "secret", "password": "password"}  # ccxt's own spelling
        credentials = {names[key]: value.get_secret_value() for key, value in (secrets or []) if value is not None}
        return CcxtFeed(
            data.exchange or "",
            symbols,
            data.timeframe,
            sandbox=data.sandbox,
            urls=data.urls,
            credentials=credentials or None,
            use_websocket=data.websocket,
            bars_from=data.bars_from,
            grace_s=data.grace_s,
            stale_after_s=data.stale_after_s,
        )
    from robohost.adapters.feeds.live.alpaca_feed import AlpacaFeed, alpaca_history  # heavy: only when used

    keys = home.secrets.feeds.alpaca
    if keys is None:
        raise ConfigError(
            "the alpaca source needs credentials: [feeds.alpaca] key_id and secret_key in secrets.toml, "
            "or ROBOHOST_ALPACA_KEY_ID and ROBOHOST_ALPACA_SECRET_KEY"
        )
    key_id, secret_key = keys.key_id.get_secret_value(), keys.secret_key.get_secret_value()
    return AlpacaFeed(
        symbols,
        key_id=key_id,
        secret_key=secret_key,
        feed=data.feed,
        url_override=data.url,
        historical=alpaca_history(key_id=key_id, secret_key=secret_key, feed=data.feed, url_override=data.rest_url),
    )


def robot_logger(home: Path, robot: str) -> logging.Logger:
    """The robot's logger: warnings to stderr, everything to ``logs/robohost.log`` in the home."""
    log = logging.getLogger(f"robohost.robot.{robot}")
    log.setLevel(logging.INFO)
    target = (home / LOG_DIR / "robohost.log").resolve()
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == target for h in log.handlers):
        target.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(target, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        log.addHandler(handler)
    return log


class App:
    """An opened robot home: configuration, migrated database, journal and read model."""

    def __init__(self, home: Home, engine: sa.Engine) -> None:
        self.home = home
        self.engine = engine
        self.journal = SqlJournal(engine)
        self.read = ReadModel(engine)

    def paper(self, robot: str | None, overrides: ReplayOverrides | None = None) -> PaperTrading:
        """The run service of one robot."""
        name, cfg = self.home.robot(robot)
        return PaperTrading(
            name,
            cfg,
            self.journal,
            self.read,
            partial(robot_feed, self.home, overrides=overrides or ReplayOverrides()),
            partial(load_strategy_class, home=self.home.path),
            robot_logger(self.home.path, name),
            open_writer=lambda: ProcessJournal(self.journal, self.home.database_url),
        )

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def open_app(home_path: Path) -> App:
    """Load a home's configuration and open (and migrate) its database."""
    home = load_home(home_path)
    engine = make_engine(home.database_url)
    upgrade(engine)
    return App(home, engine)
