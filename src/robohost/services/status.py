"""A robot's state as people should read it: a run whose process is gone shows as interrupted.

The database says ``running`` from the start of a run until it ends; after a crash or a ``kill -9`` it
still says so. The run service records the process id (``pid N@host``) as the reason of the running
state, and this module checks whether that process still lives on this host.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from robohost.adapters.db.queries import ReadModel
from robohost.errors import StateError

_PREFIX = "pid "


def running_reason() -> str:
    """The reason stored with ``running``: this process and host."""
    return f"{_PREFIX}{os.getpid()}@{socket.gethostname()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


@dataclass(frozen=True, slots=True)
class RobotStatus:
    """``idle``, ``running``, ``halted``, ``interrupted`` or ``never run``, and why."""

    state: str
    reason: str | None


def robot_status(read: ReadModel, robot: str) -> RobotStatus:
    """The robot's state, with a dead ``running`` process shown as ``interrupted``."""
    row = read.robot_state(robot)
    if row is None:
        return RobotStatus("never run", None)
    reason = row.reason or ""
    if row.status == "running" and reason.startswith(_PREFIX):
        pid_text, _, host = reason[len(_PREFIX) :].partition("@")
        if host == socket.gethostname() and pid_text.isdigit() and not _alive(int(pid_text)):
            return RobotStatus(
                "interrupted", f"its process ({pid_text}) is gone; 'robohost run' resumes run {row.run_id}"
            )
    return RobotStatus(row.status, row.reason)


def resume_robot(read: ReadModel, robot: str, by: str, now: int) -> str:
    """Clear a halted robot's kill switch (``robohost resume``, the dashboard's Resume); returns the halt's reason.

    ``StateError`` when the robot is not halted.
    """
    state = read.robot_state(robot)
    if state is None or state.status != "halted":
        raise StateError(f"robot {robot!r} is not halted (status: {state.status if state else 'never run'})")
    read.set_robot_state(robot, "idle", f"resumed by {by} after: {state.reason}", now)
    return state.reason or "halted"
