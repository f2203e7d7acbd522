"""Who may use the dashboard and the API, and how they prove it.

- Passwords: argon2id (argon2-cffi's defaults, RFC 9106's second recommendation), rehashed on sign-in when
  the parameters change. At least 12 characters; never logged, never stored.
- Second factor (optional): TOTP (RFC 6238, pyotp), a code accepted once (its time step is remembered),
  one step of clock drift either way; ten single-use recovery codes, stored as SHA-256.
- Sessions: a random id in a cookie, only its SHA-256 in the database, with a CSRF token, idle and absolute
  expiry. A new id at every sign-in (no fixation). "Sign out everywhere" deletes them all.
- API tokens: ``rh_`` + 256 random bits, SHA-256 at rest, scope ``read`` or ``operate``, shown once.
- Failed sign-ins are refused for a growing delay (``delay``, doubled after each failure) and lock the
  account (``account_limit`` failures) or the address (``ip_limit``) for ``lockout``; the policy is pure
  (``LockoutPolicy.wait``, given the failures and ``now``). Each failure is logged as one line for fail2ban:
  ``robohost-auth: login failed user=NAME ip=ADDRESS reason=bad-password|locked|unknown-user|bad-totp``.

Nothing here reads the clock: every call takes ``now`` (ns since the epoch, UTC).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from robohost.adapters.db.audit import AuditLog
from robohost.adapters.db.auth import AuthStore, SessionRow, TokenRow, UserExistsError, UserRow
from robohost.errors import ConfigError, StateError

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
SCOPES = ("read", "operate")
TOKEN_PREFIX = "rh_"
RECOVERY_CODES = 10
ISSUER = "robohost"
FAILURE_REASONS = ("bad-password", "locked", "unknown-user", "bad-totp")
COUNTED_FAILURES = ("bad-password", "unknown-user", "bad-totp")
"""Failures the lock-out counts (a refused attempt while locked is logged, not counted again)."""
SECOND = 1_000_000_000
ROW_CACHE = SECOND
"""How long a session or token row read from the database is trusted without reading it again (ns)."""
_LOG_SAFE = re.compile(r"[^A-Za-z0-9._@:-]")
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def log_safe(text: str) -> str:
    """``text`` fit for a one-line, space-separated log record: other characters become '?'; 64 at most."""
    return _LOG_SAFE.sub("?", text)[:64] or "-"


def sha256_hex(text: str) -> str:
    """The SHA-256 of ``text`` (UTF-8) as hex: how session ids, tokens and recovery codes are stored."""
    return hashlib.sha256(text.encode()).hexdigest()


def check_user_name(name: str) -> str:
    """A user name: letters, digits, '.', '_', '@', '-' (at most 64), starting with a letter or digit."""
    if not USER_NAME.match(name):
        raise ConfigError(
            f"user name {log_safe(name)!r}: use letters, digits, '.', '_', '@' and '-' (at most 64), "
            "starting with a letter or digit"
        )
    return name


def check_password(name: str, password: str) -> None:
    """Refuse a weak password (too short, too long, or the user's name)."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ConfigError(f"the password is too long: at most {MAX_PASSWORD} characters")
    if password.strip().lower() == name.lower():
        raise ConfigError("the password must not be the user's name")


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """How failed sign-ins slow down and lock out an account or an address (times in ns)."""

    account_limit: int = 5
    ip_limit: int = 20
    lockout: int = 15 * 60 * SECOND
    delay: int = SECOND
    max_delay: int = 60 * SECOND

    def wait(self, failures: Sequence[int], limit: int, now: int) -> tuple[int, bool]:
        """How long (ns) a new attempt must wait after these failures (times, oldest first), and whether
        that is a lock-out (``limit`` failures within ``lockout``) rather than the growing delay."""
        recent = [ts for ts in failures if ts > now - self.lockout]
        if not recent:
            return 0, False
        count, last = len(recent), recent[-1]
        if count >= limit:
            return max(0, last + self.lockout - now), True
        delay = min(self.delay * 2 ** min(count - 1, 40), self.max_delay, self.lockout)
        return max(0, last + delay - now), False


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a session lives (ns): ``idle`` without a request, ``absolute`` after sign-in at most."""

    idle: int = 30 * 60 * SECOND
    absolute: int = 12 * 3600 * SECOND

    @property
    def touch_every(self) -> int:
        """Write ``last_seen_at`` at most this often (a fraction of ``idle``, at most a minute)."""
        return min(60 * SECOND, self.idle // 4)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request and what they may do: ``operate`` (run, stop, resume) or only ``read``."""

    user_id: int
    user: str
    method: str  # "session" or "token"
    scope: str
    csrf_token: str | None = None
    session_hash: str | None = None
    token_id: int | None = None

    @property
    def can_operate(self) -> bool:
        """Whether this principal may change things."""
        return self.scope == "operate"


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A sign-in: the new session (id for the cookie, CSRF token) or why not, and when to try again."""

    ok: bool
    reason: str | None = None
    session_id: str | None = None
    principal: Principal | None = None
    retry_after_s: float = 0.0
    note: str | None = None


@dataclass(frozen=True, slots=True)
class SecondFactor:
    """A fresh TOTP enrolment: the secret, its ``otpauth://`` URI for an authenticator app, recovery codes."""

    secret: str
    uri: str
    recovery_codes: list[str]


def totp_step(now: int) -> int:
    """The TOTP time step (30 s) of ``now``."""
    return now // (30 * SECOND)


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """``count`` codes like ``k7m2p-9xq4r`` (about 49 random bits each)."""
    pick = _RECOVERY_ALPHABET
    return ["-".join("".join(secrets.choice(pick) for _ in range(5)) for _ in range(2)) for _ in range(count)]


def normalise_code(code: str) -> str:
    """A code as typed, without spaces or dashes, lower case."""
    return re.sub(r"[\s-]", "", code).lower()


class AuthService:
    """Users, sign-in, sessions and tokens (see the module docstring for the rules)."""

    def __init__(
        self,
        store: AuthStore,
        audit: AuditLog,
        log: logging.Logger,
        lockout: LockoutPolicy | None = None,
        sessions: SessionPolicy | None = None,
        hasher: PasswordHasher | None = None,
        defer: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        """``defer(job)`` runs the bookkeeping writes of a request (a session's or token's last use) later, on
        another thread: a request never waits for the database's write lock (default: at once)."""
        self.store = store
        self.audit = audit
        self.log = log
        self.lockout = lockout or LockoutPolicy()
        self.session_policy = sessions or SessionPolicy()
        self.hasher = hasher or PasswordHasher()
        self._dummy: tuple[PasswordHasher, str] | None = None
        self._rows: dict[str, tuple[int, SessionRow | TokenRow]] = {}
        self.defer = defer or (lambda job: job())

    # -- people ---------------------------------------------------------------------------------------------------

    def add_user(
        self, name: str, password: str, now: int, *, totp: bool = False, actor: str = "cli"
    ) -> SecondFactor | None:
        """Create a user (and a TOTP enrolment when asked); ``StateError`` when the name is taken."""
        check_user_name(name)
        check_password(name, password)
        secret = pyotp.random_base32() if totp else None
        try:
            user_id = self.store.add_user(name, self.hasher.hash(password), secret, now)
        except UserExistsError:
            raise StateError(f"a user named {name!r} exists already") from None
        self.audit.record("user_add", "ok", now, actor=actor, detail=f"user {name}" + (" with TOTP" if totp else ""))
        return self._enrol(user_id, name, secret) if secret else None

    def set_totp(self, name: str, enabled: bool, now: int, actor: str = "cli") -> SecondFactor | None:
        """Enrol the user in TOTP afresh (new secret, new recovery codes), or switch it off."""
        user = self.user(name)
        secret = pyotp.random_base32() if enabled else None
        self.store.update_user(user.id, totp_secret=secret, totp_last_step=None)
        self.store.set_recovery_codes(user.id, [])
        self.audit.record("user_totp", "on" if enabled else "off", now, actor=actor, detail=f"user {name}")
        return self._enrol(user.id, name, secret) if secret else None

    def _enrol(self, user_id: int, name: str, secret: str) -> SecondFactor:
        codes = new_recovery_codes()
        self.store.set_recovery_codes(user_id, [sha256_hex(normalise_code(c)) for c in codes])
        uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
        return SecondFactor(secret, uri, codes)

    def set_password(self, name: str, password: str, now: int, actor: str = "cli") -> int:
        """Change a user's password and end their sessions; returns how many sessions ended."""
        user = self.user(name)
        check_password(name, password)
        self.store.update_user(user.id, password_hash=self.hasher.hash(password))
        ended = self.store.delete_sessions(user.id)
        self.forget_cached()
        self.audit.record("user_password", "ok", now, actor=actor, detail=f"user {name}; {ended} sessions ended")
        return ended

    def user(self, name: str) -> UserRow:
        """The user named ``name``; ``StateError`` when there is none."""
        user = self.store.user(name)
        if user is None:
            raise StateError(f"no user named {log_safe(name)!r} (robohost user list shows them)")
        return user

    def users(self) -> list[UserRow]:
        """Every user."""
        return self.store.users()

    def has_users(self) -> bool:
        """Whether anybody can sign in at all."""
        return self.store.count_users() > 0

    def remove_user(self, name: str, now: int, actor: str = "cli") -> None:
        """Delete a user with their sessions and tokens."""
        user = self.user(name)
        self.store.remove_user(user.id)
        self.forget_cached()
        self.audit.record("user_remove", "ok", now, actor=actor, detail=f"user {name}")

    def unlock(self, name: str, now: int, actor: str = "cli") -> int:
        """Forget an account's failed sign-ins, ending a lock-out; returns how many were forgotten."""
        cleared = self.store.clear_failures(name)
        self.audit.record("user_unlock", "ok", now, actor=actor, detail=f"user {name}; {cleared} failures cleared")
        return cleared

    def signout_all(self, name: str, now: int, *, actor: str, ip: str | None = None, tokens: bool = False) -> int:
        """End every session of the user (and revoke their tokens when asked); returns the sessions ended."""
        user = self.user(name)
        ended = self.store.delete_sessions(user.id)
        revoked = self.store.delete_tokens(user.id) if tokens else 0
        self.forget_cached()
        detail = f"user {name}; {ended} sessions ended" + (f", {revoked} tokens revoked" if tokens else "")
        self.audit.record("signout_all", "ok", now, actor=actor, ip=ip, detail=detail)
        return ended

    # -- tokens ---------------------------------------------------------------------------------------------------

    def add_token(self, name: str, scope: str, label: str, now: int, actor: str = "cli") -> tuple[int, str]:
        """Make an API token for the user; returns its id and the token (shown once, stored as a hash)."""
        if scope not in SCOPES:
            raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        user = self.user(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = self.store.add_token(user.id, label[:100] or "token", sha256_hex(token), scope, now)
        self.audit.record("token_add", "ok", now, actor=actor, detail=f"token {token_id} ({scope}) for user {name}")
        return token_id, token

    def tokens(self, name: str | None = None) -> list[TokenRow]:
        """The tokens of one user or of all."""
        return self.store.tokens(self.user(name).id if name else None)

    def remove_token(self, token_id: int, now: int, actor: str = "cli") -> None:
        """Revoke a token; ``StateError`` when there is none with that id."""
        if not self.store.delete_token(token_id):
            raise StateError(f"no API token with id {token_id} (robohost user token list shows them)")
        self.forget_cached()
        self.audit.record("token_remove", "ok", now, actor=actor, detail=f"token {token_id}")

    def token(self, presented: str, now: int) -> Principal | None:
        """The principal of a bearer token, or None."""
        if not presented.startswith(TOKEN_PREFIX) or len(presented) > 200:
            return None
        token_hash = sha256_hex(presented)
        row = self._cached("t" + token_hash, lambda: self.store.token(token_hash), now)
        if not isinstance(row, TokenRow):
            return None
        if row.last_used_at is None or now - row.last_used_at > self.session_policy.touch_every:
            self.defer(partial(self.store.touch_token, row.id, now))
            self._rows["t" + token_hash] = (now, replace(row, last_used_at=now))
        return Principal(row.user_id, row.user_name, "token", row.scope, token_id=row.id)

    # -- signing in and out -------------------------------------------------------------------------------------

    def login(self, name: str, password: str, code: str, ip: str, agent: str | None, now: int) -> LoginResult:
        """Check a sign-in; on success open a session. Every failure is recorded, logged and audited."""
        name = name.strip()[:200]
        user = self.store.user(name) if USER_NAME.match(name) else None
        since = now - self.lockout.lockout
        known_since = user.last_login_at if user is not None and user.last_login_at is not None else since
        account_since = max(since, known_since)  # an account's failures count from its last sign-in
        account = self.store.failures(since=account_since, user_name=name, reasons=COUNTED_FAILURES)
        by_ip = self.store.failures(since=since, ip=ip, reasons=COUNTED_FAILURES)
        wait_account, locked_account = self.lockout.wait(account, self.lockout.account_limit, now)
        wait_ip, locked_ip = self.lockout.wait(by_ip, self.lockout.ip_limit, now)
        wait = max(wait_account, wait_ip)
        if wait > 0:
            why = "account locked" if locked_account else "address locked" if locked_ip else "too soon after a failure"
            return self._failed(name, ip, "locked", now, retry_after=wait, note=why)
        if user is None or len(password) > MAX_PASSWORD:
            self._verify(self._dummy_hash(), password[:MAX_PASSWORD])  # as slow as for a known user
            return self._failed(name, ip, "unknown-user" if user is None else "bad-password", now)
        if not self._verify(user.password_hash, password):
            return self._failed(name, ip, "bad-password", now)
        note = None
        if user.totp_secret is not None:
            note = self._second_factor(user, code, now)
            if note is None:
                return self._failed(name, ip, "bad-totp", now)
        if self.hasher.check_needs_rehash(user.password_hash):
            self.store.update_user(user.id, password_hash=self.hasher.hash(password))
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        id_hash = sha256_hex(session_id)
        self.store.add_session(id_hash, user.id, csrf, now, now + self.session_policy.absolute, ip, agent)
        self.store.update_user(user.id, last_login_at=now)
        self.audit.record("login", "ok", now, actor=user.name, ip=ip, detail=note)
        self.log.info("robohost-auth: login ok user=%s ip=%s", log_safe(user.name), log_safe(ip))
        principal = Principal(user.id, user.name, "session", "operate", csrf, id_hash)
        return LoginResult(True, session_id=session_id, principal=principal, note=note)

    def _dummy_hash(self) -> str:
        """A hash of a random password, made with the current hasher: unknown users cost as much as known ones."""
        if self._dummy is None or self._dummy[0] is not self.hasher:
            self._dummy = (self.hasher, self.hasher.hash(secrets.token_urlsafe(16)))
        return self._dummy[1]

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _second_factor(self, user: UserRow, code: str, now: int) -> str | None:
        """A note when ``code`` is a valid TOTP code or an unused recovery code; None otherwise."""
        assert user.totp_secret is not None
        typed = normalise_code(code)[:64]
        if typed.isdigit() and len(typed) == 6:
            totp = pyotp.TOTP(user.totp_secret)
            for step in (totp_step(now) + drift for drift in (0, -1, 1)):
                if hmac.compare_digest(totp.generate_otp(step), typed):
                    return "totp" if self.store.use_totp_step(user.id, step) else None
            return None
        if typed and self.store.use_recovery_code(user.id, sha256_hex(typed), now):
            left = self.store.unused_recovery_codes(user.id)
            self.log.warning("robohost-auth: recovery code used user=%s left=%d", log_safe(user.name), left)
            return f"recovery code used ({left} left)"
        return None

    def _failed(
        self, name: str, ip: str, reason: str, now: int, retry_after: int = 0, note: str | None = None
    ) -> LoginResult:
        self.store.add_failure(name, ip, reason, now)
        self.log.warning("robohost-auth: login failed user=%s ip=%s reason=%s", log_safe(name), log_safe(ip), reason)
        self.audit.record("login", f"failed: {reason}", now, actor=log_safe(name), ip=ip, detail=note)
        return LoginResult(False, reason=reason, retry_after_s=retry_after / SECOND, note=note)

    def session(self, session_id: str, now: int) -> Principal | None:
        """The principal of a session cookie, or None when it is unknown or expired (then it is deleted)."""
        if not session_id or len(session_id) > 200:
            return None
        id_hash = sha256_hex(session_id)
        row = self._cached("s" + id_hash, lambda: self.store.session(id_hash), now)
        if not isinstance(row, SessionRow):
            return None
        if now >= row.expires_at or now - row.last_seen_at > self.session_policy.idle:
            self.store.delete_session(id_hash)
            self._rows.pop("s" + id_hash, None)
            return None
        if now - row.last_seen_at > self.session_policy.touch_every:
            self.defer(partial(self.store.touch_session, id_hash, now))
            self._rows["s" + id_hash] = (now, replace(row, last_seen_at=now))
        return Principal(row.user_id, row.user_name, "session", "operate", row.csrf_token, id_hash)

    def _cached(self, key: str, load: Callable[[], SessionRow | TokenRow | None], now: int) -> object:
        """A session or token row, read from the database at most once per ``ROW_CACHE`` (ns of ``now``).

        Every request needs one; under load most are served from here. What this process changes (sign-out,
        revoked tokens, removed users) forgets the cache at once; a change made by another process (``robohost
        user`` on the command line) counts within ``ROW_CACHE``.
        """
        hit = self._rows.get(key)
        if hit is not None and 0 <= now - hit[0] < ROW_CACHE:
            return hit[1]
        row = load()
        if row is None:
            self._rows.pop(key, None)
            return None
        if len(self._rows) > 10_000:
            self._rows.clear()
        self._rows[key] = (now, row)
        return row

    def forget_cached(self) -> None:
        """Forget every cached session and token row (after sign-outs, revocations, removals)."""
        self._rows.clear()

    def logout(self, principal: Principal, now: int, ip: str | None = None) -> None:
        """End the principal's session."""
        if principal.session_hash is not None:
            self.store.delete_session(principal.session_hash)
            self.forget_cached()
        self.audit.record("logout", "ok", now, actor=principal.user, ip=ip)

    def sessions_of(self, principal: Principal) -> list[dict[str, object]]:
        """The principal's user's sessions, for the account page (no ids, which are not stored anyway)."""
        return [
            {
                "created_at": _iso(row.created_at),
                "last_seen_at": _iso(row.last_seen_at),
                "expires_at": _iso(row.expires_at),
                "ip": row.ip,
                "user_agent": row.user_agent,
                "current": row.id_hash == principal.session_hash,
            }
            for row in self.store.sessions(principal.user_id)
        ]

    def prune(self, now: int) -> None:
        """Forget expired sessions and failures older than the lock-out window."""
        self.store.delete_expired_sessions(now - self.session_policy.idle, now)
        self.store.prune_failures(now - max(self.lockout.lockout, 24 * 3600 * SECOND))


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / SECOND, tz=UTC).isoformat().replace("+00:00", "Z")
