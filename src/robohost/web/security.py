"""Security headers on every response, and the checks a state-changing request must pass.

- Headers (a pure ASGI middleware, so it also covers static files, errors and redirects):
  ``Strict-Transport-Security`` (two years, sub-domains), a ``Content-Security-Policy`` that allows scripts
  and styles from this origin only (no inline script, no ``eval``, no other host), ``X-Content-Type-Options:
  nosniff``, ``Referrer-Policy: same-origin`` (no referrer to other sites; with ``no-referrer`` browsers send
  ``Origin: null`` on same-site form posts), ``X-Frame-Options: DENY`` (and ``frame-ancestors 'none'``),
  ``Cross-Origin-Opener-Policy``, ``Cross-Origin-Resource-Policy``, ``Permissions-Policy``, and
  ``Cache-Control: no-store`` on everything but static assets.
- CSRF: a request authenticated by the session cookie that changes state must carry the session's CSRF token
  (header ``X-CSRF-Token`` or form field ``csrf_token``) and must not come from another origin
  (``Origin``/``Sec-Fetch-Site``). Bearer-token requests carry no ambient credentials and need no token.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HSTS = "max-age=63072000; includeSubDomains"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; manifest-src 'self'"
)
CSP_FILES = "default-src 'none'; sandbox; frame-ancestors 'none'"
"""For downloads (reports may be HTML): nothing in them runs, even if opened in the browser."""
SESSION_COOKIE = "__Host-robohost-session"
LOGIN_COOKIE = "__Host-robohost-login"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_BASE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"strict-transport-security", HSTS.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
]


class SecurityHeaders:
    """Add the security headers of the module docstring to every HTTP response of ``app``."""

    def __init__(self, app: ASGIApp, static_prefix: str = "/static/") -> None:
        self.app = app
        self.static_prefix = static_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``send`` to add the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(self.static_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _REPLACED]
                present = {k.lower() for k, _ in headers}
                headers += _BASE_HEADERS
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", CSP.encode()))
                if not static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_REPLACED = frozenset(k for k, _ in _BASE_HEADERS) | {b"server"}


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a presented token with the expected one (both present)."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def cross_site(headers: Any, host: str | None) -> bool:
    """Whether a request says it comes from another site (``Sec-Fetch-Site``) or origin (``Origin``)."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return host is None or origin != f"https://{host}"
