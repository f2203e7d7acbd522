"""What the rendered files depend on: the service user, the paths, the ports. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CREDENTIAL_NAME = "robohost-secrets"
"""The credential's name: robohost reads it from ``$CREDENTIALS_DIRECTORY/robohost-secrets``."""
DEFAULT_CREDENTIAL_FILE = Path("/etc/credstore.encrypted/robohost-secrets.cred")
LOG_PREFIX = "robohost-fw-drop: "
"""The prefix of the firewall's log-and-drop lines (``journalctl -k -g robohost-fw-drop``)."""


@dataclass(frozen=True, slots=True)
class DeploySettings:
    """The choices behind the rendered files."""

    home: Path
    """The robot home (absolute): the only place the service may write."""
    executable: Path
    """The ``robohost`` program of the virtual environment (``<venv>/bin/robohost``)."""
    user: str = "robohost"
    ssh_port: int = 22
    dashboard_port: int = 8443
    """The dashboard's HTTPS port, open in the firewall and the SELinux policy (0: no dashboard)."""
    http_port: int = 0
    """The dashboard's plain-HTTP redirect port (0: none)."""
    credential_file: Path = DEFAULT_CREDENTIAL_FILE
    """Where the encrypted secrets are installed (``systemd-creds encrypt`` output)."""

    @property
    def venv(self) -> Path:
        """The virtual environment that holds ``executable`` (its ``bin``'s parent)."""
        return self.executable.parent.parent

    @property
    def open_ports(self) -> tuple[int, ...]:
        """TCP ports the firewall accepts new connections on besides SSH: the dashboard's."""
        return tuple(p for p in (self.dashboard_port, self.http_port) if p)
