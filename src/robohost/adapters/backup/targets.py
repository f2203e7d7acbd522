"""Where backups are copied: a local folder, or an SFTP server reached with an SSH key and a pinned host key.

Every target stores an archive the same careful way: it is written under a temporary name
(``NAME.partial``), its size and SHA-256 are checked by reading it back from the target, and only then is it
renamed to ``NAME``. A listing shows only complete names (``*.tar.zst.age``), so an upload cut off half-way
never looks like a backup; leftover ``.partial`` files older than ``STALE_PARTIAL_S`` are removed by the
next upload.

SFTP: key authentication only (robohost never sends a password), and the server's host key must equal the
one pinned in the configuration: a different key is refused before anything is sent, with both fingerprints
in the error. Must not import ``robohost.config.models``, ``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, cast

import paramiko

from robohost.adapters.backup.archive import ARCHIVE_SUFFIX, CHUNK
from robohost.config.backup_syntax import HostKeyPin, SftpUrl, fingerprint, is_sftp, parse_host_key, parse_sftp_url
from robohost.errors import BackupError

PARTIAL = ".partial"
STALE_PARTIAL_S = 6 * 3600
HEAD_BYTES = 16 * 1024
SFTP_CHUNK = 32 * 1024
TIMEOUT_S = 30.0
_NEGOTIATED_NAMES = {"ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]}


@dataclass(frozen=True)
class RemoteFile:
    """A complete archive on a target."""

    name: str
    size: int
    mtime: float | None = None


@dataclass(frozen=True)
class RemoteCheck:
    """A target's copy, read back in full: its size, SHA-256 and its first bytes (the age header)."""

    size: int
    sha256: str
    head: bytes


class BackupTarget(Protocol):
    """A place that keeps archives."""

    label: str
    """How people name the target (a folder, or ``sftp://user@host:port/path``); never holds a secret."""

    def put(self, source: Path, name: str, sha256: str) -> None:
        """Store ``source`` as ``name``: written as ``name.partial``, checked by reading back, then renamed."""
        ...

    def list(self) -> list[RemoteFile]:
        """The complete archives on the target, by name."""
        ...

    def get(self, name: str, dest: Path) -> RemoteCheck:
        """Copy ``name`` to ``dest`` (through ``dest.partial``); return its size and SHA-256."""
        ...

    def check(self, name: str) -> RemoteCheck:
        """Read ``name`` back without keeping it: its size, SHA-256 and header."""
        ...

    def delete(self, name: str) -> None:
        """Remove ``name``."""
        ...

    def close(self) -> None:
        """Release the connection, if any."""
        ...


class _Hashing:
    """Running size, SHA-256 and the first bytes of a stream."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.head = b""

    def update(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.size += len(chunk)
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]

    def result(self) -> RemoteCheck:
        return RemoteCheck(self.size, self.digest.hexdigest(), self.head)


class Readable(Protocol):
    """Anything with ``read(n)``: a file, an SFTP file, a socket reader."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes; empty at the end."""
        ...


class Writable(Protocol):
    """Anything with ``write(data)``."""

    def write(self, data: bytes, /) -> object:
        """Write ``data``."""
        ...


def _copy(reader: Readable, writer: Writable, chunk: int = CHUNK) -> RemoteCheck:
    hashing = _Hashing()
    while data := reader.read(chunk):
        writer.write(data)
        hashing.update(data)
    return hashing.result()


def _verify(label: str, name: str, got: RemoteCheck, size: int, sha256: str) -> None:
    if got.size != size:
        raise BackupError(f"{label}: {name} reads back as {got.size} bytes, not {size}: upload refused")
    if got.sha256 != sha256:
        raise BackupError(f"{label}: {name} reads back with a different SHA-256: upload refused")


def is_archive(name: str) -> bool:
    """True for a complete archive's name (not a ``.partial`` upload, not another file)."""
    return name.endswith(ARCHIVE_SUFFIX) and not name.startswith(".")


