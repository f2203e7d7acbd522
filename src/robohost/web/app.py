"""``create_app``: the dashboard's FastAPI application, from a ``WebContext``.

Open to everybody: ``/login``, the static assets (``/static/...``, plotly.js served from the installed plotly
package, never a CDN) and ``/healthz`` (``{"status": "ok"}``, nothing more). Everything else needs a session
or an API token (``tests/web/test_route_auth.py`` walks every route to prove it). No Swagger UI (it would load
assets from a CDN): the schema is ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from robohost.web.context import WebContext
from robohost.web.deps import SignInRequiredError, login_url, principal_of
from robohost.web.render import STATIC, make_templates, render
from robohost.web.routes import api, auth, pages
from robohost.web.security import Message, Receive, Scope, SecurityHeaders, Send

log = logging.getLogger("robohost.web")
PLOTLY_PATH = "/static/plotly.min.js"
PLOTLY_CSS_PATH = "/static/plotly.css"


@lru_cache(maxsize=1)
def plotly_js() -> tuple[bytes, bytes, str, str]:
    """plotly.min.js from the installed plotly package: raw, gzipped, its ETag and plotly's version."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    raw = path.read_bytes()
    return raw, gzip.compress(raw, 6), '"' + hashlib.sha256(raw).hexdigest()[:20] + '"', metadata.version("plotly")


_PLOTLY_RULES = re.compile(r'=\{("X.*?)\};for\(\w+ in \w+\)\w+=\w+\.replace\(/\^,/," ,"\)', re.S)
_PLOTLY_RULE = re.compile(r'"((?:[^"\\]|\\.)*)":(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\')')


_BUNDLED_STYLE = re.compile(
    r'document\.getElementById\("([0-9a-f]{16,})"\)\)\{var (\w+)=document\.createElement\("style"\);'
    r'\2\.id="\1",\2\.textContent=\'((?:[^\'\\]|\\.)*)\''
)


@lru_cache(maxsize=1)
def plotly_styles() -> tuple[bytes, tuple[str, ...]]:
    """plotly.js's own stylesheet, taken from the installed plotly.min.js, and the ids of its bundled styles.

    plotly.js would insert its rules as inline ``<style>`` elements, which the Content-Security-Policy forbids.
    The pages link this stylesheet instead: with ``id="plotly.js-style-global" class="no-inline-styles"``
    (plotly's documented opt-out) for its global rules, and an empty ``<template>`` with the id of each style
    its bundled libraries insert once (they skip theirs when an element with that id exists; those are maps'
    styles, which the dashboard does not draw). If a plotly version changes its bundle so that they cannot be
    found, charts still draw; only some styling is lost.
    """
    text = plotly_js()[0].decode("utf-8", "replace")
    rules = []
    found = _PLOTLY_RULES.search(text)
    for key, double, single in _PLOTLY_RULE.findall(found.group(1) if found else ""):
        selector = re.sub(r"^,", " ,", key).replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        rules.append(f"{selector}{{{double or single}}}")
    bundled = tuple(style_id for style_id, _, _ in _BUNDLED_STYLE.findall(text))
    return "\n".join(rules).encode(), bundled


def plotly_css() -> bytes:
    """The stylesheet of ``plotly_styles``."""
    return plotly_styles()[0]


class CatchAll:
    """Turn an unexpected exception into a plain 500 (inside the security headers), logging only its type."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; answer 500 if it raises before responding."""
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.error("dashboard: %s %s failed: %s", scope.get("method"), scope.get("path"), type(exc).__name__)
            log.debug("dashboard failure", exc_info=True)
            if started or scope["type"] != "http":
                raise
            body = b'{"detail":"internal error (logged)"}'
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})


def create_app(ctx: WebContext) -> FastAPI:
    """The dashboard and ``/api/v1`` over ``ctx`` (wrap it with ``secured`` to serve it)."""
    app = FastAPI(
        title="robohost",
        version=ctx.version or "0",
        description="The robohost dashboard's API: robots, orders, fills, jobs, risk, health, reports, backups, "
        "logs; run, stop and resume. Authenticate with `Authorization: Bearer rh_...` (robohost user token add).",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.ctx = ctx
    app.state.templates = make_templates()
    app.state.plotly_version = plotly_js()[3]
    app.state.plotly_style_ids = plotly_styles()[1]

    @app.exception_handler(SignInRequiredError)
    async def sign_in(request: Request, exc: SignInRequiredError) -> Response:
        return RedirectResponse(login_url(exc.next_path), 303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        principal = principal_of(request, tokens=False)
        return render(request, "error.html", principal, exc.status_code, status=exc.status_code, detail=exc.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()][:20]
        if _wants_json(request):
            return JSONResponse({"detail": errors}, 422)
        principal = principal_of(request, tokens=False)
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return render(request, "error.html", principal, 422, status=422, detail=detail)

    @app.get("/healthz", tags=["probe"])
    def healthz() -> dict[str, str]:
        """A minimal liveness probe (no sign-in, no details)."""
        return {"status": "ok"}

    @app.get(PLOTLY_PATH, include_in_schema=False)
    def plotly(request: Request) -> Response:
        """plotly.js, from the plotly package installed with robohost."""
        raw, packed, etag, _ = plotly_js()
        headers = {"ETag": etag, "Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(packed, media_type="text/javascript", headers={**headers, "Content-Encoding": "gzip"})
        return Response(raw, media_type="text/javascript", headers=headers)

    @app.get(PLOTLY_CSS_PATH, include_in_schema=False)
    def plotly_stylesheet() -> Response:
        """plotly.js's stylesheet (see ``plotly_css``)."""
        return Response(plotly_css(), media_type="text/css", headers={"Cache-Control": "public, max-age=86400"})

    app.include_router(auth.router)
    app.include_router(auth.protected)
    app.include_router(pages.router)
    app.include_router(api.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(CatchAll)
    app.add_middleware(SecurityHeaders)
    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def redirect_app(https_port: int, fallback_host: str) -> SecurityHeaders:
    """The plain-HTTP listener's app: every request is sent to the same path over HTTPS (301), nothing else."""
    port = "" if https_port == 443 else f":{https_port}"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        host = _host(dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")) or fallback_host
        path = scope.get("raw_path") or scope.get("path", "/").encode()
        if not path.startswith(b"/") or path.startswith(b"//"):
            path = b"/"
        query = scope.get("query_string", b"")
        location = f"https://{host}{port}".encode() + path + (b"?" + query if query else b"")
        headers = [(b"location", location), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 301, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    return SecurityHeaders(app)


def _host(header: str) -> str | None:
    """The host name of a ``Host`` header (no port), if it is a plain name or address."""
    if header.startswith("["):
        inside, _, _ = header[1:].partition("]")
        return f"[{inside}]" if inside and all(c in "0123456789abcdefABCDEF:." for c in inside) else None
    name = header.rsplit(":", 1)[0] if header.count(":") == 1 else header
    ok = name and len(name) <= 253 and all(c.isalnum() or c in "-." for c in name) and name.isascii()
    return name if ok else None
