"""The dashboard's certificates: a private CA and a server certificate made in the home (keys 0600), renewed
from the same CA (the pinned fingerprint stays), or the owner's own; and the TLS the server speaks with them:
the chain verifies against the CA for the names it should, TLS 1.2 and 1.3 only, modern suites only.
"""

from __future__ import annotations

import socket
import ssl
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from robohost.adapters.web.tls import issue_server, load_cert, make_ca, server_context, write_private, write_public
from robohost.config.models import WebConfig
from robohost.errors import ConfigError
from robohost.services.certificates import ensure_certificates

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@contextmanager
def tls_server(context: ssl.SSLContext) -> Iterator[int]:
    """A TLS server on 127.0.0.1 that completes handshakes (and nothing else) until the block ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _handshake(port: int, client: ssl.SSLContext, name: str) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return client.wrap_socket(raw, server_hostname=name)


def test_init_makes_a_ca_and_a_server_certificate_that_verify(tmp_path: Path) -> None:
    web = WebConfig(names=["robot.example.com", "192.0.2.10"])
    certs = ensure_certificates(tmp_path, web, datetime.now(UTC))
    assert certs.made == ["ca", "server"] and not certs.own
    for key in (tmp_path / "tls" / "ca.key", certs.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert {"localhost", "127.0.0.1", "::1", "robot.example.com", "192.0.2.10", socket.gethostname()} <= certs.names
    assert certs.ca_fingerprint is not None and len(certs.ca_fingerprint.split(":")) == 32
    anchor = ssl.create_default_context(cafile=str(certs.ca_cert))
    with tls_server(server_context(certs.cert, certs.key)) as port:
        for name in ("localhost", "127.0.0.1", "robot.example.com"):
            with _handshake(port, anchor, name) as tls:
                assert tls.version() == "TLSv1.3"
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(port, anchor, "other.example.com")
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(port, ssl.create_default_context(), "localhost")  # the system's CAs do not know it
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(str(certs.ca_cert))
        with warnings.catch_warnings():  # an old client on purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            old.minimum_version = ssl.TLSVersion.TLSv1
        with pytest.raises(ssl.SSLError):
            _handshake(port, old, "localhost")
        tls12 = ssl.create_default_context(cafile=str(certs.ca_cert))
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        with _handshake(port, tls12, "localhost") as tls:
            cipher, version, _ = tls.cipher()
            assert version == "TLSv1.2" and cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher)
        weak = ssl.create_default_context(cafile=str(certs.ca_cert))
        weak.maximum_version = ssl.TLSVersion.TLSv1_2
        weak.set_ciphers("AES128-SHA:AES256-SHA:ECDHE-RSA-AES128-SHA")  # no forward secrecy or no AEAD
        with pytest.raises(ssl.SSLError):
            _handshake(port, weak, "localhost")


def test_renewal_keeps_the_ca_and_covers_new_names(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path, WebConfig(), NOW)
    again = ensure_certificates(tmp_path, WebConfig(), NOW + timedelta(days=10))
    assert again.made == [] and again.fingerprint == first.fingerprint
    renamed = ensure_certificates(tmp_path, WebConfig(names=["new.example.org"]), NOW + timedelta(days=11))
    assert renamed.made == ["server"] and "new.example.org" in renamed.names
    late = ensure_certificates(tmp_path, WebConfig(names=["new.example.org"]), NOW + timedelta(days=380))
    assert late.made == ["server"] and late.fingerprint != renamed.fingerprint  # within 30 days of expiry
    forced = ensure_certificates(tmp_path, WebConfig(names=["new.example.org"]), NOW + timedelta(days=381), renew=True)
    assert forced.made == ["server"]
    assert len({first.ca_fingerprint, renamed.ca_fingerprint, late.ca_fingerprint, forced.ca_fingerprint}) == 1


def test_the_owners_certificate_is_used_when_configured(tmp_path: Path) -> None:
    ca = make_ca("someone else's CA", NOW)
    own = issue_server(ca, ["robot.example.com"], NOW)
    write_public(tmp_path / "fullchain.pem", own.cert_pem + ca.cert_pem)
    write_private(tmp_path / "privkey.pem", own.key_pem)
    web = WebConfig(cert="fullchain.pem", key="privkey.pem")
    certs = ensure_certificates(tmp_path, web, NOW)
    assert certs.own and certs.names == {"robot.example.com"} and certs.ca_fingerprint is None
    assert not (tmp_path / "tls").exists()
    assert load_cert(certs.cert).subject == load_cert(tmp_path / "fullchain.pem").subject
    (tmp_path / "privkey.pem").chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        ensure_certificates(tmp_path, web, NOW)
    (tmp_path / "privkey.pem").chmod(0o600)
    with pytest.raises(ConfigError, match="no such certificate"):
        ensure_certificates(tmp_path, WebConfig(cert="missing.pem", key="privkey.pem"), NOW)
    other = issue_server(ca, ["x.example.com"], NOW)
    write_private(tmp_path / "other.key", other.key_pem)
    with pytest.raises(ConfigError, match="cannot use the certificate"):
        server_context(tmp_path / "fullchain.pem", tmp_path / "other.key")
