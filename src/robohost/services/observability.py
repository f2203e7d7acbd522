"""From a home's configuration to its logging, alert channels and metrics endpoint (the composition root calls
these): which handlers, which secrets to mask, which channels with which credentials.

Every process masks the values of the home's secrets (``secrets.toml`` and the ``ROBOHOST_*`` environment),
of every home it opened, in every record; ``audit_command`` writes who ran which command to the audit log.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import shlex
import socket
from collections.abc import Sequence

from robohost.adapters.alerts.message import Channel
from robohost.adapters.alerts.smtp import EmailChannel
from robohost.adapters.alerts.webhook import WebhookChannel
from robohost.adapters.logging import setup as log_setup
from robohost.adapters.logging.records import REDACT
from robohost.adapters.logging.syslog_tls import SyslogTarget
from robohost.adapters.metrics import MetricsServer
from robohost.config.loader import Home
from robohost.config.monitoring import FACILITIES
from robohost.errors import ConfigError
from robohost.services.redaction import Redactor, environment_secrets, secret_values

MB = 1024 * 1024
LOG_DIR = "logs"
STATE_DIR = "state"
_SECRETS: set[str] = set()
_SECRET_OPTION = re.compile(r"^--?(password|passphrase|token|secret|secret-key|key-id|api-key)(=.*)?$", re.I)
audit_log = logging.getLogger(log_setup.AUDIT)


def home_redactor(home: Home) -> Redactor:
    """A redactor of every secret this process has seen: the home's, the environment's, earlier homes'."""
    _SECRETS.update(secret_values(home.secrets))
    _SECRETS.update(environment_secrets(os.environ))
    return Redactor(_SECRETS)


def remote_target(home: Home) -> SyslogTarget | None:
    """The home's remote syslog collector, if ``[logging.remote]`` names one."""
    remote = home.config.logging.remote
    if remote is None:
        return None
    return SyslogTarget(
        remote.host,
        remote.port,
        home.path / remote.ca,
        home.path / remote.cert if remote.cert else None,
        home.path / remote.key if remote.key else None,
        remote.server_name,
        remote.app_name,
        FACILITIES[remote.facility],
    )


def attach_home_logging(home: Home, debug: bool = False) -> log_setup.HomeHandlers:
    """Mask the home's secrets from now on; log to its files (and its collector) until ``detach``."""
    REDACT.set(home_redactor(home))
    cfg = home.config.logging
    level = logging.DEBUG if debug else getattr(logging, cfg.level.upper())
    remote = remote_target(home)
    handlers = log_setup.attach(
        home.path / LOG_DIR,
        level=level,
        max_bytes=int(cfg.file_max_mb * MB),
        backups=cfg.file_backups,
        remote=remote,
        remote_max_bytes=int(cfg.remote.queue_max_mb * MB) if cfg.remote else 0,
    )
    if remote is not None and not remote.ca.exists():
        logging.getLogger("robohost.logging").warning(
            "logging.remote.ca: %s does not exist: the collector cannot be verified, records wait in the queue",
            remote.ca,
        )
    return handlers


def actor() -> str:
    """Who runs this process: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def mask_argv(argv: Sequence[str]) -> list[str]:
    """The command line with the values of secret-looking options replaced by ``***``."""
    masked: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            masked.append("***")
            hide_next = False
            continue
        match = _SECRET_OPTION.match(arg)
        if match is None:
            masked.append(arg)
        elif match.group(2):
            masked.append(arg.split("=", 1)[0] + "=***")
        else:
            masked.append(arg)
            hide_next = True
    return masked


def audit_command(argv: Sequence[str], home: Home) -> None:
    """Write the command this process runs, and who runs it, to the audit log."""
    command = shlex.join(["robohost", *mask_argv(argv)])
    audit_log.info("%s ran %s", actor(), command, extra={"event": "command", "actor": actor(), "home": str(home.path)})


def alert_channels(home: Home) -> list[Channel]:
    """The home's alert channels (``[alerts]``) with their secrets."""
    alerts, secrets = home.config.alerts, home.secrets.alerts
    channels: list[Channel] = []
    email = alerts.email
    if email is not None:
        password = secrets.email.password
        if email.username and password is None:
            raise ConfigError(
                f"{home.path / 'robohost.toml'}: alerts.email.username: needs a password: [alerts.email] password "
                "in secrets.toml or ROBOHOST_SMTP_PASSWORD"
            )
        channels.append(
            EmailChannel(
                email.host,
                email.port,
                email.from_,
                email.to,
                starttls=email.starttls,
                username=email.username,
                password=password.get_secret_value() if password else None,
                ca=home.path / email.ca if email.ca else None,
                level=email.level,
                trading=email.trading,
                timeout_s=email.timeout_s,
            )
        )
    for hook in alerts.webhooks:
        secret = secrets.webhooks.get(hook.name)
        url = secret.url.get_secret_value() if secret and secret.url else hook.url
        token = secret.token.get_secret_value() if secret and secret.token else None
        try:
            channels.append(
                WebhookChannel(
                    hook.name,
                    hook.kind,
                    url,
                    token=token,
                    chat_id=hook.chat_id,
                    level=hook.level,
                    trading=hook.trading,
                    timeout_s=hook.timeout_s,
                )
            )
        except ValueError as exc:
            raise ConfigError(f"{home.path / 'robohost.toml'}: alerts.webhooks.{hook.name}: {exc}") from None
    return channels


def metrics_server(home: Home, registry: object) -> MetricsServer | None:
    """Serve the metrics as ``[metrics]`` says; None (and a warning) when its port is taken."""
    cfg = home.config.metrics
    if not cfg.enabled:
        return None
    password = home.secrets.metrics.password
    log = logging.getLogger("robohost.metrics")
    try:
        server = MetricsServer(
            registry,  # type: ignore[arg-type]
            cfg.host,
            cfg.port,
            cfg.username,
            password.get_secret_value() if password else None,
        )
    except OSError as exc:
        log.warning(
            "metrics endpoint not started: %s:%d: %s", cfg.host, cfg.port, exc, extra={"event": "metrics_unavailable"}
        )
        return None
    host, port = server.address
    log.info(
        "metrics at http://%s:%d/metrics%s",
        host,
        port,
        " (basic authentication)" if cfg.username else "",
        extra={"event": "metrics_started"},
    )
    return server
