"""Load and validate a robot home's configuration, once, at the edge.

Reads ``robohost.toml`` and ``secrets.toml`` (which must be mode 0600; under systemd the encrypted credential
``robohost-secrets`` in ``$CREDENTIALS_DIRECTORY`` takes its place) and the environment
(``ROBOHOST_DATABASE_URL``). Every error names the file, the key and what was expected.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from robohost.config.models import BackupSecrets, FeedSecrets, RobohostConfig, RobotConfig, SecretsConfig
from robohost.config.monitoring import AlertSecrets, MetricsSecrets
from robohost.errors import ConfigError

CONFIG_FILE = "robohost.toml"
SECRETS_FILE = "secrets.toml"
DATABASE_ENV = "ROBOHOST_DATABASE_URL"
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Home:
    """A validated robot home: its folder, configuration and resolved database URL."""

    path: Path
    config: RobohostConfig
    database_url: str
    secrets: SecretsConfig = field(default_factory=SecretsConfig)

    def robot(self, name: str | None) -> tuple[str, RobotConfig]:
        """Return the named robot, or the only one; a ``ConfigError`` lists the choices."""
        robots = self.config.robots
        if name is None:
            if len(robots) == 1:
                return next(iter(robots.items()))
            raise ConfigError(f"this home has several robots ({', '.join(robots)}): choose one with --robot NAME")
        if name not in robots:
            raise ConfigError(f"no robot named {name!r} in {self.path / CONFIG_FILE} (robots: {', '.join(robots)})")
        return name, robots[name]


def describe_errors(exc: ValidationError, file: Path) -> str:
    """One line for the first problem (and a count of the others): file, key, what is expected."""
    errors = exc.errors()
    first = errors[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "value_error":  # a check across keys: "key: what is wrong" names the key
        message = message.removeprefix("Value error, ")
        field_name, sep, rest = message.partition(": ")
        if sep and field_name.isidentifier():
            key, message = f"{key}.{field_name}", rest
    elif first["type"] == "extra_forbidden":
        message = "unknown key (check its spelling against the README's configuration reference)"
    elif first["type"] == "missing":
        message = "required key is missing"
    given = first.get("input")
    shown = "" if first["type"] in ("missing", "extra_forbidden") or isinstance(given, dict) else f" (got {given!r})"
    secret_file = file.name in (SECRETS_FILE, SECRETS_CREDENTIAL) or file.name.startswith("environment")
    if (isinstance(given, str) and "://" in given) or secret_file:
        shown = ""  # a secret, or a URL that may carry a password or a token: never echo it
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{file}: {key}: {message}{shown}{more}"


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{file} not found: create a home with 'robohost init HOME'") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None


def _validate(model: type[ModelT], data: dict[str, Any], file: Path) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, file)) from None


def _check_private(file: Path) -> None:
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{file} is readable by others (mode {mode:04o}): run 'chmod 600 {file}'")


def _has_password(url: str, file: Path, key: str) -> bool:
    try:
        return make_url(url).password is not None
    except ArgumentError:
        raise ConfigError(f"{file}: {key}: not a database URL (expected e.g. 'sqlite:///robohost.db')") from None


def resolve_database_url(url: str, home: Path) -> str:
    """Make a relative SQLite path relative to the home."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((home / url[len(prefix) :]).resolve())
    return url


CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
SECRETS_CREDENTIAL = "robohost-secrets"
"""Under systemd, ``LoadCredentialEncrypted=robohost-secrets:FILE`` puts the decrypted ``secrets.toml`` at
``$CREDENTIALS_DIRECTORY/robohost-secrets``; it then takes the place of the home's ``secrets.toml``."""


def credential_file() -> Path | None:
    """The secrets delivered as a systemd credential, when ``$CREDENTIALS_DIRECTORY`` holds one; else None."""
    directory = os.environ.get(CREDENTIALS_ENV)
    if not directory:
        return None
    file = Path(directory) / SECRETS_CREDENTIAL
    return file if file.is_file() else None


