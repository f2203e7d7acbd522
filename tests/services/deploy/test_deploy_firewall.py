"""The rendered firewall, loaded into a network namespace the test creates (never the host's): a client in a
second namespace (veth pair) connects to SSH and the dashboard, not to a blocked port, and not at all once its
address is in the ban set. The iptables-restore rules do the same. The host's ruleset is compared before/after."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_support import namespace_pair, run, settings

from robohost.services.deploy.firewall import render_iptables, render_nftables
from robohost.services.deploy.settings import LOG_PREFIX
from system import need_program

SERVER, CLIENT = "10.213.7.1", "10.213.7.2"
SSH, DASHBOARD, BLOCKED = 22, 8443, 8080
LISTENER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
while True:
    c, _ = s.accept(); c.sendall(b"hello"); c.close()
"""
PROBE = """
import socket, sys
for port in sys.argv[2:]:
    try:
        with socket.create_connection((sys.argv[1], int(port)), timeout=1.0) as s:
            print(port, "open" if s.recv(8) == b"hello" else "odd")
    except OSError:
        print(port, "blocked")
"""


def _host_ruleset(nft: str) -> str:
    return run(nft, "list", "ruleset").stdout


@pytest.fixture
def netns() -> Iterator[tuple[str, str]]:
    need_program("ip", "iproute2")
    with namespace_pair(SERVER, CLIENT) as pair:
        yield pair


def _listen(server: str, ports: tuple[int, ...]) -> list[subprocess.Popen[bytes]]:
    listeners = [
        subprocess.Popen(["ip", "netns", "exec", server, "timeout", "30", sys.executable, "-c", LISTENER, str(p)])
        for p in ports
    ]
    for port in ports:  # bounded wait until each listens
        for _ in range(50):
            if run("ip", "netns", "exec", server, "ss", "-Hltn", f"sport = :{port}").stdout.strip():
                break
            subprocess.run(["sleep", "0.1"], check=True)
    return listeners


def _probe(client: str, *ports: int) -> dict[int, str]:
    out = run("ip", "netns", "exec", client, sys.executable, "-c", PROBE, SERVER, *map(str, ports)).stdout
    return {int(port): state for port, state in (line.split() for line in out.splitlines())}


def _stop(listeners: list[subprocess.Popen[bytes]]) -> None:
    for listener in listeners:
        listener.kill()
        listener.wait(timeout=10)


def test_nftables_ruleset_allows_ssh_and_dashboard_blocks_the_rest_and_drops_banned(
    tmp_path: Path, netns: tuple[str, str]
) -> None:
    nft = need_program("nft", "nftables")
    before = _host_ruleset(nft)
    server, client = netns
    ruleset = tmp_path / "robohost.nft"
    ruleset.write_text(render_nftables(settings()))
    check = run("ip", "netns", "exec", server, nft, "-c", "-f", str(ruleset))
    assert check.returncode == 0, check.stderr
    load = run("ip", "netns", "exec", server, nft, "-f", str(ruleset))
    assert load.returncode == 0, load.stderr
    listeners = _listen(server, (SSH, DASHBOARD, BLOCKED))
    try:
        assert _probe(client, SSH, DASHBOARD, BLOCKED) == {SSH: "open", DASHBOARD: "open", BLOCKED: "blocked"}
        chain = run("ip", "netns", "exec", server, nft, "list", "chain", "inet", "robohost", "log_drop").stdout
        assert f'log prefix "{LOG_PREFIX}"' in chain
        dropped = [line for line in chain.splitlines() if "counter packets" in line]
        assert dropped and int(dropped[0].split("counter packets ")[1].split()[0]) >= 1  # the SYN to 8080
        ban = run("ip", "netns", "exec", server, nft, "add", "element", "inet", "robohost", "banned4",
                  f"{{ {CLIENT} timeout 5m }}")  # fmt: skip
        assert ban.returncode == 0, ban.stderr
        listed = run("ip", "netns", "exec", server, nft, "list", "set", "inet", "robohost", "banned4").stdout
        assert CLIENT in listed and "expires" in listed
        assert _probe(client, SSH, DASHBOARD) == {SSH: "blocked", DASHBOARD: "blocked"}
    finally:
        _stop(listeners)
    assert _host_ruleset(nft) == before


def test_nftables_rate_limits_new_ssh_connections_per_address(tmp_path: Path, netns: tuple[str, str]) -> None:
    nft = need_program("nft", "nftables")
    server, client = netns
    ruleset = tmp_path / "robohost.nft"
    ruleset.write_text(render_nftables(settings()))
    assert run("ip", "netns", "exec", server, nft, "-f", str(ruleset)).returncode == 0
    listeners = _listen(server, (SSH,))
    try:
        results = [_probe(client, SSH)[SSH] for _ in range(9)]
    finally:
        _stop(listeners)
    assert results[:6] == ["open"] * 6 and "blocked" in results[6:], results


def test_iptables_rules_allow_ssh_and_dashboard_and_block_the_rest(tmp_path: Path, netns: tuple[str, str]) -> None:
    restore = need_program("iptables-restore", "iptables")
    need_program("ip6tables-restore", "iptables")
    server, client = netns
    rules = tmp_path / "rules.v4"
    rules.write_text(render_iptables(settings()))
    rules6 = tmp_path / "rules.v6"
    rules6.write_text(render_iptables(settings(), ipv6=True))
    test6 = run("ip", "netns", "exec", server, "ip6tables-restore", "--test", str(rules6))
    assert test6.returncode == 0, test6.stderr
    load = run("ip", "netns", "exec", server, restore, str(rules))
    assert load.returncode == 0, load.stderr
    listeners = _listen(server, (SSH, DASHBOARD, BLOCKED))
    try:
        assert _probe(client, SSH, DASHBOARD, BLOCKED) == {SSH: "open", DASHBOARD: "open", BLOCKED: "blocked"}
    finally:
        _stop(listeners)


def test_a_broken_port_is_refused_by_nft(tmp_path: Path) -> None:
    """The check the tests rely on is real: nft -c rejects an impossible port."""
    nft = need_program("nft", "nftables")
    ruleset = tmp_path / "broken.nft"
    ruleset.write_text(render_nftables(settings(dashboard_port=99999)))
    check = run("unshare", "-rn", nft, "-c", "-f", str(ruleset))
    assert check.returncode != 0 and "out of range" in check.stderr
