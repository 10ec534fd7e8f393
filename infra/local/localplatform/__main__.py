"""python -m localplatform [--profile dev|test] build|start|up|stop|down|status|clean|test|seed|
reconcile.

`seed [--count N] [--seed S]` loads demo campaigns through the campaigns API.
`reconcile [--date YYYY-MM-DD]` compares a day's numbers in every record (exit 1 on a difference).

A failure the platform expects (a missing program, a component that does not come up, a build
that fails) ends with one `FAILED: ...` line on stderr and exit status 1, not a traceback.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable

from . import demo_data, lifecycle, network, prerequisites, reconcile, suite
from .build import build
from .component import ComponentError
from .images import ImageBuildError
from .profile import PROFILES, current
from .status import status
from .toolchain import ToolchainError

# Commands that talk to the services over 127.0.0.1 must run in the profile's host namespace;
# stopping needs only the recorded pids, so it works even if that namespace is gone.
NEEDS_HOST_NETNS = {"start", "up", "status", "seed", "reconcile"}
TAKES_OPTIONS = {"seed", "reconcile"}
# Failures whose message says everything: printed as one FAILED line, without a traceback.
EXPECTED_FAILURES = (
    prerequisites.MissingPrerequisite,
    ComponentError,
    ToolchainError,
    ImageBuildError,
)


def main(argv: list[str] | None = None) -> int:
    return reported(lambda: _run(argv))


def reported(action: Callable[[], int | None]) -> int:
    """`action`'s exit status; an expected failure becomes one FAILED line and status 1."""
    try:
        return action() or 0
    except EXPECTED_FAILURES as exc:
        failure: Exception = exc
    except FileNotFoundError as exc:  # a program run without being checked first
        missing = prerequisites.from_error(exc)
        if missing is None:
            raise
        failure = missing
    print(f"FAILED: {failure}", file=sys.stderr, flush=True)
    return 1


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="localplatform", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None)
    parser.add_argument(
        "command",
        choices=[
            "build",
            "start",
            "up",
            "stop",
            "down",
            "status",
            "clean",
            "test",
            "seed",
            "reconcile",
        ],
    )
    parser.add_argument(
        "args", nargs=argparse.REMAINDER, help="pytest arguments for `test`; `seed` options"
    )
    ns = parser.parse_args(argv)
    profile = PROFILES[ns.profile] if ns.profile else current()
    if ns.command == "test":
        return suite.run(PROFILES["test"], ns.args)
    if ns.command in NEEDS_HOST_NETNS and not network.inside_host_netns(profile):
        if ns.command == "up":
            build(profile)
            network.ensure_host_netns(profile)
            ns.command = "start"
        elif not network.host_netns_exists(profile):
            print(f"the {profile.name} platform is not running (no namespace {profile.host_netns})")
            return 1
        cmd = [sys.executable, "-m", "localplatform", "--profile", profile.name, ns.command]
        cmd += ns.args if ns.command in TAKES_OPTIONS else []
        return subprocess.run(network.in_host_netns(profile, cmd)).returncode
    if ns.command == "build":
        build(profile)
    elif ns.command == "start":
        lifecycle.start(profile)
    elif ns.command == "up":
        build(profile)
        lifecycle.start(profile)
    elif ns.command in ("stop", "down"):
        lifecycle.stop(profile)
    elif ns.command == "status":
        return status(profile)
    elif ns.command == "clean":
        lifecycle.clean(profile)
    elif ns.command == "seed":
        options = argparse.ArgumentParser(prog="localplatform seed")
        options.add_argument("--count", type=int, default=demo_data.DEFAULT_COUNT)
        options.add_argument("--seed", type=int, default=demo_data.DEFAULT_SEED)
        seeding = options.parse_args(ns.args)
        created = demo_data.seed(profile, seeding.count, seed=seeding.seed)
        print(f"==> demo data: {created} campaigns created through the campaigns API")
    elif ns.command == "reconcile":
        return reconcile.run(profile, ns.args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
