"""The hardened ``robohost.service`` unit that runs ``robohost serve`` (``Type=notify``, watchdog).

Every directive below is there for ``systemd-analyze security --offline=true`` (the target is 2.0 "OK" or
lower; ``tests/services/deploy/test_systemd_unit.py`` runs it) and chosen so that ``robohost serve`` still
works: it writes only its home, reads ``/proc`` system figures for the health checks (so no ``ProcSubset=pid``),
connects out to its data sources, database, mail and syslog servers (so no ``IPAddressDeny=``), and listens on
the dashboard's port above 1024 (so no capabilities at all).
"""

from __future__ import annotations

from robohost.services.deploy.settings import CREDENTIAL_NAME, DeploySettings

SERVICE_NAME = "robohost.service"

HARDENING = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "PrivateUsers=yes",
    "PrivateIPC=yes",
    "PrivateMounts=yes",
    "ProtectHostname=yes",
    "ProtectClock=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectProc=invisible",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "RemoveIPC=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged @resources",
    "SystemCallErrorNumber=EPERM",
    "SystemCallArchitectures=native",
    "DevicePolicy=closed",
    "KeyringMode=private",
    "UMask=0077",
)
"""The sandbox of the service (and, without the user namespace, of the schedule's trigger units)."""


def _protect_home(settings: DeploySettings) -> str:
    """``ProtectHome=yes`` hides /home, /root and /run/user; a robot home there needs ``read-only`` instead."""
    inside = any(settings.home.is_relative_to(p) for p in ("/home", "/root", "/run/user"))
    return "ProtectHome=read-only" if inside else "ProtectHome=yes"


def hardening_lines(settings: DeploySettings) -> list[str]:
    """The sandbox directives, with ``ReadWritePaths=`` the robot home only."""
    lines = [_protect_home(settings) if line == "ProtectHome=yes" else line for line in HARDENING]
    return [*lines, f"ReadWritePaths={settings.home}"]


def render_service(settings: DeploySettings) -> str:
    """The ``robohost.service`` unit."""
    return "\n".join(
        [
            "# robohost.service: rendered by 'robohost deploy render'; install in /etc/systemd/system/.",
            "# The secrets arrive as an encrypted credential (never readable on disk in clear):",
            f"#   systemd-creds encrypt --name={CREDENTIAL_NAME} \\",
            f"#     {settings.home}/secrets.toml {settings.credential_file}",
            f"#   then remove {settings.home}/secrets.toml; robohost reads $CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME}.",
            "[Unit]",
            "Description=robohost paper-trading robot server",
            "After=network-online.target postgresql.service",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=notify",
            "NotifyAccess=main",
            f"ExecStart={settings.executable} --home {settings.home} serve",
            f"WorkingDirectory={settings.home}",
            "WatchdogSec=30",
            "Restart=on-failure",
            "RestartSec=5",
            "TimeoutStopSec=60",
            f"User={settings.user}",
            f"Group={settings.user}",
            f"LoadCredentialEncrypted={CREDENTIAL_NAME}:{settings.credential_file}",
            "",
            *hardening_lines(settings),
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def harden_trigger_unit(text: str, settings: DeploySettings) -> str:
    """A schedule export's oneshot ``.service`` run as the service user, with its secrets, in the same sandbox."""
    lines = [
        f"User={settings.user}",
        f"Group={settings.user}",
        f"LoadCredentialEncrypted={CREDENTIAL_NAME}:{settings.credential_file}",
        *hardening_lines(settings),
    ]
    return text.replace("Type=oneshot\n", "Type=oneshot\n" + "\n".join(lines) + "\n", 1)
