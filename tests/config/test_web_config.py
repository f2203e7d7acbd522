"""The ``[web]`` table: safe defaults, and errors that name the file and the dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest

from robohost.config.loader import load_home
from robohost.errors import ConfigError

ROBOT = """
[robots.bot]
strategy = "strategies/bot.py:Bot"

[robots.bot.data]
path = ["data/bars.csv"]
"""


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROBOHOST_DATABASE_URL", raising=False)


def _load(tmp_path: Path, web: str) -> object:
    (tmp_path / "robohost.toml").write_text(ROBOT + "\n[web]\n" + web)
    return load_home(tmp_path).config.web


def _error(tmp_path: Path, web: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, web)
    return str(caught.value)


def test_defaults_listen_on_loopback_only(tmp_path: Path) -> None:
    web = _load(tmp_path, "")
    assert (web.enabled, web.host, web.port, web.http_port) == (True, "127.0.0.1", 8443, 8080)  # type: ignore[attr-defined]
    assert (web.cert, web.key, web.names) == (None, None, [])  # type: ignore[attr-defined]
    assert (web.session_idle_minutes, web.session_max_hours) == (30, 12)  # type: ignore[attr-defined]
    assert (web.lockout_failures, web.lockout_ip_failures, web.lockout_minutes) == (5, 20, 15)  # type: ignore[attr-defined]
    full = 'host = "0.0.0.0"\nport = 443\nhttp_port = 0\ncert = "/etc/ssl/robot.pem"\nkey = "/etc/ssl/robot.key"\n'
    assert _load(tmp_path, full).http_port == 0  # type: ignore[attr-defined]


def test_mistakes_are_named(tmp_path: Path) -> None:
    assert "web.cert: give both cert and key" in _error(tmp_path, 'cert = "mine.pem"')
    assert "web.http_port: must differ from port" in _error(tmp_path, "port = 8443\nhttp_port = 8443")
    assert "web.port: Input should be less than or equal to 65535" in _error(tmp_path, "port = 70000")
    assert "web.password: unknown key" in _error(tmp_path, 'password = "admin"')
    assert "web.lockout_failures" in _error(tmp_path, "lockout_failures = 0")
