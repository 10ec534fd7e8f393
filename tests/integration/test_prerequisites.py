"""infra/local/prerequisites.sh, which `make up` and `make test` run first: a missing prerequisite
is one plain line and a non-zero exit, never a traceback or half an install."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "local" / "prerequisites.sh"
NO_SUCH_PACKAGE = "ads-no-such-package-0"


def _check(
    purpose: str, *, as_user: str | None = None, extra: str = ""
) -> subprocess.CompletedProcess:
    # HOME: somewhere any user may write (`go env` wants one).
    env = {**os.environ, "ADS_EXTRA_PACKAGES": extra, "HOME": tempfile.gettempdir()}
    command = [str(SCRIPT), purpose]
    if as_user is not None:
        user = [f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups"]
        command = ["setpriv", *user, *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _one_failure_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("FAILED: "), lines
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


@pytest.mark.parametrize("purpose", ["up", "test"])
def test_everything_the_platform_needs_is_installed_here(purpose: str) -> None:
    """`make test` ran the script before this test: a second run finds nothing to do."""
    result = _check(purpose)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_package_no_source_offers_is_named_in_one_line() -> None:
    line = _one_failure_line(_check("up", extra=NO_SUCH_PACKAGE))
    assert f"no package source offers {NO_SUCH_PACKAGE}" in line


def test_without_root_nothing_is_installed_and_the_command_is_given() -> None:
    line = _one_failure_line(_check("up", as_user="65534", extra=NO_SUCH_PACKAGE))
    assert line == (
        f"FAILED: missing packages: {NO_SUCH_PACKAGE}; install them with: "
        f"sudo apt-get install -y --no-install-recommends {NO_SUCH_PACKAGE}"
    )


def test_an_unknown_purpose_is_a_usage_error() -> None:
    result = _check("deploy")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: ")
