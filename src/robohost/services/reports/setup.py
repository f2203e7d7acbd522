"""``robohost report setup``: the setup-and-run instructions of this very deployment, as Markdown.

Generated from the real configuration and state: where things are, what runs when (in the exchange's and
the server's time), the data sources and where their credentials live, the risk limits, how to operate,
stop and recover the robot. Secret values never appear — only where each secret is kept. Sections for
parts a release does not have yet say so plainly.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable
from datetime import datetime, tzinfo
from pathlib import Path

from sqlalchemy.engine import make_url

from robohost import __version__
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.web.tls import fingerprint as fingerprint_of
from robohost.adapters.web.tls import load_cert
from robohost.config.loader import CONFIG_FILE, DATABASE_ENV, FEED_SECRET_ENV, SECRETS_FILE, Home
from robohost.config.models import RobotConfig
from robohost.services.certificates import TLS_DIR
from robohost.services.scheduling.plan import robot_schedules
from robohost.services.status import robot_status

UNIT_NAME = "robohost.service"
NEXT_RUNS = 3
"""How many next runs of each job the document lists."""


def _safe_url(url: str) -> str:
    """The database URL with any password masked."""
    return make_url(url).render_as_string(hide_password=True)


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _command(home: Path) -> str:
    return f"{Path(sys.executable).with_name('robohost')} --home {home}"


def _data_lines(name: str, cfg: RobotConfig, home: Home) -> list[str]:
    data = cfg.data
    if data.source == "replay":
        files = ", ".join(f"`{p}`" for p in data.path)
        return [f"- Market data: a **replay** of {files} (symbols: {', '.join(data.symbols or ['all in the files'])})."]
    lines = [f"- Market data: the live source **{data.source}**, symbols {', '.join(data.symbols or [])}."]
    if data.source == "ccxt":
        lines.append(f"  Exchange `{data.exchange}`, timeframe {data.timeframe}, sandbox {data.sandbox}, "
                     f"{'websocket' if data.websocket else 'REST polling'}, bars from {data.bars_from}.")  # fmt: skip
    else:
        lines.append(f"  Alpaca {data.feed.upper()} feed, one-minute bars.")
    keys = [env for (source, _key), env in FEED_SECRET_ENV.items() if source == data.source]
    present = getattr(home.secrets.feeds, data.source) is not None
    lines.append(
        f"  Credentials: `[feeds.{data.source}]` in `{SECRETS_FILE}` (mode 0600) or the environment "
        f"({', '.join(f'`{k}`' for k in keys)}); currently {'set' if present else 'not set'}. "
        "Their values are never written here, in logs or in the database."
    )
    lines.append(f"  Check it first: `{_command(home.path)} feeds check --robot {name}`.")
    return lines


def _risk_lines(cfg: RobotConfig) -> list[str]:
    limits = cfg.risk.model_dump()
    rows = [(key, "off" if value is None else value) for key, value in limits.items()]
    return _table(("risk limit", "value"), rows)


def _schedule_lines(home: Home, now: datetime, local: tzinfo) -> list[str]:
    lines: list[str] = []
    for name, schedule in robot_schedules(home.config).items():
        cfg = home.config.robots[name].schedule_settings
        lines.append(f"### Robot `{name}`")
        lines.append("")
        lines.append(
            f"Calendar **{cfg.calendar}** ({schedule.zone.key}), mode **{cfg.mode}**: session from "
            f"`{cfg.session_start}` to `{cfg.session_end}`; a missed job may run up to {cfg.grace} late; a failed "
            f"job is retried {cfg.retries} times, {cfg.retry_delay} apart, then alerted."
        )
        lines.append("")
        chores = ", ".join(f"{job} at `{when}`" for job, when in cfg.enabled_jobs.items()) or "none"
        lines.append(f"Chores: {chores}.")
        lines.append("")
        upcoming = schedule.next_jobs(now, NEXT_RUNS, per_job=True)
        rows = [
            (
                job.job,
                f"{job.at.astimezone(schedule.zone):%a %Y-%m-%d %H:%M %Z}",
                f"{job.at.astimezone(local):%a %Y-%m-%d %H:%M %Z}",
                f"{job.until.astimezone(schedule.zone):%H:%M %Z}" if job.until else "",
            )
            for job in upcoming
        ]
        lines += _table(("job", "exchange time", "server time", "until"), rows)
    return lines


def _backup_lines(home: Home, cmd: str) -> list[str]:
    backup = home.config.backup
    if not backup.recipients:
        return [
            'Backups are **not configured**: add `[backup] recipients = ["age1..."]` (your age public key; keep '
            "the private key off this server) and targets to `robohost.toml`. Until then the scheduled `backup` "
            "chore is recorded as skipped.",
            "",
        ]
    return [
        f"Daily encrypted backups (age, to {len(backup.recipients)} recipient key(s); this server holds only "
        "public keys and cannot read them) of the database and the home without `secrets.toml`, copied to:",
        "",
        *[f"- `{target}`" for target in backup.targets],
        "",
        f"Kept: {backup.keep_daily} daily, {backup.keep_weekly} weekly, {backup.keep_monthly} monthly. "
        "SFTP host keys are pinned in `[backup] host_keys`; the SSH key robohost logs in with lives in "
        f"`{SECRETS_FILE}` `[backup] ssh_key` (or `$ROBOHOST_BACKUP_SSH_KEY`).",
        "",
        *_table(
            ("to", "run"),
            [
                ("back up now", f"`{cmd} backup`"),
                ("list the backups", f"`{cmd} backup list`"),
                ("check one with your private key", f"`{cmd} backup verify --identity KEY.txt`"),
                ("copy them to your computer", f"`robohost backup pull {backup.targets[0]} --to DIR`"),
                ("restore (moves the current state aside)", f"`{cmd} restore FILE.tar.zst.age --identity KEY.txt`"),
                ("open one without robohost", "`age -d -i KEY.txt FILE.tar.zst.age | zstd -d | tar -x`"),
            ],
        ),
    ]


def _dashboard_lines(home: Home, cmd: str) -> list[str]:
    web = home.config.web
    if not web.enabled:
        return ["The dashboard is switched off (`[web] enabled = false`); everything is done with the commands.", ""]
    lines = [
        f"`robohost serve` serves the dashboard and its API (`/api/v1`) at **https://{web.host}:{web.port}/**"
        + (f" (plain HTTP on port {web.http_port} only redirects there)." if web.http_port else "."),
    ]
    ca = home.path / TLS_DIR / "ca.pem"
    if web.cert:
        lines.append(f"Its certificate is your own: `{web.cert}`.")
    elif ca.exists():
        lines.append(
            f"Its certificate comes from this home's private CA (`{ca}`), SHA-256 fingerprint "
            f"`{fingerprint_of(load_cert(ca))}`: import `ca.pem` into your browser after checking that fingerprint "
            f"(`{cmd} web cert` prints it again)."
        )
    else:
        lines.append(f"Its private CA is made on first use; `{cmd} web cert` makes it and prints its fingerprint.")
    lines += [
        "",
        f"There is no default account. Create one with `{cmd} user add NAME` (the password is asked, never given "
        f"on the command line; `--totp` adds a second factor); `{cmd} user list` shows who may sign in. Failed "
        f"sign-ins are rate-limited, an account locks after {web.lockout_failures} failures for "
        f"{web.lockout_minutes:g} minutes, and every sign-in and action is in the audit log.",
        "",
    ]
    return lines


def _observability_lines(home: Home, cmd: str) -> list[str]:
    cfg = home.config
    lines = [
        f"- Local: `{home.path / 'logs' / 'robohost.log'}` (JSON lines, rotated at {cfg.logging.file_max_mb:g} MB, "
        f"{cfg.logging.file_backups} kept) and the append-only `{home.path / 'logs' / 'audit.log'}`; the server also "
        "logs to stdout, which systemd's journal keeps (`journalctl -u robohost`). Secrets are masked before any "
        "handler sees a record.",
    ]
    remote = cfg.logging.remote
    if remote is not None:
        lines.append(
            f"- Remote: RFC 5424 over TLS to `{remote.host}:{remote.port}` (CA `{remote.ca}`); while it is "
            f"unreachable, records wait in `logs/remote-queue.db` (at most {remote.queue_max_mb:g} MB)."
        )
    else:
        lines.append("- Remote: no collector configured (`[logging.remote]`).")
    alerts = cfg.alerts
    channels = []
    if alerts.email is not None:
        channels.append(f"e-mail to {', '.join(alerts.email.to)} via {alerts.email.host}:{alerts.email.port}")
    channels += [f"a {hook.kind} webhook `{hook.name}`" for hook in alerts.webhooks]
    lines.append(
        "- Alerts (missed or failed jobs, a halted robot, stale live data, a lost lease, health checks): "
        + ("; ".join(channels) if channels else "no channel configured: they are only logged as `ALERT` lines")
        + f". A problem alerts once, is repeated after {alerts.reminder_after}, and its recovery is announced."
    )
    lines.append(f"- Health: `{cmd} health` (exit 0 ok, 1 warn, 2 critical); checked by the `health` chore too.")
    if cfg.metrics.enabled:
        lines.append(f"- Metrics: Prometheus at `http://{cfg.metrics.host}:{cfg.metrics.port}/metrics`.")
    return [*lines, ""]


def setup_document(home: Home, read: ReadModel, now: datetime, local: tzinfo) -> str:
    """The setup-and-run instructions of the deployment in ``home``, as Markdown."""
    cmd = _command(home.path)
    secrets_file = home.path / SECRETS_FILE
    lines = [
        f"# Setup and run: robohost at {home.path}",
        "",
        f"Generated {now:%Y-%m-%d %H:%M %Z} by robohost {__version__} (Python {platform.python_version()}) from "
        f"`{home.path / CONFIG_FILE}` and the trading database. Regenerate it after any change: "
        f"`{cmd} report setup`.",
        "",
        "## What runs where",
        "",
        *_table(
            ("what", "where"),
            [
                ("robot home (configuration, strategies, data, reports, logs)", f"`{home.path}`"),
                ("configuration", f"`{home.path / CONFIG_FILE}`"),
                ("secrets (mode 0600; never copied into logs, reports or backups)", f"`{secrets_file}`"),
                ("trading database", f"`{_safe_url(home.database_url)}` (or `${DATABASE_ENV}`)"),
                ("the server process", f"`{cmd} serve`, as the systemd service `{UNIT_NAME}`"),
                ("logs", f"`{home.path / 'logs' / 'robohost.log'}`, and the server's stdout (journald)"),
                ("reports", f"`{home.path / 'reports'}`"),
                ("program", f"`{Path(sys.executable).with_name('robohost')}`"),
            ],
        ),
        "### The systemd service",
        "",
        f"Install as `/etc/systemd/system/{UNIT_NAME}`, then `systemctl daemon-reload && systemctl enable --now "
        f"{UNIT_NAME}`. Run it as a dedicated user that owns the home.",
        "",
        "```ini",
        "[Unit]",
        "Description=robohost server",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=notify",
        f"ExecStart={cmd} serve",
        "WatchdogSec=30",
        "Restart=on-failure",
        "RestartSec=5",
        f"TimeoutStopSec={int(home.config.serve.stop_timeout_s) + 30}",
        "User=robohost",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "```",
        "",
        "## The robots",
        "",
    ]
    for name, cfg in home.config.robots.items():
        status = robot_status(read, name)
        last = read.latest_run(name)
        lines += [
            f"### `{name}`",
            "",
            f"- Strategy `{cfg.strategy}` with parameters {dict(cfg.params) or '{}'}; starting cash "
            f"{cfg.starting_cash:,}; market time zone {cfg.timezone}; seed {cfg.seed}.",
            *_data_lines(name, cfg, home),
            f"- Fills: latency {cfg.fills.latency_ms} ms, slippage {cfg.fills.slippage_bps} bps, at most "
            f"{cfg.fills.participation:.0%} of a bar's volume; fees {cfg.fees.per_share} per share, "
            f"{cfg.fees.percent} % of notional, minimum {cfg.fees.minimum}.",
            f"- On a strategy error: {cfg.on_strategy_error}.",
            f"- State now: **{status.state}**" + (f" ({status.reason})" if status.reason else "") + ".",
            f"- Last run: {last.id} ({last.status})." if last else "- Last run: none yet.",
            "",
            *_risk_lines(cfg),
        ]
    lines += [
        "## Schedule",
        "",
        "Times are planned in the exchange's time zone; the server's are shown beside them. "
        f"`{cmd} schedule show` prints the same at any time; `{cmd} schedule export --cron|--systemd` writes "
        "timers for those who prefer the system's.",
        "",
        *_schedule_lines(home, now, local),
        "## Operating the robot",
        "",
        *_table(
            ("to", "run"),
            [
                ("see how the robot is doing", f"`{cmd} status`"),
                ("start a session now (modes manual, both)", f"`{cmd} trigger run --robot NAME --wait 30`"),
                ("stop the session now", f"`{cmd} trigger stop --robot NAME --wait 30`"),
                ("see the job history", f"`{cmd} jobs`"),
                ("write the P&L report", f"`{cmd} report pnl --robot NAME`"),
                ("clear a kill switch after a halt", f"`{cmd} resume --robot NAME` (after checking why)"),
                ("orders, fills, equity", f"`{cmd} orders`, `{cmd} fills`, `{cmd} equity`"),
            ],
        ),
        "## In an emergency",
        "",
        f"1. Stop trading at once: `systemctl stop {UNIT_NAME}` (SIGTERM: the session stops at its next commit, "
        f"nothing is lost), or for one robot `{cmd} trigger stop --robot NAME`.",
        f"2. Keep it from starting again: `systemctl disable {UNIT_NAME}`.",
        f"3. Nothing here trades real money: robohost paper-trades. A restart resumes each run from its last "
        f"commit; `{cmd} status` shows `interrupted` for a run whose process died.",
        "",
        "## Sign-in and the dashboard",
        "",
        *_dashboard_lines(home, cmd),
        "## Backups and restore",
        "",
        *_backup_lines(home, cmd),
        "## Upgrades",
        "",
        f"`{cmd} upgrade robohost==X.Y.Z --service {UNIT_NAME}` (or a wheel file): takes a verified backup, "
        "stops the service, installs the new version, migrates the database, starts it and runs a health check; "
        "on any failure it puts the previous version and the pre-upgrade database back, and says so.",
        "",
        "## Logs and alerts",
        "",
        *_observability_lines(home, cmd),
    ]
    return "\n".join(lines)
