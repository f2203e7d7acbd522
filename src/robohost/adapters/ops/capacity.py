"""Readings of the machine (psutil): CPU, memory, file systems, processes; and certificate expiry dates.

Every function measures now and returns plain values; deciding what is too much is the health service's job.
Nothing here keeps state.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
from cryptography import x509


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """A file system, seen from ``path``."""

    path: str
    total: int
    free: int

    @property
    def free_percent(self) -> float:
        """Free space in percent of the total."""
        return 100.0 * self.free / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """A process (with its children: the writer processes of the runs)."""

    pid: int
    name: str
    rss: int
    open_files: int
    max_open_files: int | None


@dataclass(frozen=True, slots=True)
class CertificateExpiry:
    """When the soonest-expiring certificate of a PEM file expires, or why it could not be read."""

    path: str
    expires: datetime | None
    error: str | None = None


def cpu_load() -> float:
    """The 5-minute load average per CPU core."""
    return os.getloadavg()[1] / (os.cpu_count() or 1)


def cpu_percent(sample_s: float = 0.2) -> float:
    """CPU use over a short sample, in percent of all cores."""
    return float(psutil.cpu_percent(interval=sample_s))


def memory_percent() -> float:
    """RAM in use (not available to new work), in percent."""
    return float(psutil.virtual_memory().percent)


def disk_usage(path: Path) -> DiskUsage:
    """The file system holding ``path`` (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return DiskUsage(str(path), usage.total, usage.free)


def process_usage(pid: int) -> ProcessUsage | None:
    """Memory (resident, children included) and open files of process ``pid``; None when it is gone."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            family = [proc, *proc.children(recursive=True)]
            rss = 0
            files = 0
            for member in family:
                try:
                    rss += member.memory_info().rss
                    files += member.num_fds()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            try:
                soft = proc.rlimit(psutil.RLIMIT_NOFILE)[0]
            except (AttributeError, psutil.AccessDenied):
                soft = -1
            name = proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return ProcessUsage(pid, name, rss, files, soft if soft and soft > 0 else None)


def certificate_expiry(path: Path) -> CertificateExpiry:
    """The earliest ``notAfter`` of the certificates in a PEM file."""
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except FileNotFoundError:
        return CertificateExpiry(str(path), None, "no such file")
    except (OSError, ValueError) as exc:
        return CertificateExpiry(str(path), None, f"not readable as PEM certificates: {exc}")
    return CertificateExpiry(str(path), min(c.not_valid_after_utc for c in certs).astimezone(UTC))
