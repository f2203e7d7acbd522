"""``robohost serve``: the long-running process that runs the robots on their schedule (systemd keeps it up)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType
from typing import Annotated

import typer

from robohost.adapters.ops.systemd import SystemdNotifier
from robohost.cli.common import HomeOption, opened
from robohost.services.server.clock import WallClock


def serve(
    home: HomeOption = None,
    robots: Annotated[
        list[str] | None, typer.Option("--robot", help="Serve only this robot (repeatable; default: all).")
    ] = None,
) -> None:
    """Run the robots on their schedules and at people's requests until SIGTERM."""
    _stdout_logging()
    with opened(home) as app:
        server = app.server(WallClock(), SystemdNotifier(), robots)

        def stop(_sig: int, _frame: FrameType | None) -> None:
            server.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        server.serve()


class _JournaldFormatter(logging.Formatter):
    """``<priority>logger: message`` under systemd (journald reads the priority), plain lines elsewhere."""

    PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def __init__(self, journald: bool) -> None:
        super().__init__("%(name)s: %(message)s" if journald else "%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        """Prefix the syslog priority when journald reads the stream."""
        text = super().format(record)
        return f"<{self.PRIORITIES.get(record.levelno, 6)}>{text}" if self.journald else text


def _stdout_logging() -> None:
    """Everything robohost logs at info and above goes to stdout too (journald under systemd)."""
    log = logging.getLogger("robohost")
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stdout)
    handler.setLevel(logging.INFO)
    handler.setFormatter(_JournaldFormatter(journald=bool(os.environ.get("JOURNAL_STREAM"))))
    for existing in [h for h in log.handlers if getattr(h, "robohost_console", False)]:
        log.removeHandler(existing)  # stdout carries it all: no second copy of warnings on stderr
    log.addHandler(handler)
