"""The dashboard's certificates in a robot home: a private CA and a server certificate under ``tls/``, or the
owner's own certificate and key (``[web] cert`` and ``key``, e.g. from Let's Encrypt).

``robohost init`` makes the CA and the server certificate and prints the CA's SHA-256 fingerprint, which the
owner pins (imports the CA into their browser, or checks the fingerprint). ``robohost serve`` re-issues the
server certificate from the same CA (the fingerprint stays) when it expires within 30 days or does not
cover the configured names. Private keys are 0600 and never logged.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from robohost.adapters.web.tls import (
    Issued,
    cert_names,
    check_key_private,
    expires,
    fingerprint,
    issue_server,
    load_cert,
    make_ca,
    spki_sha256,
    write_private,
    write_public,
)
from robohost.config.models import WebConfig

TLS_DIR = "tls"
RENEW_BEFORE = timedelta(days=30)
_WILDCARDS = {"0.0.0.0", "::", ""}


@dataclass(frozen=True)
class TlsPaths:
    """Where a home keeps its generated TLS files."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        """The CA certificate (public: give it to browsers)."""
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """The CA's private key (0600)."""
        return self.folder / "ca.key"

    @property
    def cert(self) -> Path:
        """The server certificate followed by the CA certificate."""
        return self.folder / "server.pem"

    @property
    def key(self) -> Path:
        """The server's private key (0600)."""
        return self.folder / "server.key"


@dataclass(frozen=True)
class Certificates:
    """What the dashboard serves with, and what the owner pins."""

    cert: Path
    key: Path
    own: bool
    fingerprint: str
    spki_sha256: str
    names: set[str]
    expires: datetime
    ca_cert: Path | None = None
    ca_fingerprint: str | None = None
    made: list[str] = field(default_factory=list)


def certificate_names(web: WebConfig) -> list[str]:
    """The names the generated certificate answers to: loopback, this host's names, ``host`` and ``names``."""
    names = ["localhost", "127.0.0.1", "::1"]
    host = socket.gethostname()
    fqdn = socket.getfqdn()
    names += [n for n in (host, fqdn) if n and n != "localhost" and not n.startswith("localhost.")]
    if web.host not in _WILDCARDS:
        names.append(web.host)
    names += web.names
    return list(dict.fromkeys(names))


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def ensure_certificates(home: Path, web: WebConfig, now: datetime, *, renew: bool = False) -> Certificates:
    """The dashboard's certificate: the owner's own, or the generated one (made or renewed when needed)."""
    if web.cert is not None and web.key is not None:
        cert_file, key_file = home / web.cert, home / web.key
        cert = load_cert(cert_file)
        check_key_private(key_file)
        return Certificates(
            cert_file, key_file, True, fingerprint(cert), spki_sha256(cert), cert_names(cert), expires(cert)
        )
    paths = TlsPaths(home / TLS_DIR)
    made: list[str] = []
    if not (paths.ca_cert.exists() and paths.ca_key.exists()):
        ca = make_ca(f"robohost dashboard CA ({socket.gethostname()})", now)
        write_private(paths.ca_key, ca.key_pem)
        write_public(paths.ca_cert, ca.cert_pem)
        made.append("ca")
    check_key_private(paths.ca_key)
    ca = Issued(paths.ca_key.read_bytes(), paths.ca_cert.read_bytes())
    ca_cert = load_cert(paths.ca_cert)
    names = certificate_names(web)
    current = load_cert(paths.cert) if paths.cert.exists() and paths.key.exists() else None
    stale = (
        current is None
        or renew
        or expires(current) - now < RENEW_BEFORE
        or not set(names) <= cert_names(current)
        or not _issued_by(current, ca_cert)
    )
    if stale:
        server = issue_server(ca, names, now)
        write_private(paths.key, server.key_pem)
        write_public(paths.cert, server.cert_pem + ca.cert_pem)
        made.append("server")
        current = load_cert(paths.cert)
    assert current is not None
    return Certificates(
        paths.cert,
        paths.key,
        False,
        fingerprint(current),
        spki_sha256(current),
        cert_names(current),
        expires(current),
        paths.ca_cert,
        fingerprint(ca_cert),
        made,
    )
