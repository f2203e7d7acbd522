"""The sd_notify protocol: tell systemd we are ready, alive (watchdog) and what we are doing.

A datagram of ``KEY=value`` lines to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a path, or an
abstract name written with a leading ``@``). Outside systemd (no variable) every call does nothing.
``$WATCHDOG_USEC`` (for this process: ``$WATCHDOG_PID`` unset or ours) gives the watchdog period; ping at
least twice per period.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping


class SystemdNotifier:
    """Sends sd_notify messages, or nothing when not run by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        ours = not pid or pid == str(os.getpid())
        self.watchdog_s: float | None = int(usec) / 1_000_000 / 2 if usec.isdigit() and int(usec) > 0 and ours else None
        """How often to ping the watchdog (half its period), or None when there is no watchdog."""

    @property
    def enabled(self) -> bool:
        """True under systemd (``$NOTIFY_SOCKET`` set)."""
        return bool(self.address)

    def notify(self, *fields: str) -> None:
        """Send ``KEY=value`` fields in one datagram (errors are ignored: systemd may be gone)."""
        if not self.address:
            return
        with (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock,
            contextlib.suppress(OSError),
        ):
            sock.setblocking(False)  # a receiver that stopped reading must never stall the main loop
            sock.sendto("\n".join(fields).encode(), self.address)

    def ready(self, status: str) -> None:
        """Start-up is done."""
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """One line of what the service is doing (``systemctl status`` shows it)."""
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        """I am alive: the main loop is turning."""
        if self.watchdog_s is not None:
            self.notify("WATCHDOG=1")

    def stopping(self, status: str) -> None:
        """Shutdown has begun."""
        self.notify("STOPPING=1", f"STATUS={status}")
