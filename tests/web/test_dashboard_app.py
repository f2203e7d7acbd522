"""The dashboard app in-process (FastAPI's test client over HTTPS URLs), on SQLite and PostgreSQL: what the pages
and the API show, the buttons, CSRF, cookies, session fixation and expiry, tokens and their scopes, downloads,
the redacted log, and the audit log.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pyotp
import pytest

from robohost.adapters.db.jobs import RequestStore
from robohost.web.security import LOGIN_COOKIE, SESSION_COOKIE
from web_support import BASE, PASSWORD, ROBOT, USER, WebApp, csrf_of, sign_in, web_app, web_home


@pytest.fixture
def home(tmp_path: Path, db_url: str) -> Path:
    """A home whose robot never ran."""
    return web_home(tmp_path / "home", db_url, replay=False)


@pytest.fixture
def traded_home(tmp_path: Path, db_url: str) -> Path:
    """A home with one finished replay: orders, fills, equity."""
    return web_home(tmp_path / "home", db_url, bars=2000)


def _actions(w: WebApp) -> list[tuple[str, str]]:
    return [(row.action, row.outcome) for row in w.ctx.audit.recent(100)]


def test_signed_in_person_sees_the_robot_and_the_api_agrees(traded_home: Path) -> None:
    with web_app(traded_home) as w:
        client = w.client()
        assert client.get("/").status_code == 303  # not signed in: to the sign-in page
        done = sign_in(client)
        assert done.status_code == 303 and done.headers["location"] == "/"
        page = client.get("/")
        assert page.status_code == 200
        assert 'id="robot-status">stopped<' in page.text and "Run now" in page.text
        overview = client.get("/api/v1/robots/bot/overview").json()
        run = w.app.read.latest_run(ROBOT)
        assert run is not None and overview["run"]["id"] == run.id and overview["run"]["status"] == "completed"
        equity = overview["equity"]
        assert 50 < len(equity["t_ms"]) <= 500 < len(w.app.read.equity(ROBOT))
        assert equity["t_ms"] == sorted(equity["t_ms"]) and equity["max_drawdown"] <= 0
        last = w.app.read.equity(ROBOT)[-1]
        assert overview["equity_now"] == last.equity and equity["equity"][-1] == last.equity
        assert overview["counts"]["fills"] == len(w.app.read.fills(ROBOT)) > 0
        assert (
            len(overview["recent_fills"]) == 20
            and overview["recent_fills"][0]["ts"] >= overview["recent_fills"][1]["ts"]
        )
        assert overview["next_runs"] and all(job["job"] == "health" for job in overview["next_runs"])  # manual mode
        assert overview["status"]["status"] == "stopped" and overview["status"]["server_alive"] is False
        assert isinstance(overview["recent_fills"][0]["fee"], str)  # money: exact decimal strings

        orders = client.get("/api/v1/robots/bot/orders", params={"side": "buy", "limit": 5}).json()
        assert len(orders) == 5 and {o["side"] for o in orders} == {"buy"}
        assert client.get("/api/v1/robots/bot/orders", params={"status": "open"}).json() == []
        assert client.get("/api/v1/robots/nobody/overview").status_code == 404
        for path in ("/orders?robot=bot&side=sell", "/jobs", "/risk", "/health", "/reports", "/backups", "/logs",
                     "/audit", "/account"):  # fmt: skip
            assert client.get(path).status_code == 200, path
        health = client.get("/api/v1/health").json()
        assert 0 <= health["disk_percent"] <= 100 and health["feeds"][0]["source"] == "replay"
        assert client.get("/api/v1/me").json() == {"user": USER, "method": "session", "scope": "operate"}


def test_buttons_ask_the_server_and_are_audited(home: Path) -> None:
    with web_app(home) as w:
        client = w.client()
        sign_in(client)
        token = csrf_of(client)
        ran = client.post("/api/v1/robots/bot/run", headers={"X-CSRF-Token": token})
        assert ran.status_code == 200
        request_id = ran.json()["request_id"]
        row = RequestStore(w.app.engine).get(request_id)
        assert row is not None and (row.robot, row.action, row.requested_by) == (ROBOT, "run", f"{USER} (web)")
        answer = client.get(f"/api/v1/requests/{request_id}").json()
        assert answer["handled_at"] is None  # no server in this test: the request waits for one
        RequestStore(w.app.engine).handle(request_id, "serve pid 1@test", "started session job 7", time.time_ns())
        assert client.get(f"/api/v1/requests/{request_id}").json()["outcome"] == "started session job 7"
        page = client.get("/", params={"request": request_id})
        assert "started session job 7" in page.text

        stopped = client.post("/robots/bot/stop", data={"csrf_token": token})  # the form, without JavaScript
        assert stopped.status_code == 303 and "request=" in stopped.headers["location"]

        refused = client.post("/api/v1/robots/bot/resume", headers={"X-CSRF-Token": token})
        assert refused.status_code == 409 and "not halted" in refused.json()["detail"]
        w.app.read.set_robot_state(ROBOT, "halted", "max_daily_loss breached", time.time_ns())
        w.ctx.dashboard.forget(ROBOT)  # the overview is cached for a second
        assert 'id="robot-status">halted<' in client.get("/").text
        resumed = client.post("/api/v1/robots/bot/resume", headers={"X-CSRF-Token": token})
        assert resumed.status_code == 200 and resumed.json()["was_halted_because"] == "max_daily_loss breached"
        state = w.app.read.robot_state(ROBOT)
        assert state is not None and state.status == "idle" and "alice (web)" in (state.reason or "")
        actions = _actions(w)
        assert ("run", f"requested (request {request_id})") in actions
        assert ("stop", f"requested (request {request_id + 1})") in actions
        assert ("resume", "ok") in actions and ("resume", "refused: not halted") in actions
        assert ("login", "ok") in actions


def test_state_changes_without_the_csrf_token_or_from_another_site_are_refused(home: Path) -> None:
    with web_app(home) as w:
        client = w.client()
        sign_in(client)
        token = csrf_of(client)
        assert client.post("/api/v1/robots/bot/run").status_code == 403
        assert client.post("/api/v1/robots/bot/run", headers={"X-CSRF-Token": "x" * 43}).status_code == 403
        assert client.post("/robots/bot/run", data={"csrf_token": ""}).status_code == 403
        assert client.post("/robots/bot/run", data={}).status_code == 403
        assert client.post("/logout", data={}).status_code == 403
        evil = {"X-CSRF-Token": token, "Origin": "https://evil.example"}
        assert client.post("/api/v1/robots/bot/run", headers=evil).status_code == 403
        cross = {"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"}
        assert client.post("/api/v1/robots/bot/run", headers=cross).status_code == 403
        assert RequestStore(w.app.engine).pending(ROBOT) == []  # nothing got through
        same = {"X-CSRF-Token": token, "Origin": BASE, "Sec-Fetch-Site": "same-origin"}
        assert client.post("/api/v1/robots/bot/run", headers=same).status_code == 200


def test_cookies_are_locked_down_and_a_planted_session_id_is_never_adopted(home: Path) -> None:
    with web_app(home) as w:
        client = w.client()
        client.cookies.set(SESSION_COOKIE, "planted-by-an-attacker", domain="testserver.local")
        done = sign_in(client)
        cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "path=/", "samesite=strict"} <= flags and not any(
            f.startswith("domain") for f in flags
        )
        issued = client.cookies.get(SESSION_COOKIE)
        assert issued and issued != "planted-by-an-attacker" and len(issued) >= 40
        assert w.ctx.auth.session("planted-by-an-attacker", w.now[0]) is None

        # Posting the sign-in form again while holding a live session: a new id, and the old one ends.
        client.cookies.set(LOGIN_COOKIE, "login-token-" + "x" * 30, domain="testserver.local")
        form = {"username": USER, "password": PASSWORD, "login_csrf": "login-token-" + "x" * 30, "next": "/"}
        assert client.post("/login", data=form).status_code == 303
        assert client.cookies.get(SESSION_COOKIE) != issued
        assert w.ctx.auth.session(issued, w.now[0]) is None
        with w.app.engine.connect() as conn:
            stored = [row[0] for row in conn.exec_driver_sql("SELECT id_hash FROM web_sessions")]
        assert client.cookies.get(SESSION_COOKIE) not in stored and all(len(h) == 64 for h in stored)


def test_sign_out_and_sign_out_everywhere_and_expiry(home: Path) -> None:
    with web_app(home) as w:
        laptop, phone = w.client(), w.client()
        sign_in(laptop)
        sign_in(phone)
        token = csrf_of(laptop)
        gone = laptop.post("/logout", data={"csrf_token": token})
        assert gone.status_code == 303 and gone.headers["location"] == "/login"
        assert laptop.get("/").status_code == 303 and laptop.get("/api/v1/robots").status_code == 401
        assert phone.get("/").status_code == 200
        sign_in(laptop)
        ended = phone.post("/account/signout-all", data={"csrf_token": csrf_of(phone, "/account")})
        assert ended.status_code == 303
        assert phone.get("/").status_code == 303 and laptop.get("/").status_code == 303

        sign_in(laptop)
        w.advance(29 * 60)
        assert laptop.get("/").status_code == 200  # active: the idle clock starts again
        w.advance(29 * 60)
        assert laptop.get("/").status_code == 200
        w.advance(31 * 60)  # idle longer than 30 minutes
        assert laptop.get("/").status_code == 303
        sign_in(laptop)
        for _ in range(25):  # active all along, but 12 hours after signing in it ends
            w.advance(29 * 60)
            laptop.get("/api/v1/me")
        assert laptop.get("/api/v1/me").status_code == 401
        assert ("signout_all", "ok") in _actions(w) and ("logout", "ok") in _actions(w)


def test_api_tokens_are_scoped_and_hashed(home: Path) -> None:
    with web_app(home) as w:
        _, reader = w.ctx.auth.add_token(USER, "read", "monitoring", w.now[0])
        _, operator = w.ctx.auth.add_token(USER, "operate", "cron", w.now[0])
        api = w.client()
        look = {"Authorization": f"Bearer {reader}"}
        act = {"Authorization": f"Bearer {operator}"}
        assert api.get("/api/v1/robots/bot/overview", headers=look).status_code == 200
        assert api.post("/api/v1/robots/bot/run", headers=look).status_code == 403
        assert api.post("/api/v1/robots/bot/run", headers=act).status_code == 200  # no CSRF for a bearer token
        assert api.get("/api/v1/me", headers={"Authorization": "Bearer rh_wrong"}).status_code == 401
        assert api.get("/api/v1/me", headers={"Authorization": f"Basic {reader}"}).status_code == 401
        assert api.get("/", headers=look).status_code == 303  # pages are for browser sessions
        with w.app.engine.connect() as conn:
            hashes = [row[0] for row in conn.exec_driver_sql("SELECT token_hash FROM api_tokens")]
        assert reader not in hashes and operator not in hashes and len(hashes) == 2


def test_csv_exports_and_downloads_are_audited_and_confined(traded_home: Path) -> None:
    (traded_home / "reports" / "pnl-bot.html").write_text("<html><script>alert(1)</script></html>")
    (traded_home / "secrets-elsewhere.txt").write_text("not for download")
    with web_app(traded_home) as w:
        client = w.client()
        sign_in(client)
        exported = client.get("/api/v1/robots/bot/fills.csv", params={"side": "sell"})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert exported.headers["content-disposition"] == 'attachment; filename="fills-bot.csv"'
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert rows and {r["side"] for r in rows} == {"sell"}
        assert len(rows) == sum(1 for f in w.app.read.fills(ROBOT) if f.side == "sell")
        orders = list(csv.DictReader(io.StringIO(client.get("/api/v1/robots/bot/orders.csv").text)))
        assert len(orders) == len(w.app.read.orders(ROBOT))

        report = client.get("/api/v1/reports/pnl-bot.html")
        assert report.status_code == 200 and report.headers["content-disposition"].startswith("attachment")
        assert "sandbox" in report.headers["content-security-policy"]
        assert client.get("/api/v1/reports").json()[0]["name"] == "pnl-bot.html"
        for sneaky in ("..%2Fsecrets-elsewhere.txt", "%2E%2E%2Frobohost.toml", ".hidden", "..", "a%00b"):
            assert client.get(f"/api/v1/reports/{sneaky}").status_code in (404, 422), sneaky
        downloads = [row.detail for row in w.ctx.audit.recent(50, action="download")]
        assert "report pnl-bot.html" in downloads and "fills-bot.csv" in downloads and "orders-bot.csv" in downloads


def test_the_log_viewer_masks_secrets(home: Path) -> None:
    secrets = home / "secrets.toml"
    secrets.write_text('[feeds.alpaca]\nkey_id = "AKIDSECRET1234"\nsecret_key = "sk-live-abcdefghijkl"\n')
    secrets.chmod(0o600)
    with (home / "logs" / "robohost.log").open("a") as log:
        log.write("connecting with key AKIDSECRET1234 and sk-live-abcdefghijkl\n")
        log.write("GET postgresql://robohost:hunter22@db/robohost Authorization: Bearer abcdefghijklmnop\n")
        log.write("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
        log.write("an ordinary line\n")
        event = '{"time": "2026-11-27T14:31:05Z", "level": "warning", "component": "robohost.auth", "message": '
        log.write(event + '"login with token rh_abcdefghijklmnopqrstuvwx", "pid": 7, "ip": "192.0.2.1"}\n')
    with web_app(home) as w:
        client = w.client()
        sign_in(client)
        lines = client.get("/api/v1/logs", params={"lines": 50}).json()["lines"]
        text = "\n".join(lines) + client.get("/logs").text
        for secret in ("AKIDSECRET1234", "sk-live-abcdefghijkl", "hunter22", "abcdefghijklmnop", "b3BlbnNzaC1rZXkt"):
            assert secret not in text
        assert "an ordinary line" in lines and "***" in text
        assert "2026-11-27T14:31:05Z WARNING robohost.auth: login with token rh_***  ip=192.0.2.1" in lines


def test_totp_second_factor_with_replay_refusal_and_recovery_codes(home: Path) -> None:
    with web_app(home, user=False) as w:
        factor = w.ctx.auth.add_user(USER, PASSWORD, w.now[0], totp=True)
        assert factor is not None and len(factor.recovery_codes) == 10
        client = w.client()
        assert sign_in(client).status_code == 401  # the password alone is not enough
        w.advance(2)  # the growing delay after a failure: 1 s
        code = pyotp.TOTP(factor.secret).at(w.now[0] / 1e9)
        assert sign_in(client, code=code).status_code == 303
        other = w.client()
        w.advance(2)  # the lock-out's delay after the failure above
        assert sign_in(other, code=code).status_code == 401  # the same code twice: a replay
        w.advance(2)
        recovery = factor.recovery_codes[3]
        assert sign_in(other, code=recovery.upper()).status_code == 303
        w.advance(2)
        assert sign_in(w.client(), code=recovery).status_code == 401  # each recovery code works once
        reasons = [row.outcome for row in w.ctx.audit.recent(20, action="login")]
        assert reasons.count("failed: bad-totp") == 3


def test_the_page_for_an_unknown_robot_or_a_bad_query_is_a_clean_error(home: Path) -> None:
    with web_app(home) as w:
        client = w.client()
        sign_in(client)
        assert client.get("/", params={"robot": "nobody"}).status_code == 404
        assert client.get("/orders", params={"limit": "many"}).status_code == 422
        assert client.get("/api/v1/robots/bot/orders", params={"limit": 0}).status_code == 422
        bad = client.get("/api/v1/requests/0")
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/json"
        assert client.get("/login", params={"next": "https://evil.example/"}).headers["location"] == "/"


def test_brute_force_over_http_is_slowed_then_locked_out(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    home = web_home(tmp_path / "home", db_url, replay=False, web="lockout_failures = 4\nlogin_delay_s = 1")
    caplog.set_level("INFO", "robohost.auth")
    with web_app(home) as w:
        client = w.client()
        assert sign_in(client, password="guess 1").status_code == 401
        too_soon = sign_in(client, password=PASSWORD)  # right password, but within the delay after a failure
        assert too_soon.status_code == 429 and too_soon.headers["retry-after"] == "1"
        assert "try again in 1 s" in too_soon.text
        for attempt in range(2, 5):
            w.advance(2 ** (attempt - 1))  # the delay doubles after each failure
            assert sign_in(client, password=f"guess {attempt}").status_code == 401
        w.advance(60)
        locked = sign_in(client, password=PASSWORD)  # four failures: the account is locked out
        assert locked.status_code == 429 and 800 < int(locked.headers["retry-after"]) <= 900
        assert client.get("/").status_code == 303
        w.advance(15 * 60)
        assert sign_in(client, password=PASSWORD).status_code == 303  # the lock-out ended
        failures = [r.getMessage() for r in caplog.records if r.name == "robohost.auth" and "failed" in r.getMessage()]
        assert failures[0] == "robohost-auth: login failed user=alice ip=testclient reason=bad-password"
        assert failures.count("robohost-auth: login failed user=alice ip=testclient reason=locked") == 2
        assert not any("guess" in line or PASSWORD in line for line in failures)
