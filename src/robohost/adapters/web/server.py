"""The dashboard's listeners: uvicorn serving an ASGI app over HTTPS, and optionally a plain-HTTP app (the
redirect), both on one event loop in a thread of ``robohost serve``.

The sockets are bound in ``start`` on the caller's thread, so a port that is taken is a ``ConfigError`` before
anything else starts. ``request_stop`` closes the listeners at the loop's next tick (0.1 s); ``stop`` waits
for the requests in flight (bounded). Proxy headers are not trusted: the client address is the peer's.
Must not import ``robohost.config``, ``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import threading
from typing import Any

import uvicorn

from robohost.errors import ConfigError

ASGIApp = Any
"""An ASGI application (FastAPI, Starlette or a bare callable)."""


def bind(host: str, port: int, what: str) -> socket.socket:
    """A listening TCP socket on ``host:port``; ``ConfigError`` naming the key when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ConfigError(f"[web] host {host!r}: not an address this machine can listen on ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"[web] {what} {port} on {host} is already in use by another program: stop it, or choose "
                f"another {what} in robohost.toml"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"[web] {what} {port} on {host}: permission denied (ports below 1024 need privileges; "
                "use 8443 and a firewall redirect, or grant CAP_NET_BIND_SERVICE)"
            ) from None
        raise ConfigError(f"[web] cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handling (the serve process owns the signals)."""

    def install_signal_handlers(self) -> None:  # older uvicorn versions
        """Leave the signals to ``robohost serve``."""


class WebServer:
    """HTTPS (and the HTTP redirect) in a background thread."""

    def __init__(
        self,
        https_app: ASGIApp,
        ssl_context: ssl.SSLContext,
        host: str,
        port: int,
        http_app: ASGIApp | None = None,
        http_port: int = 0,
        log: logging.Logger | None = None,
        graceful_s: float = 5.0,
    ) -> None:
        self.app = https_app
        self.host = host
        self.port = port
        self.http_port = http_port if http_app is not None else 0
        self.log = log or logging.getLogger("robohost.web")
        self._graceful_s = graceful_s
        self._https = _Server(self._config(https_app, ssl_context))
        self._http = _Server(self._config(http_app, None)) if http_app is not None and http_port else None
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None

    def _config(self, app: ASGIApp, context: ssl.SSLContext | None) -> uvicorn.Config:
        options: dict[str, Any] = {}
        if context is not None:
            options["ssl_context_factory"] = lambda _config, _default: context
        return uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=int(self._graceful_s) or 1,
            timeout_keep_alive=30,
            limit_concurrency=1000,
            h11_max_incomplete_event_size=64 * 1024,
            **options,
        )

    def start(self, timeout_s: float = 15.0) -> None:
        """Bind the ports (``ConfigError`` when one is taken) and serve in a thread until ``stop``."""
        https = bind(self.host, self.port, "port")
        self._sockets = [https]
        try:
            if self._http is not None:
                self._sockets.append(bind(self.host, self.http_port, "http_port"))
        except ConfigError:
            https.close()
            raise
        self._thread = threading.Thread(target=self._run, name="robohost-web", daemon=True)
        self._thread.start()
        servers = [s for s in (self._https, self._http) if s is not None]
        for _ in range(int(timeout_s / 0.02)):
            if self._failed is not None or all(s.started for s in servers):
                break
            self._thread.join(0.02)
        if self._failed is not None or not all(s.started for s in servers):
            self.stop()
            raise ConfigError(f"the dashboard did not start: {self._failed or 'timed out'}")
        self.log.info("dashboard listening on https://%s:%d/", self._shown_host, self.port)
        if self.http_port:
            self.log.info("plain HTTP on port %d redirects to HTTPS", self.http_port)

    @property
    def _shown_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def _run(self) -> None:
        async def both() -> None:
            jobs = [self._https.serve(sockets=[self._sockets[0]])]
            if self._http is not None:
                jobs.append(self._http.serve(sockets=[self._sockets[1]]))
            await asyncio.gather(*jobs)

        try:
            asyncio.run(both())
        except (Exception, SystemExit) as exc:  # uvicorn's startup exits on failure: report it
            self._failed = exc
            self.log.error("the dashboard stopped: %s", type(exc).__name__)

    def request_stop(self) -> None:
        """Close the listeners at the next tick (safe from a signal handler)."""
        for server in (self._https, self._http):
            if server is not None:
                server.should_exit = True

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop serving and wait (bounded) for the requests in flight."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout_s if timeout_s is not None else self._graceful_s + 5)
            if self._thread.is_alive():
                self.log.error("the dashboard did not stop within %.0f s", self._graceful_s + 5)
        for sock in self._sockets:
            sock.close()

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()
