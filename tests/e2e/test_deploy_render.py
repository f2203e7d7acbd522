"""``robohost deploy render --out DIR`` on a real home: the files are there and the system's own checkers accept
them (systemd-analyze, nft -c inside ``unshare -rn``, fail2ban-regex's filter load, checkmodule, logrotate -d);
the schedule is the one ``robohost schedule export`` writes, hardened (timers) or logged (cron)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from system import need_program

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
NOW = "2026-11-25T12:00:00Z"


def _robohost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ROBOHOST, *args], capture_output=True, text=True, timeout=120, check=False)


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    assert _robohost("init", str(home)).returncode == 0
    return home


def test_render_writes_files_the_system_tools_accept(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _robohost(
        "--home", str(home), "deploy", "render", "--out", str(out), "--schedule", "systemd", "--now", NOW,
        "--user", "root", "--command", "/bin/true",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "INSTALL.md" in result.stdout
    service = (out / "systemd" / "robohost.service").read_text()
    assert f"ExecStart=/bin/true --home {home} serve" in service and f"ReadWritePaths={home}" in service
    timers = sorted(p.name for p in (out / "systemd").glob("robohost-*.timer"))
    assert timers and all((out / "systemd" / t.replace(".timer", ".service")).exists() for t in timers)
    analyze = need_program("systemd-analyze", "systemd")
    trigger = out / "systemd" / timers[0].replace(".timer", ".service")
    for unit in (out / "systemd" / "robohost.service", trigger):
        _check(analyze, "security", "--offline=true", "--threshold=20", str(unit))  # 2.0 or lower
    _check("unshare", "-rn", need_program("nft", "nftables"), "-c", "-f", str(out / "nftables" / "robohost.nft"))
    te = out / "selinux" / "robohost.te"
    _check(need_program("checkmodule", "checkpolicy"), "-M", "-m", "-o", str(tmp_path / "robohost.mod"), str(te))
    rotate = _check(
        need_program("logrotate", "logrotate"), "-d", "-s", str(tmp_path / "state"), str(out / "logrotate" / "robohost")
    )
    assert "error" not in rotate.stderr.lower(), rotate.stderr


def test_render_with_a_cron_schedule_logs_each_command(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _robohost(
        "--home", str(home), "deploy", "render", "--out", str(out), "--schedule", "cron", "--now", NOW,
        "--local-zone", "UTC", "--command", "/opt/rh/bin/robohost", "--dashboard-port", "9443", "--ssh-port", "2222",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    crontab = (out / "cron" / "robohost.crontab").read_text().splitlines()
    commands = [line for line in crontab if line and not line.startswith("#")]
    assert commands and all(line.endswith(f">> {home}/logs/cron.log 2>&1") for line in commands)
    assert all("/opt/rh/bin/robohost --home" in line for line in commands)
    nft = (out / "nftables" / "robohost.nft").read_text()
    assert "tcp dport { 9443, 8080 } ct state new counter accept" in nft and "tcp dport 2222" in nft
    assert not (out / "systemd" / "robohost-sma-cross-backup.timer").exists()


def test_render_refuses_an_unknown_schedule_kind(tmp_path: Path) -> None:
    result = _robohost("--home", str(tmp_path), "deploy", "render", "--out", str(tmp_path / "o"), "--schedule", "at")
    assert result.returncode == 2 and "--schedule" in result.stderr, result.stderr
