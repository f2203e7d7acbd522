"""Webhook alerts: an HTTP POST shaped for a generic JSON receiver, Telegram, Slack or ntfy.

- ``json``: the message as JSON (``state``, ``kind``, ``level``, ``title``, ``message``, ``time``, ``host``,
  ``key``, ``robot``, ``count``, ``details``); ``Authorization: Bearer TOKEN`` when a token is set.
- ``telegram``: ``POST {api}/bot{TOKEN}/sendMessage`` with ``chat_id`` and ``text``.
- ``slack``: an incoming-webhook URL, ``{"text": ...}`` (mrkdwn).
- ``ntfy``: the topic URL, the text as the body, ``Title``, ``Priority`` (5 critical, 4 warning, 3 info)
  and ``Tags`` headers; ``Authorization: Bearer TOKEN`` when a token is set.

Errors name the channel and the HTTP status, never the URL (which may hold a token).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from robohost.adapters.alerts.message import Message

TELEGRAM_API = "https://api.telegram.org"
_NTFY_PRIORITY = {"critical": "5", "warning": "4", "info": "3"}
_NTFY_TAGS = {
    "alert": "rotating_light",
    "reminder": "hourglass",
    "recovery": "white_check_mark",
    "notification": "chart_with_upwards_trend",
}


class WebhookError(Exception):
    """A webhook did not accept the message."""


class WebhookChannel:
    """Posts each message to one endpoint."""

    def __init__(
        self,
        name: str,
        kind: str,
        url: str | None,
        *,
        token: str | None = None,
        chat_id: str | None = None,
        level: str = "warning",
        trading: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        if kind == "telegram" and not token:
            raise ValueError(f"telegram needs the bot token ([alerts.webhooks.{name}] token in secrets.toml)")
        if kind != "telegram" and not url:
            raise ValueError("url: missing (in robohost.toml, or in secrets.toml for a URL with a token)")
        self.name = name
        self.kind = kind
        self._url = url
        self._token = token
        self.chat_id = chat_id
        self.level = level
        self.trading = trading
        self.timeout_s = timeout_s

    def request(self, message: Message) -> urllib.request.Request:
        """The HTTP request that carries ``message``."""
        headers = {"User-Agent": "robohost"}
        body: bytes
        url = self._url or ""
        text = f"{message.title}\n{message.text}"
        if self.kind == "telegram":
            url = f"{(self._url or TELEGRAM_API).rstrip('/')}/bot{self._token}/sendMessage"
            body = _json({"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True})
            headers["Content-Type"] = "application/json"
        elif self.kind == "slack":
            body = _json({"text": f"*{message.title}*\n{message.text}"})
            headers["Content-Type"] = "application/json"
        elif self.kind == "ntfy":
            body = message.text.encode()
            headers.update(
                {
                    "Title": _latin1(message.title),
                    "Priority": _NTFY_PRIORITY.get(message.level, "3"),
                    "Tags": f"{_NTFY_TAGS[message.state]},{message.kind}",
                    "Content-Type": "text/plain; charset=utf-8",
                }
            )
        else:
            body = _json(message.as_dict())
            headers["Content-Type"] = "application/json"
        if self._token and self.kind in ("json", "ntfy"):
            headers["Authorization"] = f"Bearer {self._token}"
        return urllib.request.Request(url, data=body, headers=headers, method="POST")

    def send(self, message: Message) -> None:
        """POST the message; raise ``WebhookError`` unless the endpoint answers 2xx."""
        request = self.request(message)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise WebhookError(f"webhook {self.name} ({self.kind}) answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise WebhookError(f"webhook {self.name} ({self.kind}) unreachable: {reason}") from None
        if not 200 <= status < 300:
            raise WebhookError(f"webhook {self.name} ({self.kind}) answered HTTP {status}")


def _json(data: Any) -> bytes:
    return json.dumps(data, default=str).encode()


def _latin1(text: str) -> str:
    """HTTP header values are Latin-1: replace what it cannot carry."""
    return text.encode("latin-1", "replace").decode("latin-1")
