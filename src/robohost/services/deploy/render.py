"""``robohost deploy render``: every hardening file for a home, as relative path -> text, and writing them.

The layout under the output folder (``INSTALL.md`` there says where each goes)::

    systemd/robohost.service             the hardened robohost serve unit
    systemd/robohost-*.{service,timer}   the schedule as timers (schedule "systemd")
    cron/robohost.crontab                the schedule as crontab lines (schedule "cron")
    nftables/robohost.nft                the firewall
    iptables/rules.v4, rules.v6          the same for hosts without nftables
    fail2ban/filter.d/robohost-auth.conf, fail2ban/jail.d/robohost.local
    selinux/robohost.te, robohost.fc     the SELinux module
    ssh/sshd_config.d/50-robohost.conf   the sshd drop-in
    logrotate/robohost                   logrotate rules

Imports the configuration, the schedule export and the artifact modules; never runs a system tool.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from robohost.config.loader import Home
from robohost.services.deploy import fail2ban, firewall, logrotate, selinux, sshd, systemd_unit
from robohost.services.deploy.settings import CREDENTIAL_NAME, DEFAULT_CREDENTIAL_FILE, DeploySettings
from robohost.services.scheduling.export import export_cron, export_systemd
from robohost.services.scheduling.plan import Schedule

ScheduleKind = Literal["none", "cron", "systemd"]


def settings_for(
    home: Home,
    *,
    executable: Path,
    user: str = "robohost",
    ssh_port: int = 22,
    dashboard_port: int | None = None,
    credential_file: Path = DEFAULT_CREDENTIAL_FILE,
) -> DeploySettings:
    """The settings for ``home``: the dashboard's ports from ``[web]`` unless ``dashboard_port`` is given."""
    web = getattr(home.config, "web", None)
    enabled = web is not None and bool(getattr(web, "enabled", True))
    http_port = int(getattr(web, "http_port", 0) or 0) if enabled else 0
    if dashboard_port is None:
        dashboard_port = int(getattr(web, "port", 8443)) if enabled else 0
    return DeploySettings(
        home=home.path,
        executable=executable,
        user=user,
        ssh_port=ssh_port,
        dashboard_port=dashboard_port,
        http_port=http_port,
        credential_file=credential_file,
    )


def schedule_files(
    kind: ScheduleKind,
    schedules: Mapping[str, Schedule],
    settings: DeploySettings,
    *,
    now: datetime,
    days: int,
    local_zone: ZoneInfo,
) -> dict[str, str]:
    """The schedule (``robohost schedule export``) as crontab or hardened timer units; nothing for ``none``."""
    command = str(settings.executable)
    if kind == "cron":
        text = export_cron(schedules, home=settings.home, command=command, now=now, days=days, local_zone=local_zone)
        return {"cron/robohost.crontab": logrotate.log_cron_output(text, settings)}
    if kind == "systemd":
        units = export_systemd(schedules, home=settings.home, command=command, now=now, days=days)
        return {
            f"systemd/{name}": systemd_unit.harden_trigger_unit(text, settings) if name.endswith(".service") else text
            for name, text in units.items()
        }
    return {}


def render_files(settings: DeploySettings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every file, by path relative to the output folder; ``extra`` adds the schedule's."""
    files = {
        f"systemd/{systemd_unit.SERVICE_NAME}": systemd_unit.render_service(settings),
        "nftables/robohost.nft": firewall.render_nftables(settings),
        "iptables/rules.v4": firewall.render_iptables(settings),
        "iptables/rules.v6": firewall.render_iptables(settings, ipv6=True),
        f"fail2ban/filter.d/{fail2ban.FILTER_NAME}.conf": fail2ban.render_filter(),
        "fail2ban/jail.d/robohost.local": fail2ban.render_jail(settings),
        "selinux/robohost.te": selinux.render_te(settings),
        "selinux/robohost.fc": selinux.render_fc(settings),
        "ssh/sshd_config.d/50-robohost.conf": sshd.render_sshd(settings),
        "logrotate/robohost": logrotate.render_logrotate(settings),
        **(extra or {}),
    }
    files["INSTALL.md"] = render_install(settings, sorted(files))
    return files


def render_install(settings: DeploySettings, names: list[str]) -> str:
    """``INSTALL.md``: what each file is and the commands that install it."""
    timers = " ".join(Path(n).name for n in names if n.startswith("systemd/") and n.endswith(".timer"))
    lines = [
        f"# Installing robohost hardened (home {settings.home}, user {settings.user})",
        "",
        "Rendered by `robohost deploy render`; read each file before installing it. As root:",
        "",
        "```sh",
        f"useradd --system --home-dir {settings.home} --shell /usr/sbin/nologin {settings.user}",
        f"chown -R {settings.user}:{settings.user} {settings.home}",
        f"install -d -m 0700 {settings.credential_file.parent}",
        f"systemd-creds encrypt --name={CREDENTIAL_NAME} {settings.home}/secrets.toml {settings.credential_file}",
        f"shred -u {settings.home}/secrets.toml   # the credential replaces it",
        "install -m 0644 systemd/robohost.service /etc/systemd/system/",
        "systemctl daemon-reload && systemctl enable --now robohost.service",
        "systemd-analyze security robohost.service",
        "nft -c -f nftables/robohost.nft && install -D -m 0644 nftables/robohost.nft /etc/nftables.d/robohost.nft",
        "#   and add 'include \"/etc/nftables.d/robohost.nft\"' to /etc/nftables.conf; systemctl enable --now nftables",
        "#   (hosts without nftables: iptables-restore < iptables/rules.v4; ip6tables-restore < iptables/rules.v6)",
        "cp fail2ban/filter.d/robohost-auth.conf /etc/fail2ban/filter.d/",
        "cp fail2ban/jail.d/robohost.local /etc/fail2ban/jail.d/ && systemctl restart fail2ban",
        "install -m 0644 ssh/sshd_config.d/50-robohost.conf /etc/ssh/sshd_config.d/ && sshd -t && systemctl reload ssh",
        "install -m 0644 logrotate/robohost /etc/logrotate.d/robohost",
        "(cd selinux && checkmodule -M -m -o robohost.mod robohost.te && \\",
        "  semodule_package -o robohost.pp -m robohost.mod -f robohost.fc && semodule -i robohost.pp)",
        f"restorecon -R {settings.home} {settings.executable}",
    ]
    if settings.open_ports:
        ports = " ".join(str(p) for p in settings.open_ports)
        lines.append(
            f"for p in {ports}; do semanage port -a -t robohost_port_t -p tcp $p "
            "|| semanage port -m -t robohost_port_t -p tcp $p; done"
        )
    if timers:
        lines += [
            "install -m 0644 systemd/robohost-*.service systemd/robohost-*.timer /etc/systemd/system/",
            f"systemctl daemon-reload && systemctl enable --now {timers}",
        ]
    if "cron/robohost.crontab" in names:
        lines.append(f"crontab -u {settings.user} cron/robohost.crontab   # or merge it with crontab -e")
    lines += ["```", "", "Files:", "", *(f"- `{name}`" for name in names), ""]
    return "\n".join(lines)


def write_files(out: Path, files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` under ``out`` (created as needed, mode 0644: they hold no secret); the paths written."""
    written = []
    for name, text in sorted(files.items()):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
        written.append(path)
    return written
