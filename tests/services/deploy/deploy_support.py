"""Shared by the deploy tests: rendering settings, and throwaway network namespaces (always deleted)."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from robohost.services.deploy.settings import DeploySettings

HOME = Path("/srv/robohost")
EXECUTABLE = Path("/opt/robohost/.venv/bin/robohost")
_COUNTER = itertools.count()


def settings(**changes: object) -> DeploySettings:
    """Settings for a home in /srv/robohost with the dashboard on 8443 (no redirect port) unless changed."""
    values: dict[str, object] = {"home": HOME, "executable": EXECUTABLE, "dashboard_port": 8443, "http_port": 0}
    values.update(changes)
    return DeploySettings(**values)  # type: ignore[arg-type]


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command (bounded), capturing its output; never raises on a non-zero exit."""
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def unique(prefix: str) -> str:
    """A name unique to this process and call, at most 15 characters (an interface name's limit)."""
    return f"{prefix}{os.getpid() % 100000}{next(_COUNTER)}"[:15]


@contextmanager
def namespace_pair(server_ip: str, client_ip: str) -> Iterator[tuple[str, str]]:
    """Two new network namespaces joined by a veth pair (``server_ip``/30 and ``client_ip``/30); deleted after."""
    server, client = unique("rhds"), unique("rhdc")
    veth_s, veth_c = unique("rhvs"), unique("rhvc")
    made: list[str] = []
    try:
        for name in (server, client):
            subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
            made.append(name)
        subprocess.run(["ip", "link", "add", veth_s, "type", "veth", "peer", "name", veth_c], check=True, timeout=10)
        subprocess.run(["ip", "link", "set", veth_s, "netns", server], check=True, timeout=10)
        subprocess.run(["ip", "link", "set", veth_c, "netns", client], check=True, timeout=10)
        for ns, dev, ip in ((server, veth_s, server_ip), (client, veth_c, client_ip)):
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev], check=True, timeout=10)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=10)
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True, timeout=10)
        yield server, client
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)
        subprocess.run(["ip", "link", "del", veth_s], check=False, timeout=10, capture_output=True)
