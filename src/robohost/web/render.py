"""Server-rendered pages: the Jinja2 environment (autoescaped), its filters, and ``render``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from robohost.services.auth import Principal

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")


def fmt_ts(ns: int | None) -> str:
    """ns since the epoch as ``YYYY-MM-DD HH:MM:SS`` UTC ('' for None)."""
    if ns is None:
        return ""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_money(value: float | Decimal | None, places: int = 2) -> str:
    """A money amount with thousands separators ('—' for None)."""
    if value is None:
        return "—"
    return f"{float(value):,.{places}f}"


def fmt_num(value: float | Decimal | None) -> str:
    """A quantity or price, without needless zeros."""
    if value is None:
        return ""
    number = float(value)
    return f"{number:,.0f}" if number == int(number) and abs(number) < 1e15 else f"{number:,.4f}".rstrip("0")


def fmt_pct(value: float | None) -> str:
    """A fraction as a percentage ('—' for None)."""
    return "—" if value is None else f"{value * 100:.2f} %"


def fmt_bytes(value: int | None) -> str:
    """A size in B, KiB, MiB, GiB."""
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TiB"


def sign_class(value: float | Decimal | None) -> str:
    """``pos``, ``neg`` or '' for colouring a P&L."""
    if value is None or float(value) == 0:
        return ""
    return "pos" if float(value) > 0 else "neg"


def make_templates() -> Jinja2Templates:
    """The templates with robohost's filters."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.filters.update(ts=fmt_ts, money=fmt_money, num=fmt_num, pct=fmt_pct, bytes=fmt_bytes, sign=sign_class)
    env.globals["now"] = lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return templates


def render(
    request: Request, name: str, principal: Principal | None, status_code: int = 200, **values: Any
) -> HTMLResponse:
    """Render a page with the common values (the user, the CSRF token, the robots, the refresh interval)."""
    ctx = request.app.state.ctx
    templates: Jinja2Templates = request.app.state.templates
    robots = ctx.dashboard.robot_names()
    robot = values.pop("robot", None) or (robots[0] if robots else None)
    context = {
        "principal": principal,
        "csrf_token": principal.csrf_token if principal else None,
        "robots": robots,
        "robot": robot,
        "refresh_s": ctx.config.refresh_s,
        "version": ctx.version,
        "page": name.removesuffix(".html"),
        **values,
    }
    return templates.TemplateResponse(request, name, context, status_code=status_code)
