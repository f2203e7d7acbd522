"""``robohost serve``: the long-running process that runs the robots on their schedule (systemd keeps it up),
and serves the dashboard over HTTPS (``[web]``) once a user exists."""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType
from typing import Annotated

import typer

from robohost.adapters.ops.systemd import SystemdNotifier
from robohost.bootstrap import init_logging
from robohost.cli.common import HomeOption, opened
from robohost.services.server.clock import WallClock

WEB_SWITCH_INTERVAL_S = 0.0002
"""With the dashboard on, a thread that wants the GIL gets it within 0.2 ms (Python's default: 5 ms) while a
replay runs at full speed on another thread, so a request does not wait 5 ms at each of its thread switches
(``bench/dashboard_load.py``, measured before the caches: the overview's median 26 ms at 5 ms, 17 ms at 0.5 ms).
Without contention it costs nothing."""


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
        web = app.web_server()  # the dashboard: None when switched off or nobody can sign in yet

        def stop(_sig: int, _frame: FrameType | None) -> None:
            if web is not None:
                web.request_stop()  # the dashboard closes its listeners first, then the robots stop
            server.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if web is not None:
            web.start()  # a port that is taken is a ConfigError here, before any robot starts
            sys.setswitchinterval(WEB_SWITCH_INTERVAL_S)
        try:
            server.serve()
        finally:
            if web is not None:
                web.stop()


def _stdout_logging() -> None:
    """Everything robohost logs at info and above goes to stdout instead of stderr (journald under systemd, with
    ``<priority>`` prefixes), as readable lines; the home's files and collector get the JSON events."""
    init_logging(stream=sys.stdout, level=logging.INFO, with_time=True, journald=bool(os.environ.get("JOURNAL_STREAM")))
