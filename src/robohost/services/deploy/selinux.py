"""An SELinux policy module confining ``robohost serve``: type enforcement (``robohost.te``) and file contexts
(``robohost.fc``).

systemd (``init_t``) starts the program labelled ``robohost_exec_t`` in the domain ``robohost_t``, which may
manage files only in the robot home (``robohost_home_t``), read the system's libraries, Python and
configuration, listen on the dashboard's port (``robohost_port_t``, assigned with ``semanage port``) and connect
out to HTTP(S), PostgreSQL, SMTP and syslog-TLS ports. Written without refpolicy macros (an explicit
``require`` block) so that ``checkmodule -M -m`` and ``semodule_package`` build it anywhere.
"""

from __future__ import annotations

import re

from robohost.services.deploy.settings import DeploySettings

MODULE = "robohost"
VERSION = "1.0.0"

_TE = """\
# robohost.te: rendered by 'robohost deploy render'. Build and install (on an SELinux host):
#   checkmodule -M -m -o robohost.mod robohost.te
#   semodule_package -o robohost.pp -m robohost.mod -f robohost.fc
#   semodule -i robohost.pp && restorecon -R {home} {executable}
{port_lines}
module robohost {version};

require {{
    type init_t;
    type bin_t;
    type lib_t;
    type usr_t;
    type etc_t;
    type locale_t;
    type proc_t;
    type sysfs_t;
    type tmp_t;
    type devlog_t;
    type syslogd_var_run_t;
    type net_conf_t;
    type cert_t;
    type urandom_device_t;
    type random_device_t;
    type null_device_t;
    type http_port_t;
    type postgresql_port_t;
    type smtp_port_t;
    type syslog_tls_port_t;
    type dns_port_t;
    type node_t;
    type init_var_run_t;
    class process {{ transition sigchld signal fork getsched setsched getattr }};
    class file {{ read write create open getattr setattr append rename unlink link lock ioctl
        execute execute_no_trans map entrypoint }};
    class dir {{ read write create open getattr setattr search add_name remove_name rmdir rename }};
    class lnk_file {{ read getattr }};
    class chr_file {{ read write open getattr ioctl }};
    class sock_file {{ write getattr }};
    class unix_dgram_socket {{ create connect write sendto getattr setopt }};
    class unix_stream_socket {{ create connect read write getattr setopt shutdown }};
    class tcp_socket {{ create bind listen accept connect read write getattr setopt getopt shutdown
        name_bind name_connect node_bind }};
    class udp_socket {{ create connect read write getattr setopt getopt shutdown }};
}}

type robohost_t;
type robohost_exec_t;
type robohost_home_t;
type robohost_port_t;

# systemd starts robohost_exec_t in robohost_t
allow init_t robohost_exec_t:file {{ read open getattr execute map }};
allow init_t robohost_t:process {{ transition sigchld signal }};
allow robohost_t robohost_exec_t:file {{ read open getattr execute map entrypoint }};
type_transition init_t robohost_exec_t:process robohost_t;
allow robohost_t self:process {{ fork sigchld signal getsched setsched getattr }};

# the Python interpreter, its libraries and the system's configuration: read and run only
allow robohost_t {{ bin_t lib_t usr_t }}:dir {{ read open getattr search }};
allow robohost_t {{ bin_t lib_t usr_t }}:file {{ read open getattr execute execute_no_trans map }};
allow robohost_t {{ bin_t lib_t usr_t etc_t }}:lnk_file {{ read getattr }};
allow robohost_t {{ etc_t locale_t net_conf_t cert_t }}:dir {{ read open getattr search }};
allow robohost_t {{ etc_t locale_t net_conf_t cert_t }}:file {{ read open getattr map }};
allow robohost_t {{ proc_t sysfs_t }}:dir {{ read open getattr search }};
allow robohost_t {{ proc_t sysfs_t }}:file {{ read open getattr }};
allow robohost_t {{ urandom_device_t random_device_t null_device_t }}:chr_file {{ read write open getattr ioctl }};
allow robohost_t tmp_t:dir {{ read write open getattr search add_name remove_name }};

# the robot home: the only place it writes
allow robohost_t robohost_home_t:dir {{ read write create open getattr setattr search
    add_name remove_name rmdir rename }};
allow robohost_t robohost_home_t:file {{ read write create open getattr setattr append
    rename unlink link lock ioctl map }};
allow robohost_t robohost_home_t:lnk_file {{ read getattr }};

# sd_notify and journald
allow robohost_t self:unix_dgram_socket {{ create connect write sendto getattr setopt }};
allow robohost_t self:unix_stream_socket {{ create connect read write getattr setopt shutdown }};
allow robohost_t {{ devlog_t syslogd_var_run_t init_var_run_t }}:sock_file {{ write getattr }};

# the dashboard's port
allow robohost_t self:tcp_socket {{ create bind listen accept connect read write getattr setopt getopt shutdown }};
allow robohost_t robohost_port_t:tcp_socket name_bind;
allow robohost_t node_t:tcp_socket node_bind;

# outbound: market data and brokers (HTTP/S), PostgreSQL, mail, remote syslog over TLS, DNS
allow robohost_t {{ http_port_t postgresql_port_t smtp_port_t syslog_tls_port_t dns_port_t }}:tcp_socket name_connect;
allow robohost_t self:udp_socket {{ create connect read write getattr setopt getopt shutdown }};
"""


def render_te(settings: DeploySettings) -> str:
    """``robohost.te``, the type enforcement."""
    port_lines = "\n".join(
        f"#   semanage port -a -t robohost_port_t -p tcp {port}   (-m instead of -a if the port has a type)"
        for port in settings.open_ports or (8443,)
    )
    return _TE.format(version=VERSION, home=settings.home, executable=settings.executable, port_lines=port_lines)


def _regex_path(path: str) -> str:
    """A path as a file-context regular expression (its special characters escaped)."""
    return re.sub(r"([.+?*()\[\]{}^$|\\])", r"\\\1", path)


def render_fc(settings: DeploySettings) -> str:
    """``robohost.fc``, the file contexts: the program and the home."""
    return "\n".join(
        [
            "# robohost.fc: rendered by 'robohost deploy render' (packaged with robohost.te; then restorecon).",
            f"{_regex_path(str(settings.executable))}\t--\tsystem_u:object_r:robohost_exec_t:s0",
            f"{_regex_path(str(settings.home))}(/.*)?\tsystem_u:object_r:robohost_home_t:s0",
            "",
        ]
    )
