"""`make test`: a fresh test platform in its own network namespace, pytest inside it, then
the platform stopped and checked for anything left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import lifecycle, network
from .build import build
from .profile import REPO_ROOT, Profile
from .progress import say


def run(profile: Profile, pytest_args: list[str]) -> int:
    """pytest's exit status, or 1 if the platform did not start or left something behind."""
    if profile.host_netns is None:
        raise SystemExit("tests run only on a profile with its own host namespace")
    # A crashed earlier run may have left processes or state behind. build/ stays: another
    # test instance may be building from it right now.
    lifecycle.reset(profile)
    network.remove_host_netns(profile)
    build(profile)
    network.ensure_host_netns(profile)
    me = [sys.executable, "-m", "localplatform", "--profile", profile.name]
    try:
        subprocess.run(network.in_host_netns(profile, [*me, "start"]), check=True)
        env = {
            **os.environ,
            **profile.host_env(),
            "ADS_PROFILE": profile.name,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(Path(__file__).parents[1])]),
        }
        pytest = [sys.executable, "-m", "pytest", *pytest_args]
        code = subprocess.run(
            network.in_host_netns(profile, pytest), env=env, cwd=REPO_ROOT
        ).returncode
    except subprocess.CalledProcessError:
        say(f"the test platform did not start; logs in {profile.log_dir}")
        code = 1
    finally:
        subprocess.run(network.in_host_netns(profile, [*me, "stop"]))
        network.remove_host_netns(profile)
    left = lifecycle.leftovers(profile)
    if left:
        say(f"FAILED: the test platform left behind: {', '.join(left)}")
        return code or 1
    return code
