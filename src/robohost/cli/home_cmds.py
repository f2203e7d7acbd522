"""``robohost init`` and ``robohost resume``: create a home; clear a robot's kill switch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from robohost.bootstrap import open_app
from robohost.cli.common import HomeOption, RobotOption, cli_actor, console, opened
from robohost.cli.web_cmd import print_certificates
from robohost.services.homes import EXAMPLES, create_home
from robohost.services.status import resume_robot


def init(
    home: Annotated[Path, typer.Argument(help="Folder to create the robot home in.")],
    example: Annotated[str, typer.Option("--example", help=f"Example robot: {', '.join(EXAMPLES)}.")] = "sma-cross",
    force: Annotated[bool, typer.Option("--force", help="Add missing files to an existing folder.")] = False,
) -> None:
    """Create a robot home: robohost.toml, strategies/, data/, secrets.toml (0600) and the database."""
    created = create_home(home, example, force=force)
    app = open_app(created.path)
    try:
        db = app.home.database_url
        tls = app.certificates()
    finally:
        app.close()
    console.print(f"[green]created[/green] robot home {created.path} with robot [bold]{created.robot}[/bold]")
    for file in created.files:
        console.print(f"  {file.relative_to(created.path)}")
    console.print(f"  database: {db}")
    print_certificates(tls)
    console.print(f"next: robohost --home {home} run", soft_wrap=True)
    console.print(f"dashboard: robohost --home {home} user add NAME, then robohost --home {home} serve", soft_wrap=True)


def resume(
    home: HomeOption = None,
    robot: RobotOption = None,
) -> None:
    """Clear a robot's kill switch after a halt, so that it may run again."""
    with opened(home) as app:
        name, _ = app.home.robot(robot)
        reason = resume_robot(app.read, name, cli_actor(), time.time_ns())
        console.print(f"robot [bold]{name}[/bold] resumed (was halted: {reason})")
