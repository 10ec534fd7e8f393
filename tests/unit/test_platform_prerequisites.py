"""A program the local platform needs but cannot find stops it with one line, never a traceback.

The platform looks every program up before it builds or starts anything
(localplatform/prerequisites.py); a program that goes missing anyway is caught where it is run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localplatform import prerequisites
from localplatform.__main__ import reported
from localplatform.component import Command, Component
from localplatform.prerequisites import MissingPrerequisite
from localplatform.profile import REPO_ROOT, Profile

NO_SUCH_PROGRAM = "ads-no-such-program-7f3c"


class Absent(Component):
    """A component whose program exists nowhere."""

    name = "absent"

    def command(self) -> Command:
        return Command([NO_SUCH_PROGRAM])

    def healthy(self) -> bool:
        return False

    def address(self) -> str:
        return "nowhere"


def unit_profile(state_dir: Path) -> Profile:
    return Profile(
        name="unit",
        state_dir=state_dir,
        bridge="adu0",
        bridge_cidr="10.99.0.0/16",
        netns_prefix="adu-",
    )


def test_a_component_whose_program_does_not_exist_fails_in_one_line(tmp_path, capsys):
    code = reported(Absent(unit_profile(tmp_path)).start)

    assert code == 1
    assert (
        capsys.readouterr().err
        == f"FAILED: {NO_SUCH_PROGRAM} is missing: install {NO_SUCH_PROGRAM}\n"
    )


def test_every_missing_program_is_named_with_what_installs_it():
    with pytest.raises(MissingPrerequisite) as caught:
        prerequisites.check(
            ["/nonexistent/redis-server", "/nonexistent/redis-cli", "sh", NO_SUCH_PROGRAM]
        )

    assert str(caught.value) == (
        f"{NO_SUCH_PROGRAM}, redis-cli, redis-server are missing: "
        f"apt-get install -y redis-server redis-tools (as root; {prerequisites.SCRIPT}); "
        f"install {NO_SUCH_PROGRAM}"
    )


def test_a_program_found_is_returned_with_its_path():
    assert (
        prerequisites.require("sh")
        == subprocess.run(
            ["sh", "-c", "command -v sh"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )


def test_the_platform_without_its_programs_stops_before_building_anything(tmp_path):
    """`build` on a machine where PATH holds none of them: one line, status 1, nothing made."""
    empty = tmp_path / "bin"
    empty.mkdir()
    local = tmp_path / "local"
    env = {
        "PATH": str(empty),
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "infra" / "local")]),
        "ADS_LOCAL_DIR": str(local),
        "ADS_TEST_INSTANCE": os.environ.get("ADS_TEST_INSTANCE", ""),
    }
    done = subprocess.run(
        [sys.executable, "-m", "localplatform", "--profile", "test", "build"],
        env=env,
        capture_output=True,
        text=True,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    names, how = line.removeprefix("FAILED: ").split(" are missing: ")
    assert {"go", "ip", "java", "mvn", "nsenter", "setpriv"} <= set(names.split(", "))
    assert "iproute2" in how and "util-linux" in how and "https://go.dev/dl/" in how
    assert not local.exists()
