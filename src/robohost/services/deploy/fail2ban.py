"""fail2ban: a filter for robohost's failed sign-ins and the jails for them and for sshd.

The dashboard logs each failed sign-in as one line (``services/auth.py``)::

    robohost-auth: login failed user=NAME ip=ADDRESS reason=bad-password|locked|unknown-user|bad-totp

and the home's ``logs/robohost.log`` holds it as the ``message`` of a JSON line whose ``time`` is ISO 8601 UTC.
The filter matches only that message (a name or address never holds spaces or quotes: ``log_safe``), so a
user name cannot smuggle in another address.
"""

from __future__ import annotations

from robohost.services.deploy.settings import DeploySettings

FILTER_NAME = "robohost-auth"
REASONS = ("bad-password", "locked", "unknown-user", "bad-totp")


def render_filter() -> str:
    """``filter.d/robohost-auth.conf``."""
    reasons = "|".join(REASONS)
    return "\n".join(
        [
            "# robohost-auth.conf: rendered by 'robohost deploy render'. Install in /etc/fail2ban/filter.d/.",
            "# Check: fail2ban-regex HOME/logs/robohost.log /etc/fail2ban/filter.d/robohost-auth.conf",
            "[Definition]",
            '_message = "message": "robohost-auth: login failed',
            f'failregex = %(_message)s user=[^"\\s]+ ip=<ADDR> reason=(?:{reasons})"',
            "ignoreregex =",
            'datepattern = "time": "%%Y-%%m-%%dT%%H:%%M:%%S(?:\\.%%f)?Z"',
            "",
        ]
    )


def render_jail(settings: DeploySettings) -> str:
    """``jail.d/robohost.local``: robohost's sign-ins (the dashboard's ports) and sshd, banned with nftables."""
    ports = ",".join(str(p) for p in settings.open_ports) or "https"
    return "\n".join(
        [
            "# robohost.local: rendered by 'robohost deploy render'. Install in /etc/fail2ban/jail.d/,",
            "# then: systemctl restart fail2ban && fail2ban-client status robohost-auth",
            f"[{FILTER_NAME}]",
            "enabled = true",
            f"filter = {FILTER_NAME}",
            f"logpath = {settings.home}/logs/robohost.log",
            "backend = auto",
            "banaction = nftables-multiport",
            f"port = {ports}",
            "maxretry = 5",
            "findtime = 10m",
            "bantime = 1h",
            "",
            "[sshd]",
            "enabled = true",
            "mode = aggressive",
            f"port = {settings.ssh_port}",
            "backend = systemd",
            "banaction = nftables-multiport",
            "maxretry = 5",
            "findtime = 10m",
            "bantime = 1h",
            "",
        ]
    )
