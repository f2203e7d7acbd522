"""``robohost health``: the capacity and health checks now; exit 0 ok, 1 warn, 2 critical."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from robohost.cli.common import HomeOption, JsonOption, console, opened, print_json
from robohost.services.health import EXIT_CODES, worst

_STYLE = {"ok": "green", "warn": "yellow", "critical": "bold red"}


def health(
    home: HomeOption = None,
    robots: Annotated[
        list[str] | None, typer.Option("--robot", help="Check only this robot (repeatable; default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check CPU, memory, disks, the database, the server's processes, jobs, backups, certificates and the robots.

    Exit code 0 when every check is ok, 1 when one is at warn, 2 when one is critical.
    """
    with opened(home) as app:
        checks = app.health_checks(robots)
    level = worst(checks)
    if as_json:
        print_json({"status": level, "checks": [c.as_dict() for c in checks]})
    else:
        table = Table(title=f"health: {level}", title_style=_STYLE[level])
        for column in ("check", "status", "what"):
            table.add_column(column)
        for check in checks:
            table.add_row(escape(check.name), f"[{_STYLE[check.level]}]{check.level}[/]", escape(check.message))
        console.print(table)
    raise typer.Exit(EXIT_CODES[level])
