"""Options and output helpers shared by the commands."""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from robohost.bootstrap import App, open_app
from robohost.errors import ConfigError

console = Console()
HOME_ENV = "ROBOHOST_HOME"

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home", help="The robot home (default: $ROBOHOST_HOME, else the current folder).", show_default=False
    ),
]
RobotOption = Annotated[
    str | None, typer.Option("--robot", help="Which robot, when the home holds more than one.", show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


class Settings:
    """Options given before the command (``robohost --home X --debug run``)."""

    home: Path | None = None
    debug: bool = False


def resolve_home(home: Path | None) -> Path:
    """The home from the command's option, the global option, the environment, or the current folder."""
    chosen = home or Settings.home or (Path(os.environ[HOME_ENV]) if os.environ.get(HOME_ENV) else None)
    path = chosen or Path.cwd()
    if not (path / "robohost.toml").exists():
        raise ConfigError(f"{path} is not a robot home (no robohost.toml): pass --home or run 'robohost init HOME'")
    return path


@contextmanager
def opened(home: Path | None) -> Iterator[App]:
    """Open the home's app for one command and close it afterwards."""
    app = open_app(resolve_home(home))
    try:
        yield app
    finally:
        app.close()


def iso(ts: int | None) -> str:
    """Format ns-since-epoch as ISO 8601 UTC (empty for None)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def print_json(data: Any) -> None:
    """Print ``data`` as JSON (Decimals and other values as strings)."""
    typer.echo(json.dumps(data, default=str, indent=2))


def cli_actor() -> str:
    """Who runs this command, as the audit log and requests record it: ``user@host (cli)``."""
    return f"{getpass.getuser()}@{socket.gethostname()} (cli)"
