"""The composition root: the only place that wires adapters (database, feeds, strategy loading) to
the services and the engine. The CLI asks it for ready-made objects.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa

from robohost import __version__
from robohost.adapters.alerts.outbox import Outbox
from robohost.adapters.db.audit import AuditLog
from robohost.adapters.db.auth import AuthStore
from robohost.adapters.db.backups import BackupStore
from robohost.adapters.db.dashboard import DashboardQueries
from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.jobs import JobStore, RequestStore
from robohost.adapters.db.journal import SqlJournal
from robohost.adapters.db.lease import RobotLease, process_holder, read_lease, robot_lease
from robohost.adapters.db.migrate import upgrade
from robohost.adapters.db.monitoring import last_good_backup
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.db.writer import ProcessJournal
from robohost.adapters.feeds.replay import ReplayFeed, load_replay
from robohost.adapters.logging.setup import HomeHandlers
from robohost.adapters.logging.setup import console as console_handler
from robohost.adapters.metrics import Metrics, MetricsServer
from robohost.adapters.ops.state_file import JsonStateFile
from robohost.adapters.ops.systemd import SystemdNotifier
from robohost.adapters.strategies import load_strategy_class
from robohost.adapters.web.server import WebServer
from robohost.adapters.web.tls import server_context
from robohost.config.backup_syntax import is_sftp
from robohost.config.loader import Home, load_home
from robohost.config.models import RobotConfig
from robohost.engine.ports import MarketFeed
from robohost.errors import ConfigError
from robohost.services.alerts import AlertDispatcher
from robohost.services.auth import SECOND, AuthService, LockoutPolicy, SessionPolicy
from robohost.services.backup.make import backup_chore
from robohost.services.backup.settings import BackupSettings
from robohost.services.backup.verify import check_backups
from robohost.services.certificates import Certificates, ensure_certificates
from robohost.services.control import RobotControl
from robohost.services.dashboard import Dashboard
from robohost.services.dashboard_files import HomeBackups
from robohost.services.health import EXIT_CODES, Check, HealthProbe, evaluate, server_pids
from robohost.services.monitoring import LatencyMetricsProbe, ObservedJobStore, ObservedWriter, daily_summary
from robohost.services.observability import (
    STATE_DIR,
    alert_channels,
    attach_home_logging,
    audit_command,
    home_redactor,
    metrics_server,
)
from robohost.services.paper import PaperTrading, WriterJournal
from robohost.services.scheduling.plan import Schedule, robot_schedules
from robohost.services.server.chores import Chore, UnavailableChore, health_chore, report_chore
from robohost.services.server.clock import ServerClock
from robohost.services.server.runner import Alert, RobotRunner, RunnerPolicy
from robohost.services.server.server import Server
from robohost.web.app import create_app, redirect_app
from robohost.web.context import WebContext

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


def robot_logger(home: Path, robot: str, name: str | None = None) -> logging.Logger:
    """The robot's logger (``robohost.robot.NAME``): its records reach the open home's log files (JSON lines in
    ``logs/robohost.log``, see ``open_app``), its remote collector and the console."""
    return logging.getLogger(name or f"robohost.robot.{robot}")


_PROCESS: dict[str, object] = {"debug": False, "argv": None}


def init_logging(
    debug: bool = False,
    *,
    stream: TextIO | None = None,
    level: int = logging.WARNING,
    with_time: bool = False,
    journald: bool = False,
    argv: Sequence[str] | None = None,
) -> None:
    """Once per process, at the command line's edge: mask secrets in every record from now on, and write
    readable lines of robohost's records at ``level`` (everything with ``debug``) to ``stream`` (None: stderr).
    ``argv``: the command, written to the audit log of the home it opens."""
    debug = bool(_PROCESS["debug"]) or debug
    _PROCESS["debug"] = debug
    if argv is not None:
        _PROCESS["argv"] = list(argv)
    console_handler(stream, logging.DEBUG if debug else level, with_time=with_time, journald=journald)
    if debug:
        logging.getLogger("robohost").setLevel(logging.DEBUG)


REPLAY_FREEZES_GC = True
"""``robohost serve`` freezes the objects that exist once a replay's data are loaded out of the garbage collector
(as a live run does): a full collection of a large heap would hold every thread, the dashboard's too."""


