"""The rendered fail2ban filter, run by ``fail2ban-regex``, finds exactly the failing addresses in the log lines
robohost itself wrote (a real home, its dashboard's sign-in service, ``logs/robohost.log``), and nothing in a
successful sign-in or a user name that pretends to carry an address."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from deploy_support import run, settings

from robohost.bootstrap import open_app
from robohost.services.deploy.fail2ban import render_filter, render_jail
from system import need_program

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
PASSWORD = "a long enough password"


def _failed_sign_ins(home: Path) -> list[str]:
    """Sign in badly (and once well) through the home's real auth service; the lines of its log file."""
    app = open_app(home)
    try:
        auth = app.auth()
        now = time.time_ns()
        auth.add_user("alice", PASSWORD, now)
        attempts = [
            ("alice", "wrong password", "203.0.113.5"),  # bad-password
            ("mallory", "whatever", "198.51.100.7"),  # unknown-user
            ("alice", "wrong again", "2001:db8::5"),  # IPv6
            ("eve ip=192.0.2.99", "x", "198.51.100.8"),  # a name that pretends to hold an address
            ("bob", "x", "not-an-ip"),  # no address: nothing to ban
        ]
        for name, password, ip in attempts:
            now += 10**9
            assert not auth.login(name, password, "", ip, None, now).ok
        now += 3600 * 10**9  # past any lock-out
        assert auth.login("alice", PASSWORD, "", "192.0.2.200", None, now).ok
    finally:
        app.close()
    return (home / "logs" / "robohost.log").read_text().splitlines()


def test_the_filter_matches_the_failed_sign_ins_robohost_wrote(tmp_path: Path) -> None:
    regex = need_program("fail2ban-regex", "fail2ban")
    home = tmp_path / "home"
    subprocess.run([ROBOHOST, "init", str(home)], check=True, capture_output=True, timeout=120)
    lines = _failed_sign_ins(home)
    assert sum("robohost-auth: login failed" in line for line in lines) == 5
    assert any("robohost-auth: login ok" in line for line in lines)
    filter_file = tmp_path / "robohost-auth.conf"  # fail2ban-regex wants an absolute path
    filter_file.write_text(render_filter())
    result = run(regex, "-o", "ip", str(home / "logs" / "robohost.log"), str(filter_file), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["203.0.113.5", "198.51.100.7", "2001:db8::5", "198.51.100.8"]


def test_fail2ban_accepts_the_filter_and_the_jails(tmp_path: Path) -> None:
    """In a private copy of /etc/fail2ban (Debian's own jails removed): ``fail2ban-client --test``."""
    client = need_program("fail2ban-client", "fail2ban")
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    (home / "logs" / "robohost.log").touch()
    etc = tmp_path / "etc"
    shutil.copytree("/etc/fail2ban", etc)
    for old in (etc / "jail.d").iterdir():
        old.unlink()
    (etc / "filter.d" / "robohost-auth.conf").write_text(render_filter())
    jail = render_jail(settings(home=home, ssh_port=2222, http_port=8080))
    (etc / "jail.d" / "robohost.local").write_text(jail)
    assert f"logpath = {home}/logs/robohost.log" in jail.splitlines()
    assert "port = 8443,8080" in jail.splitlines() and "port = 2222" in jail.splitlines()
    result = run(client, "-c", str(etc), "--test", timeout=60)
    assert result.returncode == 0 and "configuration test is successful" in result.stdout + result.stderr, (
        result.stdout + result.stderr
    )
