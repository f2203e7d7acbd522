"""``robohost deploy render``: the files a sysadmin installs to run robohost hardened (README, "Hardening").

Reads only the configuration (no database); writes text files and runs no system tool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robohost.cli.common import HomeOption
from robohost.cli.schedule_cmd import (
    LocalZoneOption,
    NowOption,
    _robohost_executable,
    load_schedules,
    parse_now,
)
from robohost.errors import ConfigError
from robohost.services.deploy.render import (
    ScheduleKind,
    render_files,
    schedule_files,
    settings_for,
    write_files,
)
from robohost.services.deploy.settings import DEFAULT_CREDENTIAL_FILE
from robohost.services.scheduling.zones import local_zone, zone_named

deploy_app = typer.Typer(
    help="Files for running robohost hardened: systemd, firewall, fail2ban, SELinux, sshd, logrotate.",
    no_args_is_help=True,
)


@deploy_app.command("render")
def render(
    out: Annotated[Path, typer.Option("--out", help="Write the files into this folder.")],
    home: HomeOption = None,
    user: Annotated[str, typer.Option("--user", help="The system user that runs robohost serve.")] = "robohost",
    ssh_port: Annotated[
        int, typer.Option("--ssh-port", help="The SSH port to open (rate-limited).", min=1, max=65535)
    ] = 22,
    dashboard_port: Annotated[
        int | None,
        typer.Option(
            "--dashboard-port",
            help="The dashboard's port to open (default: the web table's port; none when the dashboard is off).",
            min=1,
            max=65535,
            show_default=False,
        ),
    ] = None,
    command: Annotated[
        str | None,
        typer.Option(
            "--command", help="The robohost program in the server's venv (default: this one).", show_default=False
        ),
    ] = None,
    credential: Annotated[
        Path, typer.Option("--credential", help="Where the encrypted secrets are installed.")
    ] = DEFAULT_CREDENTIAL_FILE,
    schedule: Annotated[
        str, typer.Option("--schedule", help="Also write the schedule: none, cron or systemd (timers).")
    ] = "none",
    days: Annotated[
        int,
        typer.Option("--days", help="Plan the schedule's market-relative times this many days ahead.", min=1, max=366),
    ] = 31,
    local_zone_name: LocalZoneOption = None,
    now: NowOption = None,
) -> None:
    """Write the hardened systemd unit, firewall, fail2ban, SELinux, sshd and logrotate files for this home."""
    if schedule not in ("none", "cron", "systemd"):
        raise ConfigError(f"--schedule: expected none, cron or systemd, got {schedule!r}")
    kind: ScheduleKind = schedule  # type: ignore[assignment]
    executable = Path(command or _robohost_executable())
    if not executable.is_absolute():
        raise ConfigError(f"--command: give the absolute path of the robohost program, got {executable}")
    loaded, schedules = load_schedules(home, None)
    settings = settings_for(
        loaded,
        executable=executable,
        user=user,
        ssh_port=ssh_port,
        dashboard_port=dashboard_port,
        credential_file=credential,
    )
    extra = schedule_files(
        kind,
        schedules,
        settings,
        now=parse_now(now),
        days=days,
        local_zone=zone_named(local_zone_name) if local_zone_name else local_zone(),
    )
    written = write_files(out, render_files(settings, extra))
    typer.echo(f"wrote {len(written)} files into {out}: read {out / 'INSTALL.md'} for where each goes")
