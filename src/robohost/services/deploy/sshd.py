"""An sshd drop-in: keys only, no root, no passwords (``/etc/ssh/sshd_config.d/50-robohost.conf``)."""

from __future__ import annotations

from robohost.services.deploy.settings import DeploySettings


def render_sshd(settings: DeploySettings) -> str:
    """The drop-in. sshd takes the first value of a keyword, and Debian includes the drop-ins first."""
    port = [] if settings.ssh_port == 22 else [f"Port {settings.ssh_port}"]
    return "\n".join(
        [
            "# 50-robohost.conf: rendered by 'robohost deploy render'. Install in /etc/ssh/sshd_config.d/,",
            "# check with 'sshd -t', then 'systemctl reload ssh'. Keep a second session open while you do.",
            *port,
            "PubkeyAuthentication yes",
            "AuthenticationMethods publickey",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitEmptyPasswords no",
            "PermitRootLogin no",
            "MaxAuthTries 3",
            "LoginGraceTime 30",
            "X11Forwarding no",
            "PermitUserEnvironment no",
            "",
        ]
    )
