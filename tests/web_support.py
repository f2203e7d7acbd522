"""Test harness for the dashboard: a robot home with a finished replay, the app over it, signing in.

``web_home`` makes a home (synthetic minute bars, the SMA robot in manual mode on a 24/7 calendar, the
database at the given URL) and runs one replay so that every table has rows. ``WebApp`` opens it, builds the
FastAPI app exactly as ``robohost serve`` does (``App.web_context`` and ``create_app``) with a clock the
test can move, and adds a user. ``sign_in`` goes through the real sign-in form.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from robohost.adapters.feeds.synthetic import write_synthetic
from robohost.bootstrap import App, open_app
from robohost.web.app import create_app
from robohost.web.context import WebContext

ROBOT = "bot"
USER = "alice"
PASSWORD = "correct horse battery staple"
BASE = "https://testserver"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""argon2id with small costs: the tests sign in dozens of times (the service's defaults are tested apart)."""
CONFIG = """
[database]
url = "{db_url}"

[serve]
tick_s = 0.2

[robots.bot]
strategy = "robohost.examples.sma_cross:SmaCross"
timezone = "UTC"
commit_every = 500
params = {{ fast = 3, slow = 8, qty = 10 }}

[robots.bot.data]
path = ["data/bars.parquet"]
speed = "{speed}"

[robots.bot.schedule]
mode = "manual"
calendar = "24/7"

[robots.bot.schedule.jobs]
backup = "off"
verify = "off"
report = "off"
health = "*/5 * * * *"

[web]
{web}
"""


def web_home(
    folder: Path, db_url: str, *, bars: int = 3000, speed: str = "max", web: str = "", replay: bool = True
) -> Path:
    """A robot home at ``folder`` on ``db_url``; with ``replay``, one finished run of the robot."""
    (folder / "data").mkdir(parents=True)
    (folder / "reports").mkdir()
    (folder / "logs").mkdir()
    write_synthetic(folder / "data" / "bars.parquet", bars, symbol="SYN", seed=5)
    (folder / "robohost.toml").write_text(CONFIG.format(db_url=db_url, speed=speed, web=web))
    if replay:
        app = open_app(folder)
        try:
            app.paper(ROBOT).run()
        finally:
            app.close()
    return folder


@dataclass
class WebApp:
    """The dashboard app over a home, its context, and the fake clock its requests see (ns)."""

    app: App
    ctx: WebContext
    web: FastAPI
    now: list[int]

    def client(self) -> TestClient:
        """A browser-like client over HTTPS (cookies kept, redirects not followed)."""
        return TestClient(self.web, base_url=BASE, follow_redirects=False)

    def advance(self, seconds: float) -> None:
        """Move the clock the app sees."""
        self.now[0] += int(seconds * 1e9)


@contextmanager
def web_app(home: Path, user: bool = True, **totp: Any) -> Iterator[WebApp]:
    """The app over ``home`` (with the user ``alice`` unless ``user`` is false); closes it afterwards."""
    app = open_app(home)
    try:
        ctx = app.web_context()
        now = [time.time_ns()]
        ctx.clock = lambda: now[0]
        ctx.auth.hasher = FAST_HASHER
        if user:
            ctx.auth.add_user(USER, PASSWORD, now[0], **totp)
        yield WebApp(app, ctx, create_app(ctx), now)
    finally:
        app.close()


_LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def sign_in(client: TestClient, user: str = USER, password: str = PASSWORD, code: str = "") -> Any:
    """Fill in the sign-in form like a browser; return the response to the form's POST."""
    page = client.get("/login")
    token = _LOGIN_CSRF.search(page.text)
    assert token is not None, page.text[:500]
    form = {"username": user, "password": password, "code": code, "login_csrf": token.group(1), "next": "/"}
    return client.post("/login", data=form)


def csrf_of(client: TestClient, path: str = "/") -> str:
    """The CSRF token of the signed-in session, as the page carries it."""
    page = client.get(path)
    assert page.status_code == 200, (page.status_code, page.headers.get("location"))
    found = _CSRF.search(page.text)
    assert found is not None
    return found.group(1)
