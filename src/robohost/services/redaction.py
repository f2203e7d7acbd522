"""Mask secrets in text meant for people's eyes (the dashboard's log viewer; the logging issue reuses it).

Two kinds of masking, both replacing the secret with ``***``:

- the literal values of the home's secrets (``secrets.toml`` and the environment: database passwords, feed
  API keys, SSH key passphrases), wherever they appear;
- patterns that look like secrets whatever their value: ``Bearer`` tokens, robohost API tokens (``rh_...``),
  passwords in URLs (``scheme://user:PASSWORD@host``), ``password=``/``secret=``/``token=``/``api_key=``-style
  pairs, age secret keys, and PEM private key blocks (a block spanning several lines is masked whole by
  ``redact_lines``).

Pure functions of their input; imports the config models only (to find the secrets' values).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MASK = "***"
MIN_SECRET = 4
"""Literal secrets shorter than this are not masked on their own (they would mask half of every line)."""

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S), MASK),
    (re.compile(r"(?i)\b(authorization\s*[=:]\s*)(?:(bearer|basic|token|digest)\s+)?[^\s,;]+"), r"\1\2 " + MASK),
    (re.compile(r"(?i)\b(bearer)\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    (re.compile(r"\brh_[A-Za-z0-9_-]{16,}"), "rh_" + MASK),
    (re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{20,}"), "AGE-SECRET-KEY-" + MASK),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1" + MASK + "@"),
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|passphrase|secret|secret[_-]?key|token|api[_-]?key|apikey|access[_-]?key"
            r"|private[_-]?key|key[_-]?id)(\"?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
        ),
        r"\1\2" + MASK,
    ),
)
_BEGIN_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_END_KEY = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")


class Redactor:
    """Masks the given literal secrets and the secret-looking patterns of the module docstring."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True)
        self._literal = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        """``text`` with every secret masked."""
        if self._literal is not None:
            text = self._literal.sub(MASK, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def lines(self, lines: Iterable[str]) -> Iterator[str]:
        """Redact line by line, masking whole the lines of a PEM private key block."""
        inside = False
        for line in lines:
            if inside:
                end = _END_KEY.search(line)
                inside = end is None
                yield MASK if end is None else MASK + self(line[end.end() :])
                continue
            begin = _BEGIN_KEY.search(line)
            if begin is not None and not _END_KEY.search(line, begin.end()):
                inside = True
                yield self(line[: begin.start()]) + MASK
                continue
            yield self(line)


def secret_values(model: Any) -> list[str]:
    """Every secret value in a config model (``SecretStr`` fields; passwords inside database URLs)."""
    found: list[str] = []
    if isinstance(model, SecretStr):
        found.append(model.get_secret_value())
        found += url_secret_parts(model.get_secret_value())
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            value = getattr(model, name)
            if name == "url" and isinstance(value, str):
                found += _url_password(value)
            else:
                found += secret_values(value)
    elif isinstance(model, dict):
        for value in model.values():
            found += secret_values(value)
    elif isinstance(model, list | tuple):
        for value in model:
            found += secret_values(value)
    return found


def _url_password(url: str) -> list[str]:
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return []
    return [str(password)] if password else []


_TOKENISH = re.compile(r"[A-Za-z0-9_:.~+=-]{8,}")
NOT_SECRET_ENV = frozenset({"ROBOHOST_HOME", "ROBOHOST_STRICT_TESTS", "ROBOHOST_BACKUP_SSH_KEY"})
"""``ROBOHOST_*`` variables that hold no secret (a folder, a switch, a key's path)."""


def url_secret_parts(value: str) -> list[str]:
    """The parts of a secret URL that are secrets on their own: its password, and the token-like pieces of
    its path and query (a webhook URL's token appears in logs without the rest of the URL)."""
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https", "ws", "wss"):
        return []
    found = [parts.password] if parts.password else []
    pieces = [p for p in parts.path.split("/") if p] + [v for _, v in parse_qsl(parts.query)]
    found += [p for p in pieces if _TOKENISH.fullmatch(p) and any(c.isdigit() for c in p)]
    return found


def environment_secrets(environ: Mapping[str, str]) -> list[str]:
    """Secret values of the ``ROBOHOST_*`` environment: a URL's password, any other variable's whole value."""
    found: list[str] = []
    for name, value in environ.items():
        if not name.startswith("ROBOHOST_") or name in NOT_SECRET_ENV or not value:
            continue
        if "://" in value:
            found += _url_password(value) + url_secret_parts(value)
        else:
            found.append(value)
    return found
