"""The autoscaler: seconds from a load step to an added replica, and from the load's end back to
the minimum.

The test-only function runtime-test-scaling (tests/e2e/stack.runtime-test.yml: the sleeper
handler, scaled on requests in flight, 2 per replica, 1 to 3 replicas) is deployed, then loaded
with 6 callers back to back (200 ms per request, so about 6 in flight). Printed: when the
autoscaler decided to scale out and when the second replica was ready, both from the step; then,
with one caller left, when replicas were back at 1, from the end of the step (the platform's
stabilisation window included, printed beside it); and every response's status (all 200 when no
request was cut off). Runs against the dev platform (`make up`); ADS_PROFILE selects another.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime

import requests

from localplatform import gateway_api, images, toolchain
from localplatform.components.autoscaler import Autoscaler
from localplatform.faas_cli import env as faas_cli_env
from localplatform.profile import REPO_ROOT, current
from tests.scaling import LoadLoop, wait_replicas

STACK = REPO_ROOT / "tests" / "e2e" / "stack.runtime-test.yml"
FUNCTION = "runtime-test-scaling"
CALLERS = 6
HOLD_S = 10  # the step lasts this long after the second replica is ready


def faas_cli(profile, *args: str) -> None:
    subprocess.run(
        [str(toolchain.bin_path("faas-cli")), *args, "--gateway", profile.gateway_url],
        env=faas_cli_env(profile),
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )


def decided_at(autoscaler: Autoscaler, direction: str) -> float | None:
    """Unix time of the autoscaler's last decision in `direction`, if that is the last one."""
    last = (autoscaler.status().get(FUNCTION) or {}).get("lastDecision") or {}
    if not last or (last["to"] > last["from"]) != (direction == "up"):
        return None
    return datetime.fromisoformat(last["at"].replace("Z", "+00:00")).timestamp()


def main() -> None:
    profile = current()
    autoscaler = Autoscaler(profile)
    window = requests.get(f"{autoscaler.url}/status", timeout=5).json()["scaleDownWindow"]
    os.environ["UV_OFFLINE"] = "1"  # nothing to fetch: the template's wheels are in uv's cache
    images.build_stack(toolchain.bin_path("faas-cli"), STACK, profile)
    faas_cli(profile, "deploy", "-f", str(STACK), "--filter", FUNCTION)
    try:
        gateway_api.wait_available(profile, FUNCTION)
        status = lambda name: gateway_api.function_status(profile, name)  # noqa: E731
        url = f"{profile.gateway_url}/function/{FUNCTION}?ms=200"
        with LoadLoop(url, callers=CALLERS, max_s=120) as step:
            stepped = time.time()
            up = wait_replicas(status, FUNCTION, lambda n, ready: ready >= 2, timeout_s=60)
            decision_up = decided_at(autoscaler, "up")
            time.sleep(HOLD_S)
        ended = time.time()
        with LoadLoop(url, callers=1, max_s=300) as trickle:
            down = wait_replicas(status, FUNCTION, lambda n, ready: n == 1 == ready, 240)
            decision_down = decided_at(autoscaler, "down")
        codes = step.codes + trickle.codes
        decided = f"{decision_up - stepped:.1f} s" if decision_up else "-"
        print(f"  load step ({CALLERS} callers, 200 ms each) -> scale-out decided after {decided}")
        print(f"  load step -> second replica ready: {up:.1f} s" if up else "  no second replica")
        decided = f"{decision_down - ended:.1f} s" if decision_down else "-"
        print(f"  load end -> scale-in decided after {decided} (scale-down window {window})")
        print(f"  load end -> back to 1 replica: {down:.1f} s" if down else "  not back to 1")
        print(f"  responses: {dict(codes)} (anything but 200 was cut off or refused)")
    finally:
        faas_cli(profile, "remove", "-f", str(STACK), "--filter", FUNCTION)