# -- a local folder -------------------------------------------------------------------------------------------
class LocalTarget:
    """A folder on this machine (another disk, a mounted share)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.label = str(folder)

    def put(self, source: Path, name: str, sha256: str) -> None:
        """Copy ``source`` in as ``name`` through ``name.partial``, read it back, then rename."""
        with source.open("rb") as reader:
            self.put_stream(reader, source.stat().st_size, name, sha256)

    def put_stream(self, reader: Readable, size: int, name: str, sha256: str) -> None:
        """Store what ``reader`` gives (``size`` bytes with this SHA-256) as ``name``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove_stale_partials()
        partial = self.folder / (name + PARTIAL)
        try:
            with partial.open("wb") as out:
                _copy(reader, out)
                out.flush()
                os.fsync(out.fileno())
            _verify(self.label, name, self.check(partial.name), size, sha256)
            os.replace(partial, self.folder / name)
            _fsync_dir(self.folder)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def list(self) -> list[RemoteFile]:
        """The complete archives in the folder."""
        if not self.folder.is_dir():
            return []
        files = []
        for entry in os.scandir(self.folder):
            if is_archive(entry.name) and entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                files.append(RemoteFile(entry.name, info.st_size, info.st_mtime))
        return sorted(files, key=lambda f: f.name)

    def get(self, name: str, dest: Path) -> RemoteCheck:
        """Copy ``name`` to ``dest``."""
        return _download(self._open(name), dest)

    def check(self, name: str) -> RemoteCheck:
        """Read ``name`` back in full."""
        with self._open(name) as reader:
            return _copy(reader, _NullWriter())

    def delete(self, name: str) -> None:
        """Remove ``name``."""
        (self.folder / name).unlink()

    def close(self) -> None:
        """Nothing to release."""

    def _open(self, name: str) -> IO[bytes]:
        try:
            return (self.folder / name).open("rb")
        except FileNotFoundError:
            raise BackupError(f"{self.label}: no backup named {name}") from None

    def _remove_stale_partials(self) -> None:
        cutoff = time.time() - STALE_PARTIAL_S
        for entry in os.scandir(self.folder):
            if entry.name.endswith(PARTIAL) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                Path(entry.path).unlink(missing_ok=True)


