"""``robohost.services.auth``: the lock-out policy as pure logic, and the service on SQLite and PostgreSQL —
argon2id hashes, brute force slowed then locked out (per account and per address), the fail2ban line, TOTP,
tokens and sessions stored only as hashes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pyotp
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from robohost.adapters.db.audit import AuditLog
from robohost.adapters.db.auth import AuthStore
from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.migrate import upgrade
from robohost.errors import ConfigError, StateError
from robohost.services.auth import SECOND, AuthService, LockoutPolicy, SessionPolicy, log_safe

FAIL2BAN = re.compile(
    r"^robohost-auth: login failed user=(?P<user>\S+) ip=(?P<ip>\S+) "
    r"reason=(?P<reason>bad-password|locked|unknown-user|bad-totp)$"
)
"""What the hardening issue's fail2ban filter matches (``<HOST>`` is the ip group)."""
T0 = 1_800_000_000 * SECOND
PASSWORD = "a long enough password"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_the_delay_grows_with_each_failure_until_the_lock_out() -> None:
    policy = LockoutPolicy(account_limit=5, ip_limit=20, lockout=900 * SECOND, delay=SECOND, max_delay=60 * SECOND)
    assert policy.wait([], 5, T0) == (0, False)
    failures: list[int] = []
    waits = []
    now = T0
    for _ in range(4):
        failures.append(now)
        wait, locked = policy.wait(failures, 5, now)
        waits.append(wait // SECOND)
        assert not locked
        now += wait
    assert waits == [1, 2, 4, 8]
    assert policy.wait(failures, 5, now) == (0, False)  # waited long enough: the next attempt may go
    failures.append(now)
    wait, locked = policy.wait(failures, 5, now)
    assert locked and wait == 900 * SECOND
    assert policy.wait(failures, 5, now + 900 * SECOND) == (0, False)  # the lock-out ends
    old = [T0 - 901 * SECOND] * 50
    assert policy.wait(old, 5, T0) == (0, False)  # failures older than the window are forgotten
    assert policy.wait([T0] * 40, 100, T0)[0] == 60 * SECOND  # the delay is capped


def test_log_safe_keeps_one_token_per_field() -> None:
    assert log_safe("alice") == "alice"
    assert log_safe("eve ip=1.2.3.4\nreason=x") == "eve?ip?1.2.3.4?reason?x"
    assert log_safe("") == "-" and len(log_safe("x" * 500)) == 64


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _service(engine: sa.Engine, **policy: int) -> AuthService:
    lockout = LockoutPolicy(**({"account_limit": 3, "ip_limit": 5, "delay": 0} | policy))
    log = logging.getLogger("robohost.auth")
    return AuthService(AuthStore(engine), AuditLog(engine), log, lockout, SessionPolicy(), FAST)


def _lines(caplog: pytest.LogCaptureFixture) -> list[re.Match[str]]:
    failed = [r for r in caplog.records if r.name == "robohost.auth" and "login failed" in r.getMessage()]
    matches = [FAIL2BAN.match(r.getMessage()) for r in failed]
    assert all(matches), [r.getMessage() for r in failed]
    return [m for m in matches if m]


def test_brute_force_is_locked_out_and_logged_for_fail2ban(engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    auth = _service(engine)
    auth.add_user("alice", PASSWORD, T0)
    caplog.set_level(logging.INFO, "robohost.auth")
    for i in range(3):
        result = auth.login("alice", f"guess {i}", "", "203.0.113.9", "curl", T0 + i)
        assert not result.ok and result.reason == "bad-password"
    locked = auth.login("alice", PASSWORD, "", "198.51.100.1", "firefox", T0 + 10)  # even the right one, elsewhere
    assert not locked.ok and locked.reason == "locked" and 890 < locked.retry_after_s <= 900
    lines = _lines(caplog)
    assert [(m["user"], m["ip"], m["reason"]) for m in lines] == [
        ("alice", "203.0.113.9", "bad-password"),
        ("alice", "203.0.113.9", "bad-password"),
        ("alice", "203.0.113.9", "bad-password"),
        ("alice", "198.51.100.1", "locked"),
    ]
    assert all(PASSWORD not in r.getMessage() and "guess" not in r.getMessage() for r in caplog.records)
    assert auth.login("alice", PASSWORD, "", "198.51.100.1", "firefox", T0 + 901 * SECOND).ok  # the lock ends
    audit = [(row.action, row.outcome) for row in AuditLog(engine).recent(10)]
    assert audit.count(("login", "failed: bad-password")) == 3 and ("login", "failed: locked") in audit


def test_one_address_trying_many_accounts_is_locked_out(engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    auth = _service(engine)
    auth.add_user("alice", PASSWORD, T0)
    caplog.set_level(logging.INFO, "robohost.auth")
    for i, name in enumerate(["root", "admin", "bob", "carol", "dave"]):
        assert auth.login(name, "password1", "", "203.0.113.9", None, T0 + i).reason == "unknown-user"
    refused = auth.login("alice", PASSWORD, "", "203.0.113.9", None, T0 + 10)
    assert refused.reason == "locked" and "address locked" in (refused.note or "")
    assert auth.login("alice", PASSWORD, "", "192.0.2.7", None, T0 + 11).ok  # from another address: fine
    evil = auth.login("eve ip=10.0.0.1", "x", "", "203.0.113.9", None, T0 + 12)
    assert evil.reason == "locked"
    assert {m["ip"] for m in _lines(caplog)} == {"203.0.113.9"}  # a crafted name cannot forge the address


def test_the_growing_delay_refuses_an_attempt_that_comes_too_soon(engine: sa.Engine) -> None:
    auth = _service(engine, delay=SECOND)
    auth.add_user("alice", PASSWORD, T0)
    assert auth.login("alice", "wrong", "", "203.0.113.9", None, T0).reason == "bad-password"
    soon = auth.login("alice", PASSWORD, "", "203.0.113.9", None, T0 + SECOND // 2)
    assert soon.reason == "locked" and soon.note == "too soon after a failure" and 0 < soon.retry_after_s <= 0.5
    assert auth.login("alice", "wrong", "", "203.0.113.9", None, T0 + SECOND).reason == "bad-password"
    assert auth.login("alice", PASSWORD, "", "203.0.113.9", None, T0 + 2 * SECOND).reason == "locked"  # 2 s now
    assert auth.login("alice", PASSWORD, "", "203.0.113.9", None, T0 + 3 * SECOND).ok
    auth.unlock("alice", T0)


def test_users_tokens_and_sessions_keep_only_hashes(engine: sa.Engine) -> None:
    auth = AuthService(AuthStore(engine), AuditLog(engine), logging.getLogger("robohost.auth"))  # production costs
    with pytest.raises(ConfigError, match="too short"):
        auth.add_user("alice", "short", T0)
    with pytest.raises(ConfigError, match="user name"):
        auth.add_user("alice smith", PASSWORD, T0)
    with pytest.raises(ConfigError, match="user's name"):
        auth.add_user("alice_the_great", "Alice_The_Great", T0)
    auth.add_user("alice", PASSWORD, T0)
    with pytest.raises(StateError, match="exists already"):
        auth.add_user("alice", PASSWORD, T0)
    token_id, token = auth.add_token("alice", "read", "grafana", T0)
    result = auth.login("alice", PASSWORD, "", "127.0.0.1", "test", T0)
    assert result.ok and result.session_id and result.principal is not None
    with engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.exec_driver_sql("SELECT * FROM users") for v in row)
        stored += " ".join(str(v) for row in conn.exec_driver_sql("SELECT * FROM api_tokens") for v in row)
        stored += " ".join(str(v) for row in conn.exec_driver_sql("SELECT * FROM web_sessions") for v in row)
    assert "$argon2id$" in stored and "m=65536" in stored
    assert PASSWORD not in stored and token not in stored and result.session_id not in stored
    principal = auth.token(token, T0)
    assert principal is not None and principal.scope == "read" and not principal.can_operate
    session = auth.session(result.session_id, T0 + 60 * SECOND)
    assert session is not None and session.csrf_token == result.principal.csrf_token
    auth.remove_token(token_id, T0)
    assert auth.token(token, T0) is None
    with pytest.raises(StateError):
        auth.remove_token(token_id, T0)
    assert auth.signout_all("alice", T0, actor="test") == 1
    assert auth.session(result.session_id, T0) is None
    auth.remove_user("alice", T0)
    assert not auth.has_users()


def test_totp_codes_count_once_and_recovery_codes_once(engine: sa.Engine) -> None:
    auth = _service(engine, delay=0, account_limit=50, ip_limit=50)
    factor = auth.add_user("alice", PASSWORD, T0, totp=True)
    assert factor is not None and factor.uri.startswith("otpauth://totp/robohost:alice?secret=")
    totp = pyotp.TOTP(factor.secret)
    assert auth.login("alice", PASSWORD, "", "ip", None, T0).reason == "bad-totp"
    assert auth.login("alice", PASSWORD, totp.at(T0 // SECOND), "ip", None, T0).ok
    assert auth.login("alice", PASSWORD, totp.at(T0 // SECOND), "ip", None, T0 + 1).reason == "bad-totp"  # replay
    assert auth.login("alice", PASSWORD, totp.at(T0 // SECOND - 90), "ip", None, T0 + 2).reason == "bad-totp"  # stale
    later = T0 + 31 * SECOND
    assert auth.login("alice", PASSWORD, totp.at(later // SECOND - 30), "ip", None, later).reason == "bad-totp"
    assert auth.login("alice", PASSWORD, totp.at(later // SECOND + 30), "ip", None, later).ok  # drift of one step
    code = factor.recovery_codes[0]
    assert auth.login("alice", PASSWORD, code, "ip", None, later + 1).ok
    assert auth.login("alice", PASSWORD, code, "ip", None, later + 2).reason == "bad-totp"
    assert auth.store.unused_recovery_codes(auth.user("alice").id) == 9
    assert auth.set_totp("alice", False, later) is None
    assert auth.login("alice", PASSWORD, "", "ip", None, later + 3).ok
