"""Small JSON state files in a home (``state/alerts.json``, ``state/capacity.json``): read, and updated
under an exclusive ``flock`` and replaced atomically, so that two processes never lose each other's change
and a crash never leaves half a file. A missing or unreadable file reads as empty.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

State = dict[str, Any]


class JsonStateFile:
    """One JSON object kept in a file (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> State:
        """The state now (empty when there is none, or it is not valid JSON)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def update(self, change: Callable[[State], State]) -> State:
        """Apply ``change`` to the current state under the lock and store its result; return it."""
        with self._locked():
            state = change(self.read())
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(state, out, indent=1, sort_keys=True, default=str)
            os.replace(tmp, self.path)
        return state
