"""Test harness for logs, alerts and metrics: a test PKI, a real rsyslog TLS collector, an SMTP server with
STARTTLS and AUTH (aiosmtpd), and a webhook receiver, all on 127.0.0.1 and stopped by the test.

``Collector`` starts Debian's ``rsyslogd -n`` from a private configuration (``imtcp`` with the ``gtls`` stream
driver, mutual TLS, ``RSYSLOG_SyslogProtocol23Format`` into a file), can be stopped and started again on the
same port, and counts the robohost records that arrived (by their ``seq``). Every wait is bounded.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from system import need_program

GTLS_MODULES = (
    Path("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"),
    Path("/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so"),
)
SEQ = re.compile(rb'robohost@32473 seq="(\d+)"')
logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's notice about its login_data


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll ``check`` (bounded) until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)  # polling an outside process or thread for a state change


# -- a test PKI ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A CA and a server and a client certificate for localhost (PEM files, keys 0600)."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    def cert(self, name: str) -> Path:
        return self.folder / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.folder / f"{name}.key"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def make_pki(folder: Path, days: int = 30) -> Pki:
    """A throwaway CA, ``server`` (localhost, 127.0.0.1) and ``client`` certificates, valid ``days``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "robohost test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    names = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
    )
    for name, usage in (("server", ExtendedKeyUsageOID.SERVER_AUTH), ("client", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost" if name == "server" else name)])
            )
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=days))
            .add_extension(names, critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(folder / f"{name}.key", key)
    return Pki(folder)


# -- rsyslog ------------------------------------------------------------------------------------------------


class Collector:
    """A real rsyslog receiving RFC 5424 over mutual TLS on 127.0.0.1 (see the module docstring)."""

    def __init__(self, folder: Path, pki: Pki, port: int | None = None) -> None:
        self.rsyslogd = need_program("rsyslogd", "rsyslog")
        if not any(m.exists() for m in GTLS_MODULES):
            pytest.skip("needs rsyslog's gtls driver: install the Debian package 'rsyslog-gnutls' (make test does)")
        self.folder = folder
        self.port = port or free_port()
        self.output = folder / "received.log"
        (folder / "spool").mkdir(parents=True, exist_ok=True)
        self.config = folder / "rsyslog.conf"
        self.config.write_text(
            f'global(workDirectory="{folder}/spool" DefaultNetstreamDriver="gtls"\n'
            f'       DefaultNetstreamDriverCAFile="{pki.ca}"\n'
            f'       DefaultNetstreamDriverCertFile="{pki.cert("server")}"\n'
            f'       DefaultNetstreamDriverKeyFile="{pki.key("server")}")\n'
            'module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" '
            'StreamDriver.AuthMode="x509/certvalid")\n'
            f'input(type="imtcp" port="{self.port}" address="127.0.0.1")\n'
            f'action(type="omfile" file="{self.output}" template="RSYSLOG_SyslogProtocol23Format")\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Collector:
        """Start rsyslogd and wait (bounded) until it listens."""
        assert self.proc is None
        self.starts += 1
        with (self.folder / f"rsyslogd-{self.starts}.out").open("wb") as out:
            self.proc = subprocess.Popen(
                [self.rsyslogd, "-n", "-f", str(self.config), "-i", str(self.folder / "rsyslogd.pid")],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.listening, f"rsyslogd to listen on {self.port}", 20)
        return self

    def listening(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, (self.folder / f"rsyslogd-{self.starts}.out").read_text()
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        """Stop rsyslogd by its PID (SIGTERM, bounded; then SIGKILL)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def text(self) -> bytes:
        return self.output.read_bytes() if self.output.exists() else b""

    def seqs(self) -> list[int]:
        """The ``seq`` of every robohost record received, in arrival order (duplicates kept)."""
        return [int(m) for m in SEQ.findall(self.text())]


# -- SMTP ---------------------------------------------------------------------------------------------------


class SmtpSink:
    """aiosmtpd on 127.0.0.1 that demands STARTTLS and AUTH (one user), keeping every message."""

    def __init__(self, pki: Pki, user: str, password: str) -> None:
        self.messages: list[tuple[str, list[str], str]] = []
        self.logins: list[tuple[str, bool]] = []
        self.port = free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(pki.cert("server")), str(pki.key("server")))

        def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and data.login == user.encode() and data.password == password.encode()
            self.logins.append((mechanism, ok))
            return AuthResult(success=ok)

        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=auth,
            auth_require_tls=True,
        )

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 OK"

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def subjects(self) -> list[str]:
        return [
            str(email.message_from_string(content, policy=email.policy.default)["Subject"]).strip()
            for _, _, content in self.messages
        ]


# -- webhooks -----------------------------------------------------------------------------------------------


@dataclass
class Hit:
    """One request the webhook receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookSink:
    """An HTTP server on 127.0.0.1 recording every POST; answers ``status`` (a list: one per request, then 200)."""

    hits: list[Hit] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.hits.append(Hit(self.path, dict(self.headers.items()), body))
                status = sink.statuses.pop(0) if sink.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> WebhookSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def at(self, prefix: str) -> list[Hit]:
        return [h for h in self.hits if h.path.startswith(prefix)]
