"""The secrets as a systemd credential: ``$CREDENTIALS_DIRECTORY/robohost-secrets`` takes the place of the
home's ``secrets.toml`` (``LoadCredentialEncrypted=``, README "Hardening"); the 0600 check stays for the home's file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from robohost.config.loader import CREDENTIALS_ENV, DATABASE_ENV, SECRETS_CREDENTIAL, load_home
from robohost.errors import ConfigError

ROBOT = """
[robots.bot]
strategy = "strategies/bot.py:Bot"

[robots.bot.data]
path = ["data/bars.csv"]
"""
HOME_SECRETS = '[database]\nurl = "postgresql://rh:home-file@db.example/rh"\n'
CREDENTIAL = '[database]\nurl = "postgresql://rh:from-credential@db.example/rh"\n'


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    monkeypatch.delenv(CREDENTIALS_ENV, raising=False)


def _home(path: Path, secrets: str | None, mode: int = 0o600) -> Path:
    home = path / "home"
    home.mkdir()
    (home / "robohost.toml").write_text(ROBOT)
    if secrets is not None:
        (home / "secrets.toml").write_text(secrets)
        os.chmod(home / "secrets.toml", mode)
    return home


def _credentials(path: Path, text: str, mode: int = 0o400) -> Path:
    directory = path / "credentials"
    directory.mkdir()
    (directory / SECRETS_CREDENTIAL).write_text(text)
    os.chmod(directory / SECRETS_CREDENTIAL, mode)
    return directory


def test_the_credential_takes_the_place_of_the_homes_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _home(tmp_path, HOME_SECRETS)
    monkeypatch.setenv(CREDENTIALS_ENV, str(_credentials(tmp_path, CREDENTIAL)))
    assert load_home(home).database_url == "postgresql://rh:from-credential@db.example/rh"


def test_without_the_variable_the_homes_secrets_are_read(tmp_path: Path) -> None:
    home = _home(tmp_path, HOME_SECRETS)
    _credentials(tmp_path, CREDENTIAL)
    assert load_home(home).database_url == "postgresql://rh:home-file@db.example/rh"


def test_a_credentials_directory_without_robohosts_credential_falls_back_to_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _home(tmp_path, HOME_SECRETS)
    other = tmp_path / "other"
    other.mkdir()
    (other / "something-else").write_text(CREDENTIAL)
    monkeypatch.setenv(CREDENTIALS_ENV, str(other))
    assert load_home(home).database_url == "postgresql://rh:home-file@db.example/rh"


def test_the_mode_check_applies_to_the_homes_file_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _home(tmp_path, HOME_SECRETS, mode=0o644)  # ignored: the credential replaces it
    monkeypatch.setenv(CREDENTIALS_ENV, str(_credentials(tmp_path, CREDENTIAL, mode=0o644)))
    assert load_home(home).database_url.endswith("from-credential@db.example/rh")
    monkeypatch.delenv(CREDENTIALS_ENV)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_home(home)


def test_a_bad_credential_is_named_without_echoing_its_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _home(tmp_path, None)
    directory = _credentials(tmp_path, '[database]\nurl = 42\npasword = "hunter2-secret"\n')
    monkeypatch.setenv(CREDENTIALS_ENV, str(directory))
    with pytest.raises(ConfigError) as caught:
        load_home(home)
    message = str(caught.value)
    assert message.startswith(f"{directory / SECRETS_CREDENTIAL}: ")
    assert "hunter2" not in message and "42" not in message
