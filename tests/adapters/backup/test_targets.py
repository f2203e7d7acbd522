"""Backup targets: one contract suite for the local folder and for SFTP against a real OpenSSH server, then
what only SFTP has: the pinned host key (a changed key is refused), key-only login.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from backup_support import SshServer, keygen, sshd
from robohost.adapters.backup.targets import (
    PARTIAL,
    STALE_PARTIAL_S,
    BackupTarget,
    LocalTarget,
    SftpTarget,
    open_target,
)
from robohost.config.backup_syntax import fingerprint, parse_host_key, parse_sftp_url
from robohost.errors import BackupError

__all__ = ["sshd"]
NAME = "robohost-home-20240102T030405.000Z.tar.zst.age"


def _payload(tmp_path: Path, size: int = 300_000) -> tuple[Path, str]:
    path = tmp_path / "payload.bin"
    path.write_bytes(os.urandom(size))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(params=["local", "sftp"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[BackupTarget, Path]]:
    """A target and the folder on disk that holds its files (the SFTP server's folder is local too)."""
    folder = tmp_path / "store"
    if request.param == "local":
        yield LocalTarget(folder), folder
        return
    server: SshServer = request.getfixturevalue("sshd")
    sftp = SftpTarget(parse_sftp_url(server.url(folder)), parse_host_key(server.host_key), server.client_key)
    try:
        yield sftp, folder
    finally:
        sftp.close()


def test_put_list_get_check_delete(target: tuple[BackupTarget, Path], tmp_path: Path) -> None:
    store, folder = target
    source, digest = _payload(tmp_path)
    store.put(source, NAME, digest)
    assert [(f.name, f.size) for f in store.list()] == [(NAME, source.stat().st_size)]
    assert (folder / NAME).read_bytes() == source.read_bytes()
    got = store.get(NAME, tmp_path / "down" / NAME)
    assert (got.size, got.sha256) == (source.stat().st_size, digest)
    assert (tmp_path / "down" / NAME).read_bytes() == source.read_bytes()
    assert store.check(NAME).sha256 == digest
    store.delete(NAME)
    assert store.list() == []


def test_a_copy_that_reads_back_differently_is_refused(target: tuple[BackupTarget, Path], tmp_path: Path) -> None:
    store, folder = target
    source, _ = _payload(tmp_path)
    with pytest.raises(BackupError, match="different SHA-256"):
        store.put(source, NAME, "0" * 64)
    assert store.list() == []
    assert sorted(p.name for p in folder.iterdir()) == []  # neither the archive nor its .partial


class _CutOff(io.RawIOBase):
    """A source that fails half-way, as a dropped connection or a killed process would."""

    def __init__(self, data: bytes, after: int) -> None:
        self.data, self.after, self.pos = data, after, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.pos >= self.after:
            raise ConnectionResetError("connection lost")
        chunk = self.data[self.pos : min(self.pos + (size if size > 0 else 1 << 20), self.after)]
        self.pos += len(chunk)
        return chunk


def test_an_interrupted_upload_never_looks_complete(target: tuple[BackupTarget, Path], tmp_path: Path) -> None:
    store, folder = target
    source, digest = _payload(tmp_path)
    data = source.read_bytes()
    with pytest.raises((BackupError, ConnectionResetError)):
        store.put_stream(_CutOff(data, len(data) // 2), len(data), NAME, digest)  # type: ignore[attr-defined]
    assert store.list() == []
    assert not (folder / NAME).exists()
    store.put(source, NAME, digest)  # the next attempt succeeds
    assert [f.name for f in store.list()] == [NAME]


def test_a_partial_left_by_a_killed_upload_is_never_listed_and_is_cleaned_later(
    target: tuple[BackupTarget, Path], tmp_path: Path
) -> None:
    store, folder = target
    folder.mkdir(parents=True)
    old = folder / (NAME + PARTIAL)
    old.write_bytes(b"half an archive")
    fresh = folder / ("robohost-home-20240103T030405.000Z.tar.zst.age" + PARTIAL)
    fresh.write_bytes(b"an upload in progress elsewhere")
    past = time.time() - STALE_PARTIAL_S - 60
    os.utime(old, (past, past))
    assert store.list() == []
    source, digest = _payload(tmp_path)
    store.put(source, "robohost-home-20240104T030405.000Z.tar.zst.age", digest)
    assert not old.exists()  # stale: removed
    assert fresh.exists()  # recent: could be another upload in progress, left alone
    assert [f.name for f in store.list()] == ["robohost-home-20240104T030405.000Z.tar.zst.age"]


def test_missing_backup_is_a_clear_error(target: tuple[BackupTarget, Path], tmp_path: Path) -> None:
    store, _ = target
    with pytest.raises(BackupError, match="no backup named"):
        store.get(NAME, tmp_path / "x")


# -- SFTP only ------------------------------------------------------------------------------------------------
def test_a_changed_host_key_is_refused_before_anything_is_sent(sshd: SshServer, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_host_key")
    pinned = " ".join((other.with_suffix(".pub")).read_text().split()[:2])
    store = SftpTarget(parse_sftp_url(sshd.url(tmp_path / "store")), parse_host_key(pinned), sshd.client_key)
    source, digest = _payload(tmp_path)
    with pytest.raises(BackupError) as caught:
        store.put(source, NAME, digest)
    message = str(caught.value)
    real = fingerprint(parse_host_key(sshd.host_key).key_bytes or b"")
    assert "host key has CHANGED" in message
    assert parse_host_key(pinned).fingerprint in message and real in message
    assert f'"{sshd.host_port}" in backup.host_keys' in message
    assert not (tmp_path / "store").exists()


def test_a_fingerprint_pin_is_enough(sshd: SshServer, tmp_path: Path) -> None:
    pin = parse_host_key(parse_host_key(sshd.host_key).fingerprint)
    store = SftpTarget(parse_sftp_url(sshd.url(tmp_path / "store")), pin, sshd.client_key)
    try:
        assert store.list() == []
    finally:
        store.close()


def test_a_key_the_server_does_not_know_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger")
    store = SftpTarget(parse_sftp_url(sshd.url(tmp_path / "store")), parse_host_key(sshd.host_key), stranger)
    with pytest.raises(BackupError, match="refused the SSH key"):
        store.list()


def test_the_server_refuses_passwords(sshd: SshServer) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        with pytest.raises(paramiko.BadAuthenticationType) as caught:
            client.connect(
                "127.0.0.1", sshd.port, "root", password="guess", look_for_keys=False, allow_agent=False, timeout=10
            )
        assert caught.value.allowed_types == ["publickey"]
    finally:
        client.close()


def test_open_target_needs_a_pinned_host_key_and_a_key(sshd: SshServer, tmp_path: Path) -> None:
    url = sshd.url("/srv/backups")
    with pytest.raises(BackupError, match=rf"no pinned host key for {sshd.host_port}"):
        open_target(url, tmp_path, {}, sshd.client_key)
    with pytest.raises(BackupError, match="needs an SSH key"):
        open_target(url, tmp_path, {sshd.host_port: sshd.host_key}, None)
    local = open_target("backups", tmp_path, {}, None)
    assert isinstance(local, LocalTarget) and local.folder == tmp_path / "backups"
