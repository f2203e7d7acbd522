"""Signing in and out: ``/login`` (the only page open to everybody), ``/logout``, ``/account``.

The sign-in form carries a login CSRF token (double submit: a ``__Host-`` cookie and a hidden field). A
successful sign-in drops any session the browser presented and sets a new session cookie (``__Host-``,
``Secure``, ``HttpOnly``, ``SameSite=Strict``, lasting no longer than the session's absolute expiry).
A refusal says only "sign-in failed" (or, when locked, when to try again) and answers 401 or 429.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from robohost.services.auth import MAX_PASSWORD, Principal
from robohost.web.deps import Ctx, client_ip, csrf, local_path, page_principal, principal_of
from robohost.web.render import render
from robohost.web.security import LOGIN_COOKIE, SESSION_COOKIE, same_token

router = APIRouter(tags=["auth"])
protected = APIRouter(dependencies=[Depends(page_principal), Depends(csrf)], tags=["auth"])


def _cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


def _forget(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="strict")


def _login_page(request: Request, next_path: str, error: str | None = None, status_code: int = 200) -> Response:
    token = request.cookies.get(LOGIN_COOKIE)
    if not token or len(token) > 100:
        token = secrets.token_urlsafe(32)
    response = render(
        request, "login.html", None, status_code=status_code, login_csrf=token, next_path=next_path, error=error
    )
    _cookie(response, LOGIN_COOKIE, token, 3600)
    return response


@router.get("/login", include_in_schema=False)
def login_form(
    request: Request, next_path: Annotated[str | None, Query(alias="next", max_length=2000)] = None
) -> Response:
    """The sign-in page (a signed-in browser goes straight on)."""
    if principal_of(request, tokens=False) is not None:
        return RedirectResponse(local_path(next_path), 303)
    return _login_page(request, local_path(next_path))


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD + 1)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
    login_csrf: Annotated[str, Form(max_length=100)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "/",
) -> Response:
    """Check the credentials; on success start a new session and go on to ``next``."""
    target = local_path(next_path)
    if not same_token(login_csrf, request.cookies.get(LOGIN_COOKIE)):
        return _login_page(request, target, "The sign-in form expired: please try again.", 403)
    now = ctx.clock()
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # never keep a session id the browser brought along (session fixation)
        previous = ctx.auth.session(old, now)
        if previous is not None:
            ctx.auth.logout(previous, now, client_ip(request))
    result = ctx.auth.login(username, password, code, client_ip(request), request.headers.get("user-agent"), now)
    if not result.ok:
        if result.reason == "locked":
            wait = max(1, round(result.retry_after_s))
            response = _login_page(request, target, f"Too many failed sign-ins: try again in {wait} s.", 429)
            response.headers["Retry-After"] = str(wait)
            return response
        return _login_page(request, target, "Sign-in failed: check the name, the password and the code.", 401)
    assert result.session_id is not None
    response = RedirectResponse(target, 303)
    _cookie(response, SESSION_COOKIE, result.session_id, int(ctx.auth.session_policy.absolute // 1_000_000_000))
    _forget(response, LOGIN_COOKIE)
    return response


@protected.post("/logout", include_in_schema=False)
def logout(request: Request, ctx: Ctx, principal: Annotated[Principal, Depends(page_principal)]) -> Response:
    """End this session."""
    ctx.auth.logout(principal, ctx.clock(), client_ip(request))
    response = RedirectResponse("/login", 303)
    _forget(response, SESSION_COOKIE)
    return response


@protected.get("/account", include_in_schema=False)
def account(request: Request, ctx: Ctx, principal: Annotated[Principal, Depends(page_principal)]) -> Response:
    """The user's sessions and API tokens, and "sign out everywhere"."""
    tokens = ctx.auth.tokens(principal.user)
    return render(request, "account.html", principal, sessions=ctx.auth.sessions_of(principal), tokens=tokens)


@protected.post("/account/signout-all", include_in_schema=False)
def signout_all(request: Request, ctx: Ctx, principal: Annotated[Principal, Depends(page_principal)]) -> Response:
    """End every session of this user, this one included."""
    ctx.auth.signout_all(principal.user, ctx.clock(), actor=principal.user, ip=client_ip(request))
    response = RedirectResponse("/login", 303)
    _forget(response, SESSION_COOKIE)
    return response
