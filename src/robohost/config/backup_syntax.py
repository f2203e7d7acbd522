"""The syntax of the ``[backup]`` table: backup targets, age recipients and pinned SSH host keys.

This module says what may be written (and why something may not); ``robohost.adapters.backup`` uses the
parsed values to connect. It lives in the config layer because the config models validate with it.
Imports the standard library only.

- A target: a local folder (``"backups"``, relative to the home, or absolute) or
  ``"sftp://user@host[:port]/absolute/path"`` (``/~/path`` is relative to the login folder).
- A recipient: an age public key (``age1…``) or an SSH public key (``ssh-ed25519 AAAA…``, ``ssh-rsa AAAA…``).
  Never a private key: the server must not be able to read its own backups.
- A pinned host key, per ``"host:port"``: the server's public key as in ``known_hosts``
  (``ssh-ed25519 AAAA…``, optionally preceded by the host names) or its fingerprint ``SHA256:…``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SFTP_SCHEME = "sftp://"
AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
SSH_RECIPIENT = re.compile(r"^(ssh-ed25519|ssh-rsa) [A-Za-z0-9+/]+={0,3}(?: .*)?$")
HOST_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)
FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class SftpUrl:
    """An SFTP target: who logs in where, and the folder that holds the backups."""

    user: str
    host: str
    port: int
    path: str
    """Absolute (``/srv/backups``) or relative to the login folder (``backups``)."""

    @property
    def host_port(self) -> str:
        """The key of ``backup.host_keys`` for this server: ``"host:port"``."""
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        path = self.path if self.path.startswith("/") else f"/~/{self.path}"
        return f"sftp://{self.user}@{self.host}:{self.port}{path}"


def is_sftp(target: str) -> bool:
    """True when ``target`` names an SFTP server rather than a local folder."""
    return target.startswith(SFTP_SCHEME)


def parse_sftp_url(text: str) -> SftpUrl:
    """Parse ``sftp://user@host[:port]/path``; a ``ValueError`` says what is wrong (never a password)."""
    parts = urlsplit(text)
    if parts.scheme != "sftp":
        raise ValueError(f"{text!r} is not an sftp:// URL")
    if parts.password is not None:
        raise ValueError("an sftp target takes no password: robohost logs in with an SSH key only")
    if not parts.username:
        raise ValueError(f"{text!r} names no user: write sftp://user@host:port/path")
    if not parts.hostname:
        raise ValueError(f"{text!r} names no host: write sftp://user@host:port/path")
    try:
        port = parts.port or 22
    except ValueError:
        raise ValueError(f"{text!r} has an invalid port") from None
    path = unquote(parts.path)
    if path.startswith("/~/"):
        path = path[3:]
    if path in ("", "/", "/~"):
        raise ValueError(f"{text!r} names no folder: write sftp://user@host:port/path/to/backups")
    if parts.query or parts.fragment:
        raise ValueError(f"{text!r}: an sftp target takes no '?' or '#' part")
    return SftpUrl(unquote(parts.username), parts.hostname, port, path.rstrip("/"))


def check_target(text: str) -> str:
    """Check a target: an sftp:// URL or a local folder."""
    if is_sftp(text):
        parse_sftp_url(text)
    elif not text.strip():
        raise ValueError("a backup target is a folder or an sftp://user@host:port/path URL, not empty")
    elif "://" in text:
        raise ValueError(f"{text!r}: the only remote target is sftp://user@host:port/path")
    return text


def check_recipient(text: str) -> str:
    """Check an age recipient: an ``age1…`` public key or an SSH public key; refuse private keys."""
    value = " ".join(text.split())
    if value.upper().startswith("AGE-SECRET-KEY-") or "PRIVATE KEY" in value:
        raise ValueError(
            "this is a private key (an identity): the server holds only public keys (age1...), "
            "so that a stolen server cannot read its backups; keep the identity on your own computer"
        )
    if AGE_RECIPIENT.match(value) or SSH_RECIPIENT.match(value):
        return value
    raise ValueError(f"{text[:24]!r}... is not an age public key (age1...) or an SSH public key (ssh-ed25519 AAAA...)")


@dataclass(frozen=True, slots=True)
class HostKeyPin:
    """A pinned host key: the full key (type and bytes) or only its SHA-256 fingerprint."""

    key_type: str | None
    key_bytes: bytes | None
    fingerprint: str

    def matches(self, key_type: str, key_bytes: bytes) -> bool:
        """True when the server's key is the pinned one."""
        if self.key_bytes is not None:
            return self.key_type == key_type and self.key_bytes == key_bytes
        return self.fingerprint == fingerprint(key_bytes)


def fingerprint(key_bytes: bytes) -> str:
    """OpenSSH's fingerprint of a public key: ``SHA256:`` and unpadded base64."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key_bytes).digest()).decode().rstrip("=")


def parse_host_key(text: str) -> HostKeyPin:
    """Parse a pinned host key: ``ssh-ed25519 AAAA…`` (a known_hosts line, host names allowed) or ``SHA256:…``."""
    value = text.strip()
    if FINGERPRINT.match(value):
        return HostKeyPin(None, None, value.rstrip("="))
    fields = value.split()
    if fields and fields[0] not in HOST_KEY_TYPES and len(fields) >= 3:
        fields = fields[1:]  # a known_hosts line: host names first
    if len(fields) < 2 or fields[0] not in HOST_KEY_TYPES:
        raise ValueError(
            "expected the server's public key as in known_hosts ('ssh-ed25519 AAAA...', see "
            "'ssh-keyscan -p PORT HOST') or its fingerprint 'SHA256:...'"
        )
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the {fields[0]} key is not valid base64") from None
    return HostKeyPin(fields[0], blob, fingerprint(blob))


def check_host_port(text: str) -> str:
    """Check a ``backup.host_keys`` key: ``host:port``."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: the keys of host_keys are 'host:port', e.g. 'backup.example.com:22'")
    return text
