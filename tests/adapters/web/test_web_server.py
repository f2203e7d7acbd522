"""The dashboard's listeners, as ``robohost serve`` builds them (``App.web_server``): real HTTPS on 127.0.0.1
with the security headers on every kind of response, the plain-HTTP port that only redirects, a taken port as a
clear error, and no dashboard while nobody can sign in.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx
import pytest

from robohost.bootstrap import open_app
from robohost.errors import ConfigError
from web_support import FAST_HASHER, PASSWORD, USER, web_home

HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_secure(response: httpx.Response) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name, response.headers.get(name))
    csp = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp or "script-src 'self'" in csp
    assert "server" not in response.headers


def test_https_answers_with_the_security_headers_and_http_only_redirects(tmp_path: Path) -> None:
    port, http_port = _free_port(), _free_port()
    home = web_home(tmp_path / "home", f"sqlite:///{tmp_path / 'robohost.db'}", replay=False,
                    web=f"port = {port}\nhttp_port = {http_port}")  # fmt: skip
    app = open_app(home)
    try:
        assert app.web_server() is None  # nobody can sign in yet: no dashboard
        auth = app.auth()
        auth.hasher = FAST_HASHER
        auth.add_user(USER, PASSWORD, 0)
        _, token = auth.add_token(USER, "read", "test", 0)
        server = app.web_server()
        assert server is not None
        server.start()
        try:
            trusted = ssl.create_default_context(cafile=str(home / "tls" / "ca.pem"))
            with httpx.Client(base_url=f"https://localhost:{port}", verify=trusted, timeout=10) as client:
                login = client.get("/login")
                assert login.status_code == 200 and "Sign in" in login.text
                answers = [
                    login,
                    client.get("/"),  # 303 to the sign-in page
                    client.get("/api/v1/robots"),  # 401
                    client.get("/no-such-page"),  # 404
                    client.get("/static/dashboard.css"),
                    client.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"}),
                    client.get("/healthz"),
                ]
                assert [a.status_code for a in answers] == [200, 303, 401, 404, 200, 200, 200]
                for answer in answers:
                    _assert_secure(answer)
                assert answers[1].headers["cache-control"] == "no-store"
                assert answers[5].headers["content-encoding"] == "gzip" and len(answers[5].content) > 1_000_000

                bearer = {"Authorization": f"Bearer {token}"}
                assert client.get("/api/v1/robots", headers=bearer).status_code == 200
                server.app.state.ctx.dashboard.health = lambda now: 1 / 0  # a read fails unexpectedly
                failed = client.get("/api/v1/health", headers=bearer)
                assert failed.status_code == 500 and failed.json() == {"detail": "internal error (logged)"}
                _assert_secure(failed)

            plain = httpx.get(f"http://127.0.0.1:{http_port}/orders?robot=bot", timeout=10)
            assert (
                plain.status_code == 301 and plain.headers["location"] == f"https://127.0.0.1:{port}/orders?robot=bot"
            )
            odd = httpx.get(f"http://127.0.0.1:{http_port}/", headers={"Host": "evil.example/x"}, timeout=10)
            assert odd.headers["location"] == f"https://127.0.0.1:{port}/"
            with pytest.raises(httpx.RemoteProtocolError):
                httpx.get(f"http://127.0.0.1:{port}/", timeout=10)  # plain HTTP on the HTTPS port gets nothing

            second = app.web_server()
            assert second is not None
            with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
                second.start()
        finally:
            server.stop()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2)
    finally:
        app.close()


def test_the_dashboard_can_be_switched_off(tmp_path: Path) -> None:
    home = web_home(tmp_path / "home", f"sqlite:///{tmp_path / 'robohost.db'}", replay=False, web="enabled = false")
    app = open_app(home)
    try:
        app.auth().add_user(USER, PASSWORD, 0)
        assert app.web_server() is None
    finally:
        app.close()
