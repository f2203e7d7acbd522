"""The rendered ``robohost.service`` passes ``systemd-analyze verify`` cleanly and scores 2.0 ("OK") or lower
with ``systemd-analyze security --offline=true``; so do the schedule's hardened trigger units."""

from __future__ import annotations

import re
from pathlib import Path

from deploy_support import run, settings

from robohost.services.deploy.systemd_unit import harden_trigger_unit, render_service
from system import need_program

SCORE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)")


def _verify_and_score(unit: Path) -> tuple[float, str]:
    analyze = need_program("systemd-analyze", "systemd")
    verify = run(analyze, "verify", str(unit))
    # verify exits 0 on unknown keys and bad values: a clean unit also leaves stderr empty
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    security = run(analyze, "security", "--offline=true", str(unit))
    match = SCORE.search(security.stdout)
    assert match, security.stdout + security.stderr
    return float(match.group(1)), match.group(2)


def test_the_service_is_hardened_to_ok(tmp_path: Path) -> None:
    text = render_service(settings(executable=Path("/bin/true")))
    unit = tmp_path / "robohost.service"
    unit.write_text(text)
    score, verdict = _verify_and_score(unit)
    assert score <= 2.0 and verdict == "OK", (score, verdict)
    for line in (
        "Type=notify",
        "ExecStart=/bin/true --home /srv/robohost serve",
        "WatchdogSec=30",
        "Restart=on-failure",
        "User=robohost",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
        "ReadWritePaths=/srv/robohost",
        "LoadCredentialEncrypted=robohost-secrets:/etc/credstore.encrypted/robohost-secrets.cred",
    ):
        assert line in text.splitlines(), line
    assert [line for line in text.splitlines() if line.startswith("ReadWritePaths=")] == [
        "ReadWritePaths=/srv/robohost"
    ]


def test_an_unhardened_unit_fails_the_same_check(tmp_path: Path) -> None:
    """The score is not trivially low: the unit without its sandbox is rated far above 2.0."""
    text = "\n".join(
        line
        for line in render_service(settings(executable=Path("/bin/true"))).splitlines()
        if "=" not in line or line.split("=")[0] in ("Description", "Type", "ExecStart", "User", "Group", "WantedBy")
    )
    unit = tmp_path / "robohost.service"
    unit.write_text(text + "\n")
    score, _ = _verify_and_score(unit)
    assert score > 5.0


def test_a_home_under_home_is_read_only_protected_not_hidden() -> None:
    text = render_service(settings(home=Path("/home/trader/robot")))
    assert "ProtectHome=read-only" in text.splitlines() and "ReadWritePaths=/home/trader/robot" in text


def test_trigger_units_run_as_the_user_in_the_sandbox(tmp_path: Path) -> None:
    exported = "[Unit]\nDescription=robohost: backup\n\n[Service]\nType=oneshot\nExecStart=/bin/true trigger\n"
    text = harden_trigger_unit(exported, settings())
    assert text.index("Type=oneshot") < text.index("User=robohost") < text.index("ExecStart=")
    unit = tmp_path / "robohost-bot-backup.service"
    unit.write_text(text)
    score, verdict = _verify_and_score(unit)
    assert score <= 2.0 and verdict == "OK"
