"""The dashboard's people: users, recovery codes, browser sessions, API tokens and failed sign-ins.

Only hashes of secrets are stored: argon2 for passwords (made by ``robohost.services.auth``), SHA-256 for
the session ids, API tokens and recovery codes (random, high-entropy values, so a fast hash is enough).
This module hashes nothing itself: callers pass the hashes. Times are ns since the epoch, UTC.
Must not import ``robohost.config``, ``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from robohost.adapters.db.tables import api_tokens, login_failures, recovery_codes, users, web_sessions


@dataclass(frozen=True, slots=True)
class UserRow:
    """A user as stored."""

    id: int
    name: str
    password_hash: str
    totp_secret: str | None
    totp_last_step: int | None
    created_at: int
    last_login_at: int | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A signed-in browser: whose, its CSRF token and its times (the id itself is never stored)."""

    id_hash: str
    user_id: int
    user_name: str
    csrf_token: str
    created_at: int
    last_seen_at: int
    expires_at: int
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class TokenRow:
    """An API token: whose, its label and scope (the token itself is never stored)."""

    id: int
    user_id: int
    user_name: str
    label: str
    scope: str
    created_at: int
    last_used_at: int | None


class UserExistsError(Exception):
    """A user of that name exists already."""


class AuthStore:
    """Reads and writes ``users``, ``recovery_codes``, ``web_sessions``, ``api_tokens`` and ``login_failures``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- users --------------------------------------------------------------------------------------------------

    def add_user(self, name: str, password_hash: str, totp_secret: str | None, now: int) -> int:
        """Insert a user; ``UserExistsError`` when the name is taken."""
        values = {"name": name, "password_hash": password_hash, "totp_secret": totp_secret, "created_at": now}
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(sa.insert(users).values(**values).returning(users.c.id)).scalar_one())
        except IntegrityError:
            raise UserExistsError(name) from None

    def user(self, name: str) -> UserRow | None:
        """The user named ``name``."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        return None if row is None else UserRow(**row._mapping)

    def users(self) -> list[UserRow]:
        """Every user, by name."""
        with self.engine.connect() as conn:
            return [UserRow(**row._mapping) for row in conn.execute(sa.select(users).order_by(users.c.name))]

    def count_users(self) -> int:
        """How many users exist."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    def remove_user(self, user_id: int) -> None:
        """Delete a user with their sessions, tokens and recovery codes."""
        with self.engine.begin() as conn:
            for table in (web_sessions, api_tokens, recovery_codes):
                conn.execute(sa.delete(table).where(table.c.user_id == user_id))
            conn.execute(sa.delete(users).where(users.c.id == user_id))

    def update_user(self, user_id: int, **values: Any) -> None:
        """Change columns of a user (password hash, TOTP secret, last sign-in)."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(users).where(users.c.id == user_id).values(**values))

    def use_totp_step(self, user_id: int, step: int) -> bool:
        """Record TOTP time step ``step`` as used; False when it (or a later one) was used already (a replay)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(users)
                .where(
                    users.c.id == user_id,
                    sa.or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
                )
                .values(totp_last_step=step)
            )
        return done.rowcount == 1

    # -- recovery codes -----------------------------------------------------------------------------------------

    def set_recovery_codes(self, user_id: int, code_hashes: Iterable[str]) -> None:
        """Replace a user's recovery codes."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
            rows = [{"user_id": user_id, "code_hash": h} for h in code_hashes]
            if rows:
                conn.execute(sa.insert(recovery_codes), rows)

    def use_recovery_code(self, user_id: int, code_hash: str, now: int) -> bool:
        """Spend an unused recovery code; False when there is none with that hash."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(recovery_codes)
                .where(
                    recovery_codes.c.user_id == user_id,
                    recovery_codes.c.code_hash == code_hash,
                    recovery_codes.c.used_at.is_(None),
                )
                .values(used_at=now)
            )
        return done.rowcount == 1

    def unused_recovery_codes(self, user_id: int) -> int:
        """How many recovery codes the user has left."""
        c = recovery_codes.c
        query = sa.select(sa.func.count()).where(c.user_id == user_id, c.used_at.is_(None))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- sessions -----------------------------------------------------------------------------------------------

    def add_session(
        self, id_hash: str, user_id: int, csrf_token: str, now: int, expires_at: int, ip: str | None, agent: str | None
    ) -> None:
        """Record a new signed-in browser."""
        values = {
            "id_hash": id_hash,
            "user_id": user_id,
            "csrf_token": csrf_token,
            "created_at": now,
            "last_seen_at": now,
            "expires_at": expires_at,
            "ip": ip,
            "user_agent": (agent or "")[:300] or None,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.insert(web_sessions).values(**values))

    def session(self, id_hash: str) -> SessionRow | None:
        """The session with that hash, with its user's name."""
        query = (
            sa.select(web_sessions, users.c.name.label("user_name"))
            .join(users, users.c.id == web_sessions.c.user_id)
            .where(web_sessions.c.id_hash == id_hash)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else SessionRow(**row._mapping)

    def sessions(self, user_id: int) -> list[SessionRow]:
        """A user's sessions, newest first."""
        query = (
            sa.select(web_sessions, users.c.name.label("user_name"))
            .join(users, users.c.id == web_sessions.c.user_id)
            .where(web_sessions.c.user_id == user_id)
            .order_by(web_sessions.c.created_at.desc())
        )
        with self.engine.connect() as conn:
            return [SessionRow(**row._mapping) for row in conn.execute(query)]

    def touch_session(self, id_hash: str, now: int) -> None:
        """Record that the session was used at ``now`` (its idle expiry counts from here)."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(web_sessions).where(web_sessions.c.id_hash == id_hash).values(last_seen_at=now))

    def delete_session(self, id_hash: str) -> None:
        """End one session."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(web_sessions).where(web_sessions.c.id_hash == id_hash))

    def delete_sessions(self, user_id: int) -> int:
        """End every session of a user; return how many there were."""
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(web_sessions).where(web_sessions.c.user_id == user_id)).rowcount)

    def delete_expired_sessions(self, idle_before: int, now: int) -> int:
        """Forget sessions idle since before ``idle_before`` or past their absolute expiry."""
        c = web_sessions.c
        with self.engine.begin() as conn:
            gone = conn.execute(
                sa.delete(web_sessions).where(sa.or_(c.last_seen_at < idle_before, c.expires_at <= now))
            )
        return int(gone.rowcount)

    # -- API tokens ---------------------------------------------------------------------------------------------

    def add_token(self, user_id: int, label: str, token_hash: str, scope: str, now: int) -> int:
        """Record a new API token; returns its id."""
        values = {"user_id": user_id, "label": label, "token_hash": token_hash, "scope": scope, "created_at": now}
        with self.engine.begin() as conn:
            return int(conn.execute(sa.insert(api_tokens).values(**values).returning(api_tokens.c.id)).scalar_one())

    def token(self, token_hash: str) -> TokenRow | None:
        """The token with that hash, with its user's name."""
        rows = self._tokens(api_tokens.c.token_hash == token_hash)
        return rows[0] if rows else None

    def tokens(self, user_id: int | None = None) -> list[TokenRow]:
        """The tokens of one user or of all, oldest first."""
        return self._tokens(api_tokens.c.user_id == user_id if user_id is not None else sa.true())

    def touch_token(self, token_id: int, now: int) -> None:
        """Record that the token was used at ``now``."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))

    def delete_token(self, token_id: int) -> bool:
        """Revoke a token; False when there was none with that id."""
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(api_tokens).where(api_tokens.c.id == token_id)).rowcount == 1

    def delete_tokens(self, user_id: int) -> int:
        """Revoke every token of a user; return how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(api_tokens).where(api_tokens.c.user_id == user_id)).rowcount)

    def _tokens(self, where: sa.ColumnElement[bool]) -> list[TokenRow]:
        c = api_tokens.c
        query = (
            sa.select(c.id, c.user_id, users.c.name.label("user_name"), c.label, c.scope, c.created_at, c.last_used_at)
            .join(users, users.c.id == c.user_id)
            .where(where)
            .order_by(c.id)
        )
        with self.engine.connect() as conn:
            return [TokenRow(**row._mapping) for row in conn.execute(query)]

    # -- failed sign-ins ----------------------------------------------------------------------------------------

    def add_failure(self, user_name: str, ip: str, reason: str, now: int) -> None:
        """Record a failed sign-in."""
        values = {"ts": now, "user_name": user_name[:200], "ip": ip[:100], "reason": reason}
        with self.engine.begin() as conn:
            conn.execute(sa.insert(login_failures).values(**values))

    def failures(
        self, *, since: int, user_name: str | None = None, ip: str | None = None, reasons: Sequence[str] = ()
    ) -> list[int]:
        """The times of failures since ``since`` for an account or an address, oldest first."""
        c = login_failures.c
        query = sa.select(c.ts).where(c.ts >= since).order_by(c.ts)
        if user_name is not None:
            query = query.where(c.user_name == user_name[:200])
        if ip is not None:
            query = query.where(c.ip == ip[:100])
        if reasons:
            query = query.where(c.reason.in_(list(reasons)))
        with self.engine.connect() as conn:
            return [int(ts) for ts in conn.execute(query.limit(10_000)).scalars()]

    def clear_failures(self, user_name: str) -> int:
        """Forget an account's failed sign-ins (``robohost user unlock``); return how many."""
        with self.engine.begin() as conn:
            gone = conn.execute(sa.delete(login_failures).where(login_failures.c.user_name == user_name[:200]))
        return int(gone.rowcount)

    def prune_failures(self, before: int) -> int:
        """Forget failures older than ``before``."""
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(login_failures).where(login_failures.c.ts < before)).rowcount)
