"""The dashboard as a person uses it: Debian's headless Chromium, driven by Playwright, against a real
``robohost serve`` over HTTPS on 127.0.0.1.

Certificate trust, without ``ignore_https_errors``: Chromium on Linux keeps its trust store in NSS, which a
test must not touch; so the browser is launched with ``--ignore-certificate-errors-spki-list=PIN``, which
accepts exactly the server key whose SPKI SHA-256 is PIN (printed by ``robohost web cert``) and nothing else.
That the certificate chains to the home's CA is checked separately with Python's ``ssl`` against ``ca.pem``.

The test signs in, sees the equity chart drawn, clicks Run now and sees the robot start (the page refreshes
itself), clicks Stop, signs out, and checks that the old session is refused afterwards. Screenshots go to the
test's folder (printed) and are copied to /tmp/dashboard-check/.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from system import need_program
from web_support import PASSWORD, USER, web_home

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
CHECK_DIR = Path("/tmp/dashboard-check")


def free_port() -> int:
    """A TCP port nobody listens on now (127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ROBOHOST_")} | {"COLUMNS": "200"}


def robohost(home: Path, *args: str, stdin: str | None = None) -> str:
    """Run the ``robohost`` console script on ``home``; fail the test on a non-zero exit."""
    done = subprocess.run(
        [ROBOHOST, "--home", str(home), *args], input=stdin, capture_output=True, text=True, env=_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def serving(home: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """``robohost serve`` on ``home`` until the block ends (then SIGTERM, which must exit 0)."""
    log = (home / "serve.out").open("w")
    proc = subprocess.Popen([ROBOHOST, "--home", str(home), "serve"], stdout=log, stderr=subprocess.STDOUT, text=True,
                            env=_env())  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (home / "serve.out").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard did not listen within 60 s"
                time.sleep(0.1)
        yield proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (home / "serve.out").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


def test_a_person_signs_in_runs_the_robot_and_signs_out(tmp_path: Path) -> None:
    chromium = need_program("chromium", "chromium")
    from playwright.sync_api import expect, sync_playwright

    port, http_port = free_port(), free_port()
    web = f"port = {port}\nhttp_port = {http_port}\nrefresh_s = 1\nlogin_delay_s = 0"
    home = web_home(tmp_path / "home", f"sqlite:///{tmp_path / 'robohost.db'}", web=web)
    config = home / "robohost.toml"  # the served session runs paced, long enough to be seen running and stopped
    config.write_text(config.read_text().replace('speed = "max"', 'speed = "3000x"'))
    robohost(home, "user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
    cert = robohost(home, "web", "cert")
    pin = re.search(r"SPKI SHA-256\): (\S+)", cert)
    ca_fingerprint = re.search(r"CA SHA-256 fingerprint: ([0-9A-F:]+)", cert)
    assert pin is not None and ca_fingerprint is not None, cert
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    base = f"https://127.0.0.1:{port}"

    with serving(home, port):
        # The certificate chains to the home's CA, for the names it should (Python's ssl, the CA as the only anchor).
        anchor = ssl.create_default_context(cafile=str(home / "tls" / "ca.pem"))
        for name in ("localhost", "127.0.0.1"):
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                anchor.wrap_socket(raw, server_hostname=name) as tls,
            ):
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
        redirect = httpx.get(f"http://127.0.0.1:{http_port}/orders?robot=bot", follow_redirects=False, timeout=10)
        assert redirect.status_code == 301 and redirect.headers["location"] == f"{base}/orders?robot=bot"

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                headless=True,
                args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin.group(1)}"],
                timeout=60_000,
            )
            try:
                context = browser.new_context(ignore_https_errors=False, viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                problems: list[str] = []
                page.on(
                    "console",
                    lambda m: problems.append(f"{page.url}: {m.text} {m.location}") if m.type == "error" else None,
                )
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.on("dialog", lambda dialog: dialog.accept())

                first = page.goto(f"{base}/", timeout=30_000)
                assert first is not None and first.status == 200 and page.url.startswith(f"{base}/login")
                headers = first.headers
                assert headers["strict-transport-security"].startswith("max-age=63072000")
                assert "script-src 'self'" in headers["content-security-policy"]
                assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
                page.screenshot(path=str(shots / "1-sign-in.png"))

                page.fill("#username", USER)
                page.fill("#password", PASSWORD)
                page.click("#sign-in")
                page.wait_for_url(f"{base}/", timeout=30_000)
                page.wait_for_selector("#equity-chart[data-drawn] .main-svg", timeout=30_000)
                drawn = int(page.get_attribute("#equity-chart", "data-drawn") or 0)
                assert drawn > 50, "the equity chart has its points"
                assert page.locator("#equity-chart .scatterlayer .trace").count() == 2, "equity and drawdown"
                assert page.inner_text("#robot-status") == "stopped"
                assert "served by serve" in page.inner_text("#robot-reason")
                page.screenshot(path=str(shots / "2-overview.png"), full_page=True)

                page.click("#run-now")  # confirms (the dialog is accepted), posts with the CSRF token
                expect(page.locator("#robot-status")).to_have_text("running", timeout=30_000)  # refreshed live
                expect(page.locator("#action-result")).to_contain_text("started session job", timeout=30_000)
                page.screenshot(path=str(shots / "3-running.png"), full_page=True)

                page.click("#stop")
                expect(page.locator("#robot-status")).to_have_text("stopped", timeout=30_000)
                for path in ("/orders?robot=bot", "/jobs?robot=bot", "/health", "/logs", "/audit"):
                    shown = page.goto(base + path, timeout=30_000)
                    assert shown is not None and shown.status == 200, path
                page.screenshot(path=str(shots / "4-audit.png"), full_page=True)
                audit = page.inner_text("#audit")
                assert "run" in audit and "stop" in audit and "login" in audit

                session = next(c for c in context.cookies() if c["name"] == "__Host-robohost-session")
                assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
                page.click("#sign-out")
                page.wait_for_url(f"{base}/login", timeout=30_000)
                again = page.goto(f"{base}/orders?robot=bot", timeout=30_000)
                assert again is not None and page.url.startswith(f"{base}/login?next=")
                assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
                assert not problems, problems
            finally:
                browser.close()

        # The old session cookie, replayed after signing out, opens nothing.
        old = {"__Host-robohost-session": session["value"]}
        with httpx.Client(verify=anchor, cookies=old, base_url=f"https://localhost:{port}", timeout=10) as client:
            assert client.get("/").status_code == 303
            assert client.get("/api/v1/robots/bot/overview").status_code == 401

    CHECK_DIR.mkdir(exist_ok=True)
    for shot in shots.iterdir():
        shutil.copy(shot, CHECK_DIR / shot.name)
    print(f"screenshots copied to {CHECK_DIR}; CA fingerprint {ca_fingerprint.group(1)}")
    log = (home / "logs" / "robohost.log").read_text()
    assert PASSWORD not in log and session["value"] not in log
    assert "robohost-auth: login ok user=alice ip=127.0.0.1" in log


pytestmark = pytest.mark.timeout(240)