class App:
    """An opened robot home: configuration, migrated database, journal and read model."""

    def __init__(self, home: Home, engine: sa.Engine) -> None:
        self.home = home
        self.engine = engine
        self.journal = SqlJournal(engine)
        self.read = ReadModel(engine)
        self.metrics: Metrics | None = None  # robohost serve's, once it serves them
        self.logging: HomeHandlers | None = None  # the home's log handlers (open_app)
        self._alerts: AlertDispatcher | None = None
        self._metrics_server: MetricsServer | None = None

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
            open_writer=lambda: self._observed(name, cfg, ProcessJournal(self.journal, self.home.database_url)),
            alert=lambda kind, details: self.alerts()(kind, {"robot": name, **details}),
        )

    def _observed(self, robot: str, cfg: RobotConfig, writer: WriterJournal) -> WriterJournal:
        """The run's writer, reporting commits to the metrics and the opt-in trading notifications."""
        trading = self.home.config.alerts.trading
        if self.metrics is None and not (trading.fills or trading.halts):
            return writer
        notify = self.alerts().notify if (trading.fills or trading.halts) else None
        return ObservedWriter(writer, robot, cfg.starting_cash, cfg.data.live, self.metrics, notify,
                              trading.fills, trading.halts)  # fmt: skip

    def alerts(self) -> AlertDispatcher:
        """The home's alerts: deduplicated, reminded, recovered, sent to the ``[alerts]`` channels."""
        if self._alerts is None:
            cfg = self.home.config.alerts
            metrics = self.metrics
            outcome = (lambda channel, result: metrics.alerts.labels(channel, result).inc()) if metrics else None
            state = JsonStateFile(self.home.path / STATE_DIR / "alerts.json")
            outbox = Outbox(cfg.retries, cfg.retry_delay_s, outcome)
            self._alerts = AlertDispatcher(alert_channels(self.home), outbox, state, cfg.reminder)
        return self._alerts

    def health_probe(self, processes: Callable[[], list[int]] | None = None) -> HealthProbe:
        """Readings of this home's machine, database and robots; ``processes``: whose memory and files to check
        (default: the local processes holding the robots' leases)."""
        robots = list(self.home.config.robots)
        state = JsonStateFile(self.home.path / STATE_DIR / "capacity.json")
        found = processes or (lambda: server_pids(self.engine, robots))
        return HealthProbe(self.engine, self.read, self.home.path, self.home.config, state, found)

    def health_checks(self, robots: Sequence[str] | None = None) -> list[Check]:
        """``robohost health``: every check of the machine and the robots (default: all of them)."""
        names = list(robots) if robots else list(self.home.config.robots)
        for name in names:
            self.home.robot(name)
        return evaluate(self.health_probe().readings(names), self.home.config.health)

    def _report_health(self, checks: Sequence[Check]) -> None:
        self.alerts().health(checks)
        if self.metrics is not None:
            for check in checks:
                self.metrics.health.labels(check.name).set(EXIT_CODES[check.level])
            self.metrics.alerts_open.set(len(self.alerts().state.read().get("alerts", {})))

    def _daily_summary(self, robot: str) -> None:
        """The day's P&L to the channels that carry trading notifications, when switched on."""
        if not self.home.config.alerts.trading.daily_summary:
            return
        try:
            found = daily_summary(self.engine, robot, self.home.robot(robot)[1].timezone, datetime.now(UTC))
            if found is not None:
                self.alerts().notify("daily_summary", found[0], found[1], robot)
        except Exception:  # the report still gets written
            logging.getLogger("robohost.alerts").exception("the daily P&L summary of %s failed", robot)

    def lease(self, robot: str, role: str, clock: Callable[[], int] = time.time_ns) -> RobotLease:
        """The robot's lease, to be held by this process in ``role`` (``serve``, ``run``)."""
        return robot_lease(self.engine, robot, process_holder(role), clock)

    def chores(self) -> dict[str, Chore | UnavailableChore]:
        """The chores a runner can do on this installation."""
        return {
            "health": health_chore(self._measure(), self._report_health),
            "report": report_chore(
                self.read, self.home.path / REPORTS_DIR, before=self._daily_summary, sign_in=self.home.path
            ),
            "weekly_report": report_chore(self.read, self.home.path / REPORTS_DIR, days=7, sign_in=self.home.path),
            **self.backup_chores(),
        }

    def _measure(self) -> Callable[[str], list[Check]]:
        """The health chore's checks, inside the server: this process's memory and open files."""
        probe = self.health_probe(lambda: [os.getpid()])
        return lambda robot: evaluate(probe.readings([robot]), self.home.config.health)

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
        self.start_metrics()
        notify = alert or self.alerts()
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
                runners.append(
                    RobotRunner(
                        name,
                        plan,
                        policy,
                        self.lease(name, "serve", ns_now),
                        ObservedJobStore(self.engine, self._job_outcome),
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

    def start_metrics(self) -> None:
        """Create the metrics and serve them (``[metrics]``), once; ``robohost serve`` calls it."""
        if self.metrics is not None:
            return
        self.metrics = Metrics()

        def backup_age() -> dict[tuple[str, ...], float]:
            last = last_good_backup(self.engine)
            return {(): time.time() - last / 1e9} if last is not None else {}

        self.metrics.scraped("robohost_backup_age_seconds", "Seconds since the last good backup ended.", (), backup_age)
        remote = self.logging.remote if self.logging is not None else None
        if remote is not None:
            queue = remote.queue
            self.metrics.scraped("robohost_remote_log_queue", "Records waiting for the remote collector.", (),
                                 lambda: {(): float(queue.stats()[0])})  # fmt: skip
            self.metrics.scraped("robohost_remote_log_dropped", "Records dropped (queue full), not reported yet.",
                                 (), lambda: {(): float(queue.stats()[2])})  # fmt: skip
        self._metrics_server = metrics_server(self.home, self.metrics.registry)

    def _job_outcome(self, robot: str, job: str, outcome: str) -> None:
        """A job ended: count it; a success clears its failure alert."""
        if self.metrics is not None:
            self.metrics.jobs.labels(robot, job, outcome).inc()
        if outcome == "ok":
            self.alerts().job_ok(robot, job)

    # -- the dashboard ------------------------------------------------------------------------------------------

    def audit(self) -> AuditLog:
        """The audit log of the dashboard, the API and ``robohost user``."""
        return AuditLog(self.engine)

    def auth(self) -> AuthService:
        """Users, sign-in, sessions and tokens, with the home's ``[web]`` lock-out and session settings."""
        web = self.home.config.web
        lockout = LockoutPolicy(
            account_limit=web.lockout_failures,
            ip_limit=web.lockout_ip_failures,
            lockout=int(web.lockout_minutes * 60 * SECOND),
            delay=int(web.login_delay_s * SECOND),
        )
        sessions = SessionPolicy(
            idle=int(web.session_idle_minutes * 60 * SECOND), absolute=int(web.session_max_hours * 3600 * SECOND)
        )
        log = robot_logger(self.home.path, "auth", "robohost.auth")
        return AuthService(AuthStore(self.engine), self.audit(), log, lockout, sessions)

    def certificates(self, renew: bool = False) -> Certificates:
        """The dashboard's certificate (the owner's, or the home's generated one, made or renewed as needed)."""
        return ensure_certificates(self.home.path, self.home.config.web, datetime.now(UTC), renew=renew)

    def web_context(self) -> WebContext:
        """What the dashboard app is given."""
        config = self.home.config
        audit = self.audit()
        schedules: dict[str, Schedule] = {}

        def schedule(robot: str) -> Schedule:
            if robot not in schedules:  # calendars take a moment to load: only when first asked
                schedules.update(robot_schedules(config))
            return schedules[robot]

        dashboard = Dashboard(
            config.robots,
            self.read,
            DashboardQueries(self.engine),
            JobStore(self.engine),
            partial(read_lease, self.engine),
            schedule,
            self.home.path,
        )
        settings = self.backup_settings()
        folders = [settings.target_folder(spec) for spec in settings.targets if not is_sftp(spec)]
        auth = self.auth()
        auth.defer = ThreadPoolExecutor(1, thread_name_prefix="robohost-web-writes").submit
        return WebContext(
            config=config.web,
            auth=auth,
            dashboard=dashboard,
            control=RobotControl(config.robots, RequestStore(self.engine), self.read, audit),
            audit=audit,
            reports_dir=self.home.path / REPORTS_DIR,
            log_file=self.home.path / LOG_DIR / "robohost.log",
            redactor=home_redactor(self.home),
            backups=HomeBackups(BackupStore(self.engine), lambda: folders),
            version=__version__,
        )

    def web_server(self) -> WebServer | None:
        """``robohost serve``'s dashboard, not yet started; None when ``[web] enabled = false`` or no user exists
        (nobody could sign in: ``robohost user add`` first)."""
        web = self.home.config.web
        log = robot_logger(self.home.path, "web", "robohost.web")
        if not web.enabled:
            log.info("dashboard off ([web] enabled = false)")
            return None
        context = self.web_context()
        if not context.auth.has_users():
            log.warning("dashboard not started: no user can sign in yet (create one: robohost user add NAME)")
            return None
        context.auth.prune(time.time_ns())
        certs = self.certificates()
        if certs.made:
            log.info("dashboard certificate %s: %s", "made" if "ca" in certs.made else "renewed", certs.cert)
        fallback = web.host if web.host not in ("0.0.0.0", "::") else "localhost"
        return WebServer(
            create_app(context),
            server_context(certs.cert, certs.key),
            web.host,
            web.port,
            redirect_app(web.port, fallback) if web.http_port else None,
            web.http_port,
            log,
        )

    def _paper_for(self, robot: str, log: logging.Logger, alert: Alert) -> PaperTrading:
        service = self.paper(robot)
        service.freeze_gc = REPLAY_FREEZES_GC  # live runs always do
        service.log = log
        service.alert = lambda kind, details: alert(kind, {"robot": robot, **details})
        if self.metrics is not None:  # the event-to-order latency of live bars
            probe = LatencyMetricsProbe(self.metrics, robot)
            service.probe = probe
            make_feed = service.make_feed

            def probed(cfg: RobotConfig) -> MarketFeed:
                feed = make_feed(cfg)
                if hasattr(feed, "probe"):
                    feed.probe = probe
                return feed

            service.make_feed = probed
        return service

    def close(self) -> None:
        """Deliver the alerts in hand (bounded), stop the metrics endpoint, detach the logs, release the database."""
        if self._alerts is not None:
            self._alerts.close()
        if self._metrics_server is not None:
            self._metrics_server.close()
        if self.logging is not None:
            self.logging.detach()
            self.logging = None
        self.engine.dispose()


def open_app(home_path: Path) -> App:
    """Load a home's configuration and open (and migrate) its database."""
    home = load_home(home_path)
    handlers = attach_home_logging(home, debug=bool(_PROCESS["debug"]))
    try:
        argv = _PROCESS["argv"]
        if isinstance(argv, list):
            _PROCESS["argv"] = None  # once per process
            audit_command(argv, home)
        engine = make_engine(home.database_url)
        upgrade(engine)
    except BaseException:
        handlers.detach()
        raise
    app = App(home, engine)
    app.logging = handlers
    return app
