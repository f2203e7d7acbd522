"""logrotate rules for the log robohost does not rotate itself: the output of the schedule's cron lines.

``logs/robohost.log`` is rotated by robohost (``[logging] file_max_mb``) and ``logs/audit.log`` must never be
rotated or truncated (it is append-only), so neither is named here.
"""

from __future__ import annotations

from robohost.services.deploy.settings import DeploySettings

CRON_LOG = "logs/cron.log"


def render_logrotate(settings: DeploySettings) -> str:
    """``/etc/logrotate.d/robohost``."""
    return "\n".join(
        [
            "# robohost: rendered by 'robohost deploy render'. Install as /etc/logrotate.d/robohost;",
            "# check with 'logrotate -d /etc/logrotate.d/robohost'. robohost.log rotates itself; audit.log never does.",
            f"{settings.home}/{CRON_LOG} {{",
            "    weekly",
            "    rotate 12",
            "    compress",
            "    delaycompress",
            "    missingok",
            "    notifempty",
            f"    su {settings.user} {settings.user}",
            f"    create 0600 {settings.user} {settings.user}",
            "}",
            "",
        ]
    )


def log_cron_output(crontab: str, settings: DeploySettings) -> str:
    """A schedule export's crontab with each command's output appended to ``logs/cron.log``."""
    target = f" >> {settings.home}/{CRON_LOG} 2>&1"
    lines = [
        line if not line.strip() or line.lstrip().startswith("#") else line + target for line in crontab.splitlines()
    ]
    return "\n".join(lines) + "\n"
