"""The ``robohost`` Typer application and its entry point.

A ``RobohostError`` becomes one line on stderr and its exit code; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from robohost import __version__
from robohost.bootstrap import init_logging
from robohost.cli import (
    backup_cmd,
    deploy_cmd,
    feeds_cmd,
    health_cmd,
    home_cmds,
    read_cmds,
    report_cmd,
    run_cmd,
    schedule_cmd,
    serve_cmd,
    trigger_cmd,
    user_cmd,
    web_cmd,
)
from robohost.cli.common import HOME_ENV, Settings
from robohost.errors import RobohostError

app = typer.Typer(
    name="robohost",
    help="Paper-trade a trading robot on market data, with a durable trading database.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"robohost {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    home: Annotated[
        Path | None, typer.Option("--home", envvar=HOME_ENV, help="The robot home (or $ROBOHOST_HOME).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """robohost: paper trading for your robot."""
    Settings.home = home
    Settings.debug = debug
    _console_logging(debug)


def _console_logging(debug: bool) -> None:
    """Warnings (everything with --debug) of robohost's loggers go to stderr as one line each; secrets are
    masked in every record; the command goes to the audit log of the home it opens."""
    init_logging(debug, argv=sys.argv[1:])


app.command()(home_cmds.init)
app.command()(run_cmd.run)
app.command()(read_cmds.status)
app.command()(read_cmds.orders)
app.command()(read_cmds.fills)
app.command()(read_cmds.equity)
app.command()(home_cmds.resume)
app.command()(health_cmd.health)
app.add_typer(feeds_cmd.feeds_app, name="feeds")
app.add_typer(schedule_cmd.schedule_app, name="schedule")
app.add_typer(report_cmd.report_app, name="report")
app.command()(serve_cmd.serve)
app.add_typer(trigger_cmd.trigger_app, name="trigger")
app.command()(trigger_cmd.jobs)
app.add_typer(backup_cmd.backup_app, name="backup")
app.command()(backup_cmd.restore)
app.command()(backup_cmd.upgrade)
app.add_typer(user_cmd.user_app, name="user")
app.add_typer(web_cmd.web_app, name="web")
app.add_typer(deploy_cmd.deploy_app, name="deploy")


def main() -> None:
    """Entry point of the ``robohost`` command."""
    try:
        app()
    except RobohostError as exc:
        if Settings.debug:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
