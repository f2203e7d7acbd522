"""The composition root: the only place that wires adapters (database, feeds, strategy loading) to
the services and the engine. The CLI asks it for ready-made objects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from robohost.adapters.db.backups import BackupStore
from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.jobs import JobStore, RequestStore
from robohost.adapters.db.journal import SqlJournal
from robohost.adapters.db.lease import RobotLease, process_holder, robot_lease
from robohost.adapters.db.migrate import upgrade
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.db.writer import ProcessJournal
from robohost.adapters.feeds.replay import ReplayFeed, load_replay
from robohost.adapters.ops.systemd import SystemdNotifier
from robohost.adapters.strategies import load_strategy_class
from robohost.config.loader import Home, load_home
from robohost.config.models import RobotConfig
from robohost.engine.ports import MarketFeed
from robohost.errors import ConfigError
from robohost.services.backup.make import backup_chore
from robohost.services.backup.settings import BackupSettings
from robohost.services.backup.verify import check_backups
from robohost.services.paper import PaperTrading
from robohost.services.scheduling.plan import robot_schedules
from robohost.services.server.chores import Chore, UnavailableChore, health_chore, report_chore
from robohost.services.server.clock import ServerClock
from robohost.services.server.runner import Alert, RobotRunner, RunnerPolicy
from robohost.services.server.server import Server

LOG_DIR = "logs"
REPORTS_DIR = "reports"


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


def _log_alert(log: logging.Logger) -> Alert:
    def alert(kind: str, details: dict[str, object]) -> None:
        log.error("ALERT %s %s", kind, details)

    return alert


def robot_logger(home: Path, robot: str, name: str | None = None) -> logging.Logger:
    """The robot's logger: warnings to stderr, everything to ``logs/robohost.log`` in the home."""
    log = logging.getLogger(name or f"robohost.robot.{robot}")
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

    def lease(self, robot: str, role: str, clock: Callable[[], int] = time.time_ns) -> RobotLease:
        """The robot's lease, to be held by this process in ``role`` (``serve``, ``run``)."""
        return robot_lease(self.engine, robot, process_holder(role), clock)

    def chores(self) -> dict[str, Chore | UnavailableChore]:
        """The chores a runner can do on this installation."""
        return {
            "health": health_chore(self.engine, self.read, self.home.path),
            "report": report_chore(self.read, self.home.path / REPORTS_DIR, sign_in=self.home.path),
            "weekly_report": report_chore(self.read, self.home.path / REPORTS_DIR, days=7, sign_in=self.home.path),
            **self.backup_chores(),
        }

    def backup_settings(self, recipients: Sequence[str] = (), targets: Sequence[str] = ()) -> BackupSettings:
        """The home's backup settings, with command-line recipients and targets added."""
        return BackupSettings.from_home(self.home, recipients, targets)

    def backup_chores(self) -> dict[str, Chore | UnavailableChore]:
        """``backup`` (daily by default) and ``verify`` (weekly: the checks possible without the private key)."""
        if not self.home.config.backup.recipients:
            why = "no [backup] recipients in robohost.toml: add an age public key (age1...) to make backups"
            return {"backup": UnavailableChore(why), "verify": UnavailableChore(why)}
        store = BackupStore(self.engine)
        log = robot_logger(self.home.path, "backup", "robohost.backup")
        return {
            "backup": backup_chore(self.backup_settings, store, log),
            "verify": lambda robot: check_backups(self.backup_settings(), store),
        }

    def server(
        self,
        clock: ServerClock,
        notifier: SystemdNotifier | None = None,
        robots: Sequence[str] | None = None,
        alert: Alert | None = None,
        tick_s: float | None = None,
    ) -> Server:
        """``robohost serve`` for the named robots (default: all of the home's); ``tick_s`` overrides the config."""
        names = list(robots) if robots else list(self.home.config.robots)
        for name in names:
            self.home.robot(name)  # a ConfigError for an unknown name
        log = robot_logger(self.home.path, "serve", "robohost.serve")
        chores = self.chores()
        schedules = robot_schedules(self.home.config)

        def ns_now() -> int:
            moment = clock.now()
            return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000

        def make_runners(workers: ThreadPoolExecutor) -> list[RobotRunner]:
            runners = []
            for name in names:
                plan = schedules[name]
                policy = RunnerPolicy(plan.mode, plan.grace, plan.retries, plan.retry_delay)
                robot_log = robot_logger(self.home.path, name)
                notify = alert or _log_alert(log)
                runners.append(
                    RobotRunner(
                        name,
                        plan,
                        policy,
                        self.lease(name, "serve", ns_now),
                        JobStore(self.engine),
                        RequestStore(self.engine),
                        partial(self._paper_for, name, robot_log),
                        chores,
                        workers,
                        robot_log,
                        notify,
                    )
                )
            return runners

        serve = self.home.config.serve
        return Server(make_runners, clock, log, notifier, tick_s or serve.tick_s, serve.stop_timeout_s)

    def _paper_for(self, robot: str, log: logging.Logger, alert: Alert) -> PaperTrading:
        service = self.paper(robot)
        service.log = log
        service.alert = lambda kind, details: alert(kind, {"robot": robot, **details})
        return service

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def open_app(home_path: Path) -> App:
    """Load a home's configuration and open (and migrate) its database."""
    home = load_home(home_path)
    engine = make_engine(home.database_url)
    upgrade(engine)
    return App(home, engine)