class _NullWriter:
    def write(self, data: bytes) -> int:
        return len(data)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _download(reader: IO[bytes], dest: Path) -> RemoteCheck:
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + PARTIAL)
    try:
        with reader, partial.open("wb") as out:
            got = _copy(reader, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return got


# -- SFTP -----------------------------------------------------------------------------------------------------
class SftpTarget:
    """A folder on an SFTP server: SSH key login only, the server's host key pinned."""

    def __init__(
        self,
        url: SftpUrl,
        host_key: HostKeyPin,
        key_file: Path,
        passphrase: str | None = None,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.url = url
        self.host_key = host_key
        self.key_file = key_file
        self._passphrase = passphrase
        self.timeout = timeout
        self.label = str(url)
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None

    # connection
    def connect(self) -> paramiko.SFTPClient:
        """Log in (once): check the host key against the pin, then authenticate with the key."""
        if self._sftp is not None:
            return self._sftp
        try:
            sock = socket.create_connection((self.url.host, self.url.port), timeout=self.timeout)
        except OSError as exc:
            raise BackupError(f"{self.label}: cannot connect: {exc.strerror or exc}") from None
        transport = paramiko.Transport(sock)
        transport.banner_timeout = self.timeout
        transport.auth_timeout = self.timeout
        if self.host_key.key_type is not None:
            names = _NEGOTIATED_NAMES.get(self.host_key.key_type, [self.host_key.key_type])
            transport.get_security_options().key_types = names
        try:
            transport.start_client(timeout=self.timeout)
            self._check_host_key(transport.get_remote_server_key())
            transport.auth_publickey(self.url.user, self._load_key())
            sftp = paramiko.SFTPClient.from_transport(transport)
        except paramiko.BadAuthenticationType as exc:
            transport.close()
            raise BackupError(
                f"{self.label}: the server does not accept SSH keys (it offers {', '.join(exc.allowed_types)}); "
                "robohost logs in with a key only"
            ) from None
        except paramiko.AuthenticationException:
            transport.close()
            raise BackupError(
                f"{self.label}: the server refused the SSH key {self.key_file} for user {self.url.user!r} "
                "(is its public key in the user's authorized_keys?)"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            transport.close()
            raise BackupError(f"{self.label}: SSH connection failed: {exc}") from None
        except BaseException:
            transport.close()
            raise
        if sftp is None:
            transport.close()
            raise BackupError(f"{self.label}: the server offers no SFTP")
        sftp.get_channel().settimeout(self.timeout)
        self._transport, self._sftp = transport, sftp
        return sftp

    def _check_host_key(self, key: paramiko.PKey) -> None:
        if not self.host_key.matches(key.get_name(), key.asbytes()):
            raise BackupError(
                f"{self.label}: the server's host key has CHANGED: expected {self.host_key.fingerprint}, the server "
                f"shows {fingerprint(key.asbytes())} ({key.get_name()}). Refusing to connect: someone may be "
                f"intercepting the connection. If the server's key really changed, check the new one out of band "
                f'and update "{self.url.host_port}" in backup.host_keys'
            )

    def _load_key(self) -> paramiko.PKey:
        try:
            return paramiko.PKey.from_path(self.key_file, self._passphrase)
        except FileNotFoundError:
            raise BackupError(f"the SSH key {self.key_file} does not exist") from None
        except paramiko.PasswordRequiredException:
            raise BackupError(
                f"the SSH key {self.key_file} is encrypted: put its passphrase in secrets.toml "
                "([backup] ssh_key_passphrase) or use a key without one"
            ) from None
        except (paramiko.SSHException, ValueError, OSError) as exc:
            raise BackupError(f"the SSH key {self.key_file} cannot be read: {type(exc).__name__}") from None

    def close(self) -> None:
        """Close the SFTP session and the SSH connection."""
        sftp, transport, self._sftp, self._transport = self._sftp, self._transport, None, None
        if sftp is not None:
            sftp.close()
        if transport is not None:
            transport.close()

    # files
    def _path(self, name: str) -> str:
        return f"{self.url.path}/{name}"

    def _makedirs(self, sftp: paramiko.SFTPClient) -> None:
        parts = self.url.path.split("/")
        current = "/" if self.url.path.startswith("/") else ""
        for part in parts:
            if not part:
                continue
            current = f"{current}{part}" if current in ("", "/") else f"{current}/{part}"
            try:
                sftp.stat(current)
            except FileNotFoundError:
                sftp.mkdir(current, mode=0o700)

    def put(self, source: Path, name: str, sha256: str) -> None:
        """Upload ``source`` as ``name.partial``, read it back, then rename it to ``name``."""
        with source.open("rb") as reader:
            self.put_stream(reader, source.stat().st_size, name, sha256)

    def put_stream(self, reader: Readable, size: int, name: str, sha256: str) -> None:
        """Upload what ``reader`` gives (``size`` bytes with this SHA-256) as ``name``."""
        sftp = self.connect()
        try:
            self._makedirs(sftp)
            self._remove_stale_partials(sftp)
            partial = self._path(name + PARTIAL)
            try:
                with sftp.open(partial, "wb") as out:
                    out.set_pipelined(True)
                    _copy(reader, out, SFTP_CHUNK)
                _verify(self.label, name, self._read(partial), size, sha256)
                sftp.posix_rename(partial, self._path(name))
            except BaseException:
                self._try_remove(partial)
                raise
        except (OSError, paramiko.SSHException, EOFError) as exc:
            self.close()
            raise BackupError(f"{self.label}: upload of {name} failed: {exc}") from None

    def list(self) -> list[RemoteFile]:
        """The complete archives in the folder."""
        sftp = self.connect()
        try:
            entries = sftp.listdir_attr(self.url.path)
        except FileNotFoundError:
            return []
        except (OSError, paramiko.SSHException) as exc:
            raise BackupError(f"{self.label}: listing failed: {exc}") from None
        files = [
            RemoteFile(e.filename, e.st_size or 0, e.st_mtime)
            for e in entries
            if is_archive(e.filename) and e.st_mode is not None and stat.S_ISREG(e.st_mode)
        ]
        return sorted(files, key=lambda f: f.name)

    def get(self, name: str, dest: Path) -> RemoteCheck:
        """Download ``name`` to ``dest``."""
        try:
            return _download(self._open(name), dest)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise BackupError(f"{self.label}: download of {name} failed: {exc}") from None

    def check(self, name: str) -> RemoteCheck:
        """Read ``name`` back in full."""
        try:
            return self._read(self._path(name))
        except FileNotFoundError:
            raise BackupError(f"{self.label}: no backup named {name}") from None
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise BackupError(f"{self.label}: reading {name} failed: {exc}") from None

    def delete(self, name: str) -> None:
        """Remove ``name``."""
        try:
            self.connect().remove(self._path(name))
        except (OSError, paramiko.SSHException) as exc:
            raise BackupError(f"{self.label}: deleting {name} failed: {exc}") from None

    def _open(self, name: str) -> IO[bytes]:
        sftp = self.connect()
        try:
            handle = sftp.open(self._path(name), "rb")
        except FileNotFoundError:
            raise BackupError(f"{self.label}: no backup named {name}") from None
        handle.prefetch()
        return cast(IO[bytes], handle)

    def _read(self, path: str) -> RemoteCheck:
        sftp = self.connect()
        with sftp.open(path, "rb") as handle:
            handle.prefetch()
            return _copy(handle, _NullWriter())

    def _try_remove(self, path: str) -> None:
        if self._sftp is None:
            return
        # when the connection is gone the .partial stays: it is never listed, and a later upload removes it
        with contextlib.suppress(OSError, paramiko.SSHException, EOFError):
            self._sftp.remove(path)

    def _remove_stale_partials(self, sftp: paramiko.SFTPClient) -> None:
        cutoff = time.time() - STALE_PARTIAL_S
        for entry in sftp.listdir_attr(self.url.path):
            if entry.filename.endswith(PARTIAL) and (entry.st_mtime or 0) < cutoff:
                try:
                    sftp.remove(self._path(entry.filename))
                except OSError as exc:
                    if exc.errno not in (errno.ENOENT, None):
                        raise


def open_target(
    spec: str,
    home: Path,
    host_keys: Mapping[str, str],
    ssh_key: Path | None,
    passphrase: str | None = None,
) -> BackupTarget:
    """The target ``spec`` names: a folder (relative to ``home``) or an ``sftp://`` URL with a pinned host key."""
    if not is_sftp(spec):
        folder = Path(spec).expanduser()
        return LocalTarget(folder if folder.is_absolute() else home / folder)
    try:
        url = parse_sftp_url(spec)
    except ValueError as exc:
        raise BackupError(f"backup target {spec!r}: {exc}") from None
    pinned = host_keys.get(url.host_port)
    if pinned is None:
        raise BackupError(
            f"no pinned host key for {url.host_port} (target {url}): add it to backup.host_keys in robohost.toml, "
            f'"{url.host_port}" = "ssh-ed25519 AAAA..." as a trusted \'ssh-keyscan -p {url.port} {url.host}\' shows it'
        )
    if ssh_key is None:
        raise BackupError(
            f"target {url} needs an SSH key: set [backup] ssh_key in secrets.toml or ROBOHOST_BACKUP_SSH_KEY"
        )
    try:
        pin = parse_host_key(pinned)
    except ValueError as exc:
        raise BackupError(f"backup.host_keys.{url.host_port}: {exc}") from None
    key = ssh_key.expanduser()
    return SftpTarget(url, pin, key if key.is_absolute() else home / key, passphrase)
