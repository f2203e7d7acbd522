"""What the web app is given by the composition root: its settings, the services it calls, the stores it
reads, and the folders it serves files from. Nothing else of the application is reachable from a request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from robohost.adapters.db.audit import AuditLog
from robohost.config.models import WebConfig
from robohost.services.auth import AuthService
from robohost.services.control import RobotControl
from robohost.services.dashboard import Dashboard
from robohost.services.dashboard_views import FileView
from robohost.services.redaction import Redactor


class BackupFiles(Protocol):
    """The home's backups: the list, and the local file of one (None when not on a local target)."""

    def list(self) -> list[FileView]:
        """The backups, newest first."""
        ...

    def path(self, name: str) -> Path | None:
        """The local file of the backup named ``name``."""
        ...


class NoBackups:
    """A home without backups."""

    def list(self) -> list[FileView]:
        """None."""
        return []

    def path(self, name: str) -> Path | None:
        """None."""
        return None


@dataclass
class WebContext:
    """Everything the dashboard uses (see the module docstring)."""

    config: WebConfig
    auth: AuthService
    dashboard: Dashboard
    control: RobotControl
    audit: AuditLog
    reports_dir: Path
    log_file: Path
    redactor: Redactor = field(default_factory=Redactor)
    backups: BackupFiles = field(default_factory=NoBackups)
    clock: Callable[[], int] = time.time_ns
    version: str = ""
