"""The hash chain of the track record: each order and fill line of a run's journal commits to the one before.

``link(previous, seq, ts, type, data)`` is SHA-256 over the previous link and a canonical JSON encoding of the
line (sorted keys, no spaces, the values as stored). The first line of a run links to ``GENESIS``. The
journal stores each line's link in its ``hash`` column as it writes it; ``robohost report verify`` recomputes
the chain from the database and compares its head with the head a signed report printed, so an edit made
after the report — even one that rewrote every stored link — is found. Must not import config, cli or
services.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS = bytes(32)
"""The link before a run's first line."""


def chained(event_type: str) -> bool:
    """Whether a journal line of this type belongs to the track record (orders and fills)."""
    return event_type == "fill" or event_type.startswith("order_")


def canonical(seq: int, ts: int, event_type: str, data: Any) -> bytes:
    """The line as the chain hashes it."""
    return json.dumps([seq, ts, event_type, data], sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def link(previous: bytes, seq: int, ts: int, event_type: str, data: Any) -> bytes:
    """The link of a line: SHA-256 of the previous link and the line."""
    return hashlib.sha256(previous + canonical(seq, ts, event_type, data)).digest()
