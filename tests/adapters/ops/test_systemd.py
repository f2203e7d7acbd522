"""sd_notify: datagrams to the socket systemd names, the watchdog period, silence outside systemd."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from robohost.adapters.ops.systemd import SystemdNotifier


def _receive(sock: socket.socket) -> list[str]:
    sock.settimeout(5)
    return sock.recv(4096).decode().split("\n")


def test_ready_status_and_watchdog_reach_a_path_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "3000000"})
        assert notifier.enabled and notifier.watchdog_s == 1.5
        notifier.ready("serving bot")
        assert _receive(sock) == ["READY=1", "STATUS=serving bot"]
        notifier.watchdog()
        assert _receive(sock) == ["WATCHDOG=1"]
        notifier.stopping("bye")
        assert _receive(sock) == ["STOPPING=1", "STATUS=bye"]


def test_abstract_socket_names_start_with_at() -> None:
    name = f"robohost-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert _receive(sock) == ["STATUS=hello"]


def test_no_watchdog_for_another_pid_and_nothing_outside_systemd() -> None:
    other = SystemdNotifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None if os.getpid() != 1 else other.watchdog_s is not None
    outside = SystemdNotifier({})
    assert not outside.enabled and outside.watchdog_s is None
    outside.ready("ignored")  # no socket: nothing is sent and nothing fails
    SystemdNotifier({"NOTIFY_SOCKET": "/nonexistent/socket"}).ready("a vanished systemd is ignored")


def test_a_receiver_that_stopped_reading_never_blocks_the_sender(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
        for _ in range(5000):  # far more than a datagram queue holds: a blocking send would hang here
            notifier.watchdog()
        sock.settimeout(5)
        assert sock.recv(64) == b"WATCHDOG=1"
