"""What people may do to a robot from the dashboard or the API: run it now, stop it, resume it after a halt.

Run and stop are requests the robot's server (``robohost serve``) answers within a tick, exactly like
``robohost trigger``; resume is ``robohost resume``. Every action is audited with who asked, from where,
and what came of it.
"""

from __future__ import annotations

from collections.abc import Collection

from robohost.adapters.db.audit import AuditLog
from robohost.adapters.db.jobs import RequestRow, RequestStore
from robohost.adapters.db.queries import ReadModel
from robohost.errors import ConfigError, StateError
from robohost.services.status import resume_robot

ACTIONS = ("run", "stop")


class RobotControl:
    """Run, stop and resume, audited."""

    def __init__(self, robots: Collection[str], requests: RequestStore, read: ReadModel, audit: AuditLog) -> None:
        self.robots = set(robots)
        self.requests = requests
        self.read = read
        self.audit = audit

    def _check(self, robot: str) -> None:
        if robot not in self.robots:
            raise ConfigError(f"no robot named {robot!r}")

    def request(self, robot: str, action: str, actor: str, ip: str | None, now: int) -> int:
        """Ask the robot's server to run or stop it; returns the request's id (its answer comes later)."""
        self._check(robot)
        if action not in ACTIONS:
            raise ConfigError(f"action must be one of {', '.join(ACTIONS)}")
        request_id = self.requests.add(robot, action, None, f"{actor} (web)", now)
        self.audit.record(action, f"requested (request {request_id})", now, actor=actor, ip=ip, robot=robot)
        return request_id

    def answer(self, request_id: int) -> RequestRow | None:
        """The request and, once the server handled it, its answer."""
        return self.requests.get(request_id)

    def resume(self, robot: str, actor: str, ip: str | None, now: int) -> str:
        """Clear the robot's kill switch; returns the reason it had halted. ``StateError`` if it is not halted."""
        self._check(robot)
        try:
            reason = resume_robot(self.read, robot, f"{actor} (web)", now)
        except StateError as exc:
            self.audit.record("resume", "refused: not halted", now, actor=actor, ip=ip, robot=robot, detail=str(exc))
            raise
        self.audit.record("resume", "ok", now, actor=actor, ip=ip, robot=robot, detail=f"was halted: {reason}")
        return reason
