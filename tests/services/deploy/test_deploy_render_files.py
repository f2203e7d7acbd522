"""``services/deploy/render.py``: the settings come from the configuration ([web] ports), every artifact is
written under its folder with an INSTALL.md, and nothing rendered is a secret (mode 0644)."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_support import settings

from robohost.config.loader import CREDENTIALS_ENV, DATABASE_ENV, load_home
from robohost.services.deploy.logrotate import log_cron_output, render_logrotate
from robohost.services.deploy.render import render_files, settings_for, write_files

ROBOT = """
[robots.bot]
strategy = "strategies/bot.py:Bot"

[robots.bot.data]
path = ["data/bars.csv"]
"""
EXECUTABLE = Path("/opt/robohost/.venv/bin/robohost")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    monkeypatch.delenv(CREDENTIALS_ENV, raising=False)


def _home(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "robohost.toml").write_text(ROBOT + extra)
    return tmp_path


def test_the_dashboard_ports_come_from_the_web_table(tmp_path: Path) -> None:
    home = load_home(_home(tmp_path, "\n[web]\nport = 9443\nhttp_port = 9080\n"))
    got = settings_for(home, executable=EXECUTABLE, user="trader", ssh_port=2222)
    assert (got.dashboard_port, got.http_port, got.open_ports) == (9443, 9080, (9443, 9080))
    assert (got.home, got.user, got.ssh_port, got.venv) == (
        tmp_path.resolve(),
        "trader",
        2222,
        Path("/opt/robohost/.venv"),
    )


def test_a_disabled_dashboard_opens_no_port_unless_one_is_given(tmp_path: Path) -> None:
    home = load_home(_home(tmp_path, "\n[web]\nenabled = false\n"))
    assert settings_for(home, executable=EXECUTABLE).open_ports == ()
    assert settings_for(home, executable=EXECUTABLE, dashboard_port=8000).open_ports == (8000,)
    nft = render_files(settings_for(home, executable=EXECUTABLE))["nftables/robohost.nft"]
    assert "tcp dport 22 ct state new counter accept" in nft and "8443" not in nft


def test_the_defaults_open_the_https_port_and_the_redirect(tmp_path: Path) -> None:
    got = settings_for(load_home(_home(tmp_path)), executable=EXECUTABLE)
    assert got.open_ports == (8443, 8080)


def test_every_artifact_is_written_with_an_install_guide(tmp_path: Path) -> None:
    files = render_files(settings(), {"cron/robohost.crontab": "# nothing\n"})
    written = write_files(tmp_path / "out", files)
    names = sorted(str(p.relative_to(tmp_path / "out")) for p in written)
    assert names == sorted(
        [
            "INSTALL.md",
            "cron/robohost.crontab",
            "fail2ban/filter.d/robohost-auth.conf",
            "fail2ban/jail.d/robohost.local",
            "iptables/rules.v4",
            "iptables/rules.v6",
            "logrotate/robohost",
            "nftables/robohost.nft",
            "selinux/robohost.fc",
            "selinux/robohost.te",
            "ssh/sshd_config.d/50-robohost.conf",
            "systemd/robohost.service",
        ]
    )
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in written)
    guide = files["INSTALL.md"]
    assert "systemd-creds encrypt --name=robohost-secrets /srv/robohost/secrets.toml" in guide
    assert "crontab -u robohost cron/robohost.crontab" in guide


def test_cron_output_goes_to_the_rotated_log() -> None:
    crontab = "# header\n\n*/5 * * * * /x --home /srv/robohost trigger job health --robot bot\n"
    lines = log_cron_output(crontab, settings()).splitlines()
    assert lines[:2] == ["# header", ""]
    assert lines[2].endswith("health --robot bot >> /srv/robohost/logs/cron.log 2>&1")
    rules = render_logrotate(settings())
    assert rules.startswith("# robohost") and "/srv/robohost/logs/cron.log {" in rules
    assert "audit.log" not in rules.split("{")[1]  # the append-only audit log is never rotated
