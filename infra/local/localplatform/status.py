"""`make status`: each component with pid, health and address; each function with its
replicas, requests in flight and the autoscaler's last decision."""

from __future__ import annotations

import requests

from . import gateway_api, images, toolchain
from .components.autoscaler import Autoscaler
from .lifecycle import components
from .profile import Profile


def status(profile: Profile) -> int:
    """Print the components and functions; exit status 1 if a component is down."""
    down = 0
    print(f"{'component':<12} {'pid':>8}  {'health':<9} address")
    for component in components(profile):
        pid = component.pid()
        health = "up" if pid and component.healthy() else ("unhealthy" if pid else "down")
        down += health != "up"
        print(f"{component.name:<12} {pid or '-':>8}  {health:<9} {component.address()}")
    print(f"\nreplica runtime: of-watchdog {toolchain.OF_WATCHDOG.tag} in each replica")
    print_functions(profile)
    return 1 if down else 0


def print_functions(profile: Profile) -> None:
    """Each function: replicas (desired/available), requests in flight now, and the
    autoscaler's last decision (or why it holds)."""
    inflight: dict[str, int] = {}
    try:
        url = f"http://127.0.0.1:{profile.ports.provider_ops}/replicas"
        for replica in requests.get(url, timeout=2).json():
            fn = replica["function"]
            inflight[fn] = inflight.get(fn, 0) + replica["inflight"]
    except (requests.RequestException, ValueError, KeyError):
        pass
    scaling = Autoscaler(profile).status()
    try:
        functions = gateway_api.system(profile, "GET", "/system/functions")
        deployed = {f["name"]: f for f in functions}
    except (requests.RequestException, ValueError):
        deployed = {}
    declared = [fn.name for stack in images.STACKS for fn in images.read_stack(stack)]
    names = declared + sorted(set(deployed) - set(declared))  # test functions, say
    only = profile.autoscaling.only_prefix
    print(f"\n{'function':<20} {'replicas':>8} {'available':>9} {'in flight':>9}  autoscaler")
    for name in names:
        s = deployed.get(name) or gateway_api.function_status(profile, name) or {}
        note = describe_scaling(scaling.get(name))
        if only and not name.startswith(only):
            note = f"not managed here (this profile autoscales only {only}*)"
        print(
            f"{name:<20} {s.get('replicas', '-'):>8} {s.get('availableReplicas', '-'):>9}"
            f" {inflight.get(name, '-'):>9}  {note}"
        )


def describe_scaling(state: dict | None) -> str:
    """`rps 12.3 (target 50/replica, 1..5), on-target; last: 1->3 load-above-target at ...`."""
    if not state:
        return "not autoscaled"
    zero = ", zero" if state.get("zero") else ""
    text = (
        f"{state['type']} {state['load']:.1f} (target {state['target']:g}/replica,"
        f" {state['min']}..{state['max']}{zero}), {state['reason']}"
    )
    last = state.get("lastDecision")
    if last:
        at = last["at"][11:19]
        text += f"; last: {last['from']}->{last['to']} {last['reason']} at {at} UTC"
        if last.get("error"):
            text += f" (failed: {last['error']})"
    return text
