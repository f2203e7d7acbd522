"""Every route of the app refuses a request that is not signed in: pages send the browser to the sign-in page,
the API answers 401. Only the sign-in page, the static assets and a minimal health probe are open.

The routes are enumerated from the app itself, so a route added later without authentication fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.routing import Mount

from web_support import web_app, web_home

try:  # FastAPI >= 0.160 keeps included routers whole: this lists their routes with their full paths
    from fastapi.routing import iter_route_contexts
except ImportError:  # older FastAPI copies the routes into app.routes

    def iter_route_contexts(routes: Any) -> Any:  # type: ignore[misc]
        """The routes as they are."""
        return routes


OPEN = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/healthz"),
    ("GET", "/static/plotly.min.js"),
    ("GET", "/static/plotly.css"),
}
"""Routes anybody may call; the sign-in POST checks credentials itself."""
PARAMETERS = {"robot": "bot", "request_id": "1", "name": "pnl-bot.html", "action": "run"}


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PARAMETERS[m.group(1)], path)


def test_every_route_refuses_an_unauthenticated_request(tmp_path: Path) -> None:
    home = web_home(tmp_path / "home", f"sqlite:///{tmp_path / 'robohost.db'}", replay=False)
    (home / "reports" / "pnl-bot.html").write_text("<html></html>")
    with web_app(home) as w:
        client = w.client()
        checked: list[tuple[str, str]] = []
        for route in iter_route_contexts(w.web.routes):
            if isinstance(getattr(route, "original_route", route), Mount):
                assert route.path == "/static", f"an unexpected mount {route.path}"
                continue
            assert route.methods, f"a route without methods: {route.path}"
            for method in sorted(set(route.methods) - {"HEAD"}):
                if (method, route.path) in OPEN:
                    continue
                path = _concrete(route.path)
                for attempt in (
                    {},
                    {"Cookie": "__Host-robohost-session=forged"},
                    {"Authorization": "Bearer rh_forged"},
                ):
                    answer = client.request(method, path, headers=attempt)
                    if path.startswith("/api/"):
                        assert answer.status_code == 401, (method, path, attempt, answer.status_code)
                        assert answer.headers["www-authenticate"] == "Bearer"
                    else:
                        assert answer.status_code == 303, (method, path, attempt, answer.status_code)
                        assert answer.headers["location"].startswith("/login"), (method, path)
                checked.append((method, route.path))
        assert len(checked) >= 30, checked
        assert {("POST", "/api/v1/robots/{robot}/run"), ("GET", "/api/v1/openapi.json"), ("GET", "/")} <= set(checked)

        # What is open shows nothing about the robot.
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/login").status_code == 200
        assert client.get("/static/dashboard.js").status_code == 200
        assert client.get("/static/plotly.min.js").status_code == 200
        assert client.get("/static/../robohost.toml").status_code == 404
        assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404