def load_home(path: Path) -> Home:
    """Load and validate the home at ``path``."""
    home = path.expanduser().resolve()
    config_file = home / CONFIG_FILE
    config = _validate(RobohostConfig, _read_toml(config_file), config_file)
    if _has_password(config.database.url, config_file, "database.url"):
        raise ConfigError(
            f"{config_file}: database.url: holds a password; move the URL to {SECRETS_FILE} "
            f"([database] url = ...) or the {DATABASE_ENV} environment variable"
        )
    url = config.database.url
    secrets_file = credential_file() or home / SECRETS_FILE
    secrets = SecretsConfig()
    if secrets_file.exists():
        if secrets_file.parent == home:  # a systemd credential is the service user's alone (0400) by design
            _check_private(secrets_file)
        secrets = _validate(SecretsConfig, _read_toml(secrets_file), secrets_file)
        if secrets.database is not None:
            url = secrets.database.url
    env_url = os.environ.get(DATABASE_ENV)
    if env_url:
        _has_password(env_url, Path(f"${DATABASE_ENV}"), "value")
        url = env_url
    secrets = _with_monitoring_env(_with_backup_env(_with_env_secrets(secrets)), config)
    if config.metrics.enabled and config.metrics.username and secrets.metrics.password is None:
        raise ConfigError(
            f"{config_file}: metrics.username: needs a password: [metrics] password in {SECRETS_FILE} "
            f"or {METRICS_PASSWORD_ENV}"
        )
    return Home(home, config, resolve_database_url(url, home), secrets)


FEED_SECRET_ENV = {
    ("ccxt", "api_key"): "ROBOHOST_CCXT_API_KEY",
    ("ccxt", "secret"): "ROBOHOST_CCXT_SECRET",
    ("ccxt", "password"): "ROBOHOST_CCXT_PASSWORD",
    ("alpaca", "key_id"): "ROBOHOST_ALPACA_KEY_ID",
    ("alpaca", "secret_key"): "ROBOHOST_ALPACA_SECRET_KEY",
}
"""Environment variables that override (or stand in for) the feed credentials of secrets.toml."""


def _with_env_secrets(secrets: SecretsConfig) -> SecretsConfig:
    feeds = secrets.feeds.model_dump()
    changed = False
    for (source, key), env in FEED_SECRET_ENV.items():
        value = os.environ.get(env)
        if value:
            feeds[source] = {**(feeds.get(source) or {}), key: value}
            changed = True
    if not changed:
        return secrets
    try:
        return secrets.model_copy(update={"feeds": FeedSecrets.model_validate(feeds)})
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, Path("environment (ROBOHOST_*)"))) from None


BACKUP_SSH_KEY_ENV = "ROBOHOST_BACKUP_SSH_KEY"
"""Environment variable naming the SSH private key for SFTP backup targets (overrides secrets.toml)."""


def _with_backup_env(secrets: SecretsConfig) -> SecretsConfig:
    path = os.environ.get(BACKUP_SSH_KEY_ENV)
    if not path:
        return secrets
    backup = BackupSecrets.model_validate({**secrets.backup.model_dump(), "ssh_key": path})
    return secrets.model_copy(update={"backup": backup})


SMTP_PASSWORD_ENV = "ROBOHOST_SMTP_PASSWORD"
METRICS_PASSWORD_ENV = "ROBOHOST_METRICS_PASSWORD"
WEBHOOK_ENV = "ROBOHOST_WEBHOOK_{name}_{key}"
"""Secrets of the alert channels and the metrics endpoint from the environment (override secrets.toml):
``ROBOHOST_SMTP_PASSWORD``, ``ROBOHOST_METRICS_PASSWORD``, and per webhook ``ROBOHOST_WEBHOOK_NAME_URL`` and
``ROBOHOST_WEBHOOK_NAME_TOKEN`` (NAME upper-cased, ``-`` as ``_``)."""


def webhook_env(name: str, key: str) -> str:
    """The environment variable of a webhook's secret ``key`` (``url`` or ``token``)."""
    return WEBHOOK_ENV.format(name=name.upper().replace("-", "_"), key=key.upper())


def _with_monitoring_env(secrets: SecretsConfig, config: RobohostConfig) -> SecretsConfig:
    alerts = secrets.alerts.model_dump(mode="python")
    changed = False
    password = os.environ.get(SMTP_PASSWORD_ENV)
    if password:
        alerts["email"] = {**alerts["email"], "password": password}
        changed = True
    for hook in config.alerts.webhooks:
        for key in ("url", "token"):
            value = os.environ.get(webhook_env(hook.name, key))
            if value:
                alerts["webhooks"][hook.name] = {**alerts["webhooks"].get(hook.name, {}), key: value}
                changed = True
    update: dict[str, Any] = {}
    try:
        if changed:
            update["alerts"] = AlertSecrets.model_validate(_reveal(alerts))
        metrics_password = os.environ.get(METRICS_PASSWORD_ENV)
        if metrics_password:
            update["metrics"] = MetricsSecrets(password=SecretStr(metrics_password))
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, Path("environment (ROBOHOST_*)"))) from None
    return secrets.model_copy(update=update) if update else secrets


def _reveal(value: Any) -> Any:
    """A dumped model with its ``SecretStr`` values as plain strings, to validate it again."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    return value
