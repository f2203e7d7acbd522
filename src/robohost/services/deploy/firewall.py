"""The host firewall: an nftables ruleset and its iptables-restore equivalent for older hosts.

Inbound is default-deny and stateful: established/related traffic, loopback, the ICMP messages a host needs
(unreachable, too big, time exceeded, parameter problem, neighbour discovery, rate-limited echo), new SSH
connections rate-limited per source address, and new connections to the dashboard's ports. Addresses in the
ban sets (``banned4``/``banned6``, entries with a timeout) are dropped before anything else. Everything else
is logged (rate-limited, prefix ``LOG_PREFIX``) and dropped. Outbound is open: robohost connects to its data
sources, database, mail and syslog servers. Forwarding is refused.

The nftables file replaces only its own table (``inet robohost``), never the whole ruleset, so it sits beside
the tables of other software (fail2ban's, a container runtime's).
"""

from __future__ import annotations

from robohost.services.deploy.settings import LOG_PREFIX, DeploySettings

TABLE = "robohost"
SSH_RATE = "6/minute"
"""New SSH connections accepted per source address (burst as many); more are dropped and logged."""
BAN_TIMEOUT = "1h"

ICMP4 = "echo-reply, destination-unreachable, time-exceeded, parameter-problem"
ICMP6 = (
    "echo-reply, destination-unreachable, packet-too-big, time-exceeded, parameter-problem, "
    "nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query"
)


def render_nftables(settings: DeploySettings) -> str:
    """The nftables ruleset (``nft -f robohost.nft``)."""
    ports = ", ".join(str(p) for p in settings.open_ports)
    dashboard = [f"        tcp dport {{ {ports} }} ct state new counter accept"] if ports else []
    return "\n".join(
        [
            "#!/usr/sbin/nft -f",
            "# robohost.nft: rendered by 'robohost deploy render'. Check: nft -c -f robohost.nft",
            "# Install: include it from /etc/nftables.conf (or copy it there) and 'systemctl enable --now nftables'.",
            f"# Ban by hand: nft add element inet {TABLE} banned4 '{{ 203.0.113.5 timeout 1d }}'",
            f"# Drops are logged with the prefix {LOG_PREFIX.strip()!r}: journalctl -k -g {LOG_PREFIX.strip()}",
            f"table inet {TABLE}",
            f"delete table inet {TABLE}",
            "",
            f"table inet {TABLE} {{",
            "    set banned4 {",
            "        type ipv4_addr",
            "        flags timeout",
            f"        timeout {BAN_TIMEOUT}",
            "    }",
            "    set banned6 {",
            "        type ipv6_addr",
            "        flags timeout",
            f"        timeout {BAN_TIMEOUT}",
            "    }",
            "    set ssh_meter4 {",
            "        type ipv4_addr",
            "        flags dynamic, timeout",
            "        timeout 1m",
            "    }",
            "    set ssh_meter6 {",
            "        type ipv6_addr",
            "        flags dynamic, timeout",
            "        timeout 1m",
            "    }",
            "",
            "    chain input {",
            "        type filter hook input priority filter; policy drop;",
            "        ip saddr @banned4 counter drop",
            "        ip6 saddr @banned6 counter drop",
            "        ct state established,related accept",
            "        ct state invalid counter drop",
            '        iif "lo" accept',
            f"        icmp type {{ {ICMP4} }} accept",
            "        icmp type echo-request limit rate 10/second burst 20 packets accept",
            f"        icmpv6 type {{ {ICMP6} }} accept",
            "        icmpv6 type echo-request limit rate 10/second burst 20 packets accept",
            f"        tcp dport {settings.ssh_port} ct state new update @ssh_meter4 "
            f"{{ ip saddr limit rate over {SSH_RATE} burst 6 packets }} "
            "counter jump log_drop",
            f"        tcp dport {settings.ssh_port} ct state new update @ssh_meter6 "
            f"{{ ip6 saddr limit rate over {SSH_RATE} burst 6 packets }} "
            "counter jump log_drop",
            f"        tcp dport {settings.ssh_port} ct state new counter accept",
            *dashboard,
            "        jump log_drop",
            "    }",
            "",
            "    chain log_drop {",
            f'        limit rate 10/second burst 20 packets log prefix "{LOG_PREFIX}" level info',
            "        counter drop",
            "    }",
            "",
            "    chain forward {",
            "        type filter hook forward priority filter; policy drop;",
            "    }",
            "",
            "    chain output {",
            "        type filter hook output priority filter; policy accept;",
            "    }",
            "}",
            "",
        ]
    )


def render_iptables(settings: DeploySettings, ipv6: bool = False) -> str:
    """The iptables-restore (``rules.v4``) or ip6tables-restore (``rules.v6``) rules for hosts without nft.

    The ban list is fail2ban's own (its ``iptables-multiport`` action); ``recent`` limits new SSH connections.
    """
    ports = ",".join(str(p) for p in settings.open_ports)
    if ipv6:
        icmp = [
            f"-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type {kind} -j ACCEPT"
            for kind in (
                "destination-unreachable",
                "packet-too-big",
                "time-exceeded",
                "parameter-problem",
                "echo-reply",
                "router-advertisement",
                "neighbour-solicitation",
                "neighbour-advertisement",
            )
        ]
        icmp.append("-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -m limit --limit 10/second -j ACCEPT")
    else:
        icmp = [
            f"-A INPUT -p icmp -m icmp --icmp-type {kind} -j ACCEPT"
            for kind in ("destination-unreachable", "time-exceeded", "parameter-problem", "echo-reply")
        ]
        icmp.append("-A INPUT -p icmp -m icmp --icmp-type echo-request -m limit --limit 10/second -j ACCEPT")
    ssh = f"-A INPUT -p tcp --dport {settings.ssh_port} -m conntrack --ctstate NEW"
    dashboard = [f"-A INPUT -p tcp -m multiport --dports {ports} -m conntrack --ctstate NEW -j ACCEPT"] if ports else []
    return "\n".join(
        [
            f"# rules.v{6 if ipv6 else 4}: rendered by 'robohost deploy render' for hosts without nftables.",
            f"# Check: ip{'6' if ipv6 else ''}tables-restore --test rules.v{6 if ipv6 else 4}; "
            "install: the iptables-persistent package's /etc/iptables/.",
            "*filter",
            ":INPUT DROP [0:0]",
            ":FORWARD DROP [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            "-A INPUT -m conntrack --ctstate INVALID -j DROP",
            "-A INPUT -i lo -j ACCEPT",
            *icmp,
            f"{ssh} -m recent --name robohost-ssh --set",
            f"{ssh} -m recent --name robohost-ssh --rcheck --seconds 60 --hitcount 7 "
            f'-j LOG --log-prefix "{LOG_PREFIX}"',
            f"{ssh} -m recent --name robohost-ssh --rcheck --seconds 60 --hitcount 7 -j DROP",
            f"{ssh} -j ACCEPT",
            *dashboard,
            f'-A INPUT -m limit --limit 10/second --limit-burst 20 -j LOG --log-prefix "{LOG_PREFIX}"',
            "-A INPUT -j DROP",
            "COMMIT",
            "",
        ]
    )
