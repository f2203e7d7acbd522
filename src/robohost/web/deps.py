"""Request dependencies: who is asking (session cookie or bearer token), whether they may, and CSRF.

``api_principal`` answers 401 with ``WWW-Authenticate: Bearer``; ``page_principal`` sends the browser to the
sign-in page. ``operate`` refuses read-only tokens (403); ``csrf`` refuses a cookie-authenticated request that
changes state without the session's CSRF token or from another origin (403).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from robohost.services.auth import Principal
from robohost.web.context import WebContext
from robohost.web.security import CSRF_FIELD, CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, cross_site, same_token

bearer_scheme = HTTPBearer(auto_error=False, description="An API token: robohost user token add NAME --scope read")
cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="The dashboard's session cookie")


class SignInRequiredError(Exception):
    """A page asked for without a valid session: the browser goes to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


async def context(request: Request) -> WebContext:
    """The app's context."""
    ctx: WebContext = request.app.state.ctx
    return ctx


Ctx = Annotated[WebContext, Depends(context)]


def client_ip(request: Request) -> str:
    """The peer's address (proxy headers are not trusted)."""
    return request.client.host if request.client else "unknown"


def principal_of(request: Request, tokens: bool = True) -> Principal | None:
    """Who the request is from: a bearer token (when ``tokens``), else the session cookie; None if neither."""
    cached = getattr(request.state, "principal", False)
    if cached is not False:
        return cached  # type: ignore[no-any-return]
    ctx: WebContext = request.app.state.ctx
    now = ctx.clock()
    principal = None
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if tokens and scheme.lower() == "bearer":
            principal = ctx.auth.token(value.strip(), now)
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal = ctx.auth.session(cookie, now)
    request.state.principal = principal
    return principal


async def api_principal(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
    _cookie: Annotated[str | None, Security(cookie_scheme)] = None,
) -> Principal:
    """The API's caller; 401 when there is none (asynchronous: a cached lookup, no thread hop per request)."""
    principal = principal_of(request)
    if principal is None:
        raise HTTPException(
            401, "sign in, or send an API token: Authorization: Bearer rh_...", {"WWW-Authenticate": "Bearer"}
        )
    return principal


async def page_principal(request: Request) -> Principal:
    """The page's viewer (session only); otherwise to the sign-in page."""
    principal = principal_of(request, tokens=False)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequiredError(target)
    return principal


async def csrf(request: Request) -> None:
    """Refuse a state-changing, cookie-authenticated request without the CSRF token or from another origin."""
    if request.method in SAFE_METHODS:
        return
    principal = getattr(request.state, "principal", None)
    if principal is None or principal.method != "session":
        return  # bearer tokens: nothing ambient to forge
    if cross_site(request.headers, request.headers.get("host")):
        raise HTTPException(403, "refused: the request comes from another site")
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not same_token(given, principal.csrf_token):
        raise HTTPException(403, "refused: missing or wrong CSRF token (reload the page)")


async def operate(principal: Annotated[Principal, Depends(api_principal)]) -> Principal:
    """A principal allowed to run, stop and resume robots (not a read-only token)."""
    if not principal.can_operate:
        raise HTTPException(403, "this API token is read-only: use a token with --scope operate")
    return principal


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this site (no scheme, host or ``//``), else ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 32 for ch in target):
        return "/"
    return target


def login_url(next_path: str) -> str:
    """The sign-in page, coming back to ``next_path`` afterwards."""
    return "/login" if next_path in ("", "/") else f"/login?next={quote(local_path(next_path), safe='/')}"
