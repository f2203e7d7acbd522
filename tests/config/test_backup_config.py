"""The ``[backup]`` table: public keys only, targets, pinned host keys; errors name the file and the dotted key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from robohost.config.backup_syntax import fingerprint, parse_host_key, parse_sftp_url
from robohost.config.loader import BACKUP_SSH_KEY_ENV, load_home
from robohost.errors import ConfigError

ROBOT = """
[robots.bot]
strategy = "strategies/bot.py:Bot"

[robots.bot.data]
path = ["data/bars.csv"]
"""
AGE = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKUP_SSH_KEY_ENV, raising=False)
    monkeypatch.delenv("ROBOHOST_DATABASE_URL", raising=False)


def _home(tmp_path: Path, backup: str, secrets: str | None = None) -> Path:
    (tmp_path / "robohost.toml").write_text(ROBOT + "\n[backup]\n" + backup)
    if secrets is not None:
        (tmp_path / "secrets.toml").write_text(secrets)
        os.chmod(tmp_path / "secrets.toml", 0o600)
    return tmp_path


def _error(home: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_home(home)
    return str(caught.value)


def test_defaults_and_a_full_table(tmp_path: Path) -> None:
    home = load_home(_home(tmp_path, ""))
    backup = home.config.backup
    assert (backup.recipients, backup.targets, backup.host_keys) == ([], ["backups"], {})
    assert (backup.keep_daily, backup.keep_weekly, backup.keep_monthly) == (7, 4, 12)
    full = f"""recipients = ["{AGE}"]
targets = ["backups", "sftp://backup@example.com:2222/srv/robohost"]
host_keys = {{ "example.com:2222" = "{HOST_KEY}" }}
keep_daily = 3
"""
    backup = load_home(_home(tmp_path, full)).config.backup
    assert backup.recipients == [AGE] and backup.keep_daily == 3
    url = parse_sftp_url(backup.targets[1])
    assert (url.user, url.host, url.port, url.path, url.host_port) == (
        "backup",
        "example.com",
        2222,
        "/srv/robohost",
        "example.com:2222",
    )


@pytest.mark.parametrize(
    ("backup", "key", "fragment"),
    [
        ('recipients = ["AGE-SECRET-KEY-1QQQ"]', "backup.recipients.0", "this is a private key"),
        ('recipients = ["age1short"]', "backup.recipients.0", "is not an age public key"),
        ('targets = ["sftp://example.com/x"]', "backup.targets.0", "names no user"),
        ('targets = ["sftp://u:pw@example.com/x"]', "backup.targets.0", "takes no password"),
        ('targets = ["s3://bucket/x"]', "backup.targets.0", "the only remote target is sftp://"),
        ('targets = ["sftp://u@example.com/x"]', "backup.host_keys", "no pinned host key for example.com:22"),
        ('host_keys = { "example.com" = "x" }', "backup.host_keys", "'host:port'"),
        ('host_keys = { "example.com:22" = "ssh-ed25519 !!!" }', "backup.host_keys", "not valid base64"),
        ("keep_daily = -1", "backup.keep_daily", "greater than or equal to 0"),
        ('label = "a b"', "backup.label", "letters, digits"),
    ],
)
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, backup: str, key: str, fragment: str) -> None:
    message = _error(_home(tmp_path, backup))
    assert message.startswith(f"{tmp_path.resolve() / 'robohost.toml'}: {key}"), message
    assert fragment in message
    assert "QQQ" not in message or "private key" in message


def test_the_ssh_key_comes_from_secrets_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _home(tmp_path, "", secrets='[backup]\nssh_key = "keys/id_ed25519"\nssh_key_passphrase = "hush"\n')
    secrets = load_home(home).secrets.backup
    assert secrets.ssh_key == "keys/id_ed25519"
    assert "hush" not in repr(secrets)
    monkeypatch.setenv(BACKUP_SSH_KEY_ENV, "/etc/robohost/backup_key")
    assert load_home(home).secrets.backup.ssh_key == "/etc/robohost/backup_key"


def test_host_key_pins() -> None:
    pin = parse_host_key(HOST_KEY)
    assert pin.key_type == "ssh-ed25519" and pin.matches("ssh-ed25519", pin.key_bytes or b"")
    assert parse_host_key(f"[example.com]:2222 {HOST_KEY}") == pin  # a known_hosts line
    by_print = parse_host_key(pin.fingerprint)
    assert by_print.key_bytes is None and by_print.matches("ssh-rsa", pin.key_bytes or b"")
    assert not by_print.matches("ssh-ed25519", b"another key")
    assert fingerprint(b"abc") == "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0"
