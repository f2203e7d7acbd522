"""Render a report ``Document`` as one self-contained HTML file: inline CSS, charts as base64 data URIs.

The template (``templates/pnl.html``, package data) references nothing outside the file, so the report
opens offline and can be mailed as it is. Must not import ``robohost.cli`` or ``robohost.bootstrap``.
"""

from __future__ import annotations

import base64

from jinja2 import Environment, PackageLoader, select_autoescape

from robohost.services.reports.document import Document

TEMPLATE = "pnl.html"


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("robohost.services.reports", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["data_uri"] = data_uri
    return env


def render_html(doc: Document) -> str:
    """The report as an HTML page."""
    return _environment().get_template(TEMPLATE).render(doc=doc)
