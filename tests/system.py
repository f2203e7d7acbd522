"""System programs the tests need: found on PATH, or the test skips naming the Debian package.

``make test`` installs the packages of ``tools/system-packages.txt`` when it runs as root; elsewhere
these tests skip with a message naming the package (under ROBOHOST_STRICT_TESTS=1 a skip fails).
"""

from __future__ import annotations

import shutil

import pytest


def need_program(program: str, package: str) -> str:
    """The absolute path of ``program``; skip the test, naming ``package``, when it is not installed."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"needs {program!r}: install the Debian package {package!r} (make test does, as root)")
    return path
