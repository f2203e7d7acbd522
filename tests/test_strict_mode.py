"""tests/conftest.py: under ROBOHOST_STRICT_TESTS=1 every kind of skip fails the run; otherwise skips stay skips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SKIPPING_TESTS = """
import pytest

def test_passes():
    pass

def test_skips_in_body():
    pytest.skip("not today")

@pytest.mark.skipif(True, reason="never here")
def test_skipped_by_mark():
    pass

def test_on_each_database(db_url):
    assert db_url
"""
SKIPPED_MODULE = 'import pytest\n\npytest.importorskip("no_such_module_robohost")\n'


def _run_pytest(tmp_path: Path, strict: bool) -> subprocess.CompletedProcess[str]:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_skipping.py").write_text(SKIPPING_TESTS)
    (tmp_path / "test_skipped_module.py").write_text(SKIPPED_MODULE)
    env = {k: v for k, v in os.environ.items() if k not in {"ROBOHOST_TEST_PG", "PYTEST_ADDOPTS"}}
    env.pop("ROBOHOST_STRICT_TESTS", None)
    if strict:
        env["ROBOHOST_STRICT_TESTS"] = "1"
    command = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"]
    command += ["--continue-on-collection-errors", str(tmp_path)]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_skips_fail_only_under_strict(tmp_path: Path, strict: bool) -> None:
    result = _run_pytest(tmp_path, strict)
    summary = result.stdout.strip().splitlines()[-1]
    if not strict:
        assert result.returncode == 0, result.stdout
        assert "2 passed, 4 skipped" in summary, summary  # body, mark, db_url[postgresql], module
        return
    assert result.returncode != 0, result.stdout
    assert "skipped" not in summary, summary
    assert "2 passed" in summary, summary
    assert result.stdout.count("ROBOHOST_STRICT_TESTS=1 counts as a failure") >= 3, result.stdout
    assert "ROBOHOST_STRICT_TESTS=1 forbids skipping" in result.stdout, result.stdout
