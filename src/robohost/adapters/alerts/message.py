"""The message a channel delivers, and the channel's interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

State = Literal["alert", "reminder", "recovery", "notification"]
LEVEL_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class Message:
    """One alert, reminder, recovery or trading notification, ready to send."""

    state: State
    kind: str
    level: str  # info | warning | critical
    title: str
    text: str
    time: datetime
    host: str
    key: str | None = None
    robot: str | None = None
    count: int = 1
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The generic JSON payload."""
        return {
            "state": self.state,
            "kind": self.kind,
            "level": self.level,
            "title": self.title,
            "message": self.text,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "host": self.host,
            "key": self.key,
            "robot": self.robot,
            "count": self.count,
            "details": self.details,
        }


class Channel(Protocol):
    """Somewhere alerts go: sends one message or raises (the outbox retries)."""

    name: str
    level: str
    trading: bool

    def send(self, message: Message) -> None:
        """Deliver ``message``; raise on any failure."""
        ...
