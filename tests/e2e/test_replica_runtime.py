"""The replica runtime and the autoscaler, through the real gateway, provider and Prometheus.

Every replica is the real of-watchdog (mode=http) in its network namespace in front of the
template's server. Four test-only functions (tests/e2e/stack.runtime-test.yml, the `sleeper`
handler that holds a request as long as it is told) are built and deployed here with faas-cli
and removed afterwards:

- runtime-test-limits (max_inflight 1, exec_timeout 2 s): its replica's process is a live
  of-watchdog with the template's server as its child; a second request while one is in flight
  gets of-watchdog's 429; a request past exec_timeout gets of-watchdog's 504 (or 502), and the
  same replica answers afterwards; Prometheus has both answers in of-watchdog's
  http_requests_total, scraped from the watchdog's port and labelled with function and replica.
- runtime-drain (scaled by hand): requests that outlast of-watchdog's healthcheck_interval, in
  flight on two replicas when the function is scaled to one, all complete with 200.
- runtime-test-idle (com.openfaas.scale.zero, zero-duration 5 s): the autoscaler takes it to
  zero replicas through the provider (the CE gateway refuses 0) and leaves it there.
- runtime-test-scaling (capacity, 2 requests in flight per replica, 1 to 3 replicas): a load
  step of 6 callers makes it rise to at least 2 replicas within 30 s; once the load falls to
  one caller it returns to 1 after the test platform's 15 s stabilisation window; every
  response of both loops is a 200 (the scale-in drains); the autoscaler's decision counter,
  read from Prometheus, shows both directions; `make status` shows the requests in flight and
  the last decision.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from localplatform import gateway_api, images, toolchain
from localplatform.profile import REPO_ROOT
from tests.e2e.test_bid_support import gateway_invocations
from tests.scaling import LoadLoop, prometheus_value, wait_replicas
from tests.support import wait_for

STACK = REPO_ROOT / "tests" / "e2e" / "stack.runtime-test.yml"
LIMITS = "runtime-test-limits"
SCALING = "runtime-test-scaling"
IDLE = "runtime-test-idle"
DRAIN = "runtime-drain"
SCALE_UP_BOUND_S = 30.0  # the bound from the load step to a second replica


@pytest.fixture(scope="module")
def deployed(platform) -> Iterator[None]:
    # Built here, inside the test namespace: offline, from uv's cache.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UV_OFFLINE", "1")
        images.build_stack(toolchain.bin_path("faas-cli"), STACK, platform.profile)
    platform.faas_cli("deploy", "-f", str(STACK), "--gateway", platform.gateway)
    try:
        # Not IDLE: the autoscaler may take it to zero 5 s after it is ready, which is what its
        # own test waits for.
        for name in (LIMITS, SCALING, DRAIN):
            gateway_api.wait_available(platform.profile, name)
        yield
    finally:
        platform.faas_cli("remove", "-f", str(STACK), "--gateway", platform.gateway, check=False)


def provider_replicas(platform, function: str) -> list[dict]:
    url = f"http://127.0.0.1:{platform.profile.ports.provider_ops}/replicas"
    return [r for r in requests.get(url, timeout=5).json() if r["function"] == function]


def in_flight(platform, function: str) -> int:
    return sum(r["inflight"] for r in provider_replicas(platform, function))


def prometheus(platform) -> str:
    return f"http://127.0.0.1:{platform.profile.ports.prometheus}"


def test_each_replica_is_a_live_of_watchdog_in_front_of_the_template_server(platform, deployed):
    (replica,) = provider_replicas(platform, LIMITS)
    pid = replica["pid"]
    assert Path(f"/proc/{pid}/exe").resolve().name == "of-watchdog", replica
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    commands = [Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0") for child in children]
    assert any(b"index.py" in argv for argv in commands), commands
    # of-watchdog's own endpoint, through the gateway: its lock file exists.
    health = requests.get(f"{platform.gateway}/function/{LIMITS}/_/health", timeout=5)
    assert (health.status_code, health.text) == (200, "OK"), health.text


def test_a_replica_at_its_in_flight_cap_answers_429(platform, deployed):
    url = f"{platform.gateway}/function/{LIMITS}"
    held: list[requests.Response] = []
    holder = threading.Thread(
        target=lambda: held.append(requests.get(f"{url}?ms=1500", timeout=10))
    )
    holder.start()
    assert wait_for(lambda: in_flight(platform, LIMITS) == 1, timeout_s=5), "nothing in flight"
    refused = requests.get(url, timeout=10)
    holder.join()
    assert held[0].status_code == 200, held[0].text
    assert refused.status_code == 429, refused.text
    assert "Concurrent request limit exceeded" in refused.text, refused.text


def test_a_handler_past_exec_timeout_gets_the_watchdogs_answer_and_the_replica_stays(
    platform, deployed
):
    (before,) = provider_replicas(platform, LIMITS)
    started = time.monotonic()
    r = requests.get(f"{platform.gateway}/function/{LIMITS}?ms=4000", timeout=10)
    took = time.monotonic() - started
    assert r.status_code in (502, 504), r.text
    assert took < 4.0, f"the answer came after {took:.1f}s: the handler's sleep, not exec_timeout"
    # While its one slot was held, of-watchdog's /_/ready said 429 and the replica may have
    # left rotation for a moment, as a pod leaves its endpoints; it comes back unchanged.
    assert wait_for(lambda: provider_replicas(platform, LIMITS)[0]["ready"], timeout_s=10)
    again = requests.get(f"{platform.gateway}/function/{LIMITS}?ms=0", timeout=10)
    assert (again.status_code, again.text) == (200, before["replica"]), again.text
    (after,) = provider_replicas(platform, LIMITS)
    assert (after["replica"], after["pid"], after["restarts"]) == (
        before["replica"],
        before["pid"],
        0,
    )


def test_scaling_in_drains_the_requests_in_flight(platform, deployed):
    def scale(replicas: int) -> None:
        r = platform.system(
            "POST",
            f"/system/scale-function/{DRAIN}",
            json={"serviceName": DRAIN, "replicas": replicas},
        )
        assert r.status_code in (200, 202), r.text

    def ready() -> int:
        return sum(r["ready"] for r in provider_replicas(platform, DRAIN))

    scale(2)
    assert wait_for(lambda: ready() == 2, timeout_s=30), provider_replicas(platform, DRAIN)
    answers: list[requests.Response] = []

    def call() -> None:
        answers.append(requests.get(f"{platform.gateway}/function/{DRAIN}?ms=3000", timeout=20))

    callers = [threading.Thread(target=call) for _ in range(4)]
    for caller in callers:
        caller.start()
    assert wait_for(
        lambda: sorted(r["inflight"] for r in provider_replicas(platform, DRAIN)) == [2, 2],
        timeout_s=5,
    ), provider_replicas(platform, DRAIN)
    scale(1)
    for caller in callers:
        caller.join()
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.text for a in answers}) == 2, "both replicas answered, the removed one too"
    assert wait_for(lambda: len(provider_replicas(platform, DRAIN)) == 1, timeout_s=20)


def test_prometheus_has_the_answers_in_of_watchdogs_metrics(platform, deployed):
    (replica,) = provider_replicas(platform, LIMITS)
    base = f'http_requests_total{{function_name="{LIMITS}",replica="{replica["replica"]}"'

    def counted() -> dict[str, float]:
        return {
            code: prometheus_value(prometheus(platform), f'{base},code="{code}",method="get"}}')
            for code in ("200", "429", "504")
        }

    def all_counted() -> dict[str, float] | None:
        c = counted()
        return c if all(v >= 1 for v in c.values()) else None

    assert wait_for(all_counted, timeout_s=20), counted()
    # Scraped from the replica's of-watchdog itself, on its port 8081.
    from_the_watchdog = prometheus_value(
        prometheus(platform),
        f'count(http_requests_in_flight{{function_name="{LIMITS}",instance="{replica["ip"]}:8081"}})',
    )
    assert from_the_watchdog == 1


def test_load_step_scales_out_within_30s_and_back_to_min_without_a_failed_request(
    platform, deployed
):
    def status(name: str) -> dict | None:
        return gateway_api.function_status(platform.profile, name)

    url = f"{platform.gateway}/function/{SCALING}?ms=200"
    assert status(SCALING)["replicas"] == 1
    with LoadLoop(url, callers=6, max_s=60) as step:
        scaled_out = wait_replicas(status, SCALING, lambda n, ready: ready >= 2, timeout_s=45)
        # Keep the step a little longer so the new replicas serve, then end it.
        during = status_line(platform, SCALING)
    heavy = step.codes
    with LoadLoop(url, callers=1, max_s=90) as trickle:
        # The stabilisation window is 15 s in the test profile, plus the metrics' own range.
        scaled_in = wait_replicas(status, SCALING, lambda n, ready: n == 1 == ready, timeout_s=75)
        time.sleep(2)  # requests keep arriving while the last replicas drain
    light = trickle.codes

    print(f"\n  scale-out after the load step: {scaled_out}s; back to 1 after: {scaled_in}s")
    assert scaled_out is not None and scaled_out <= SCALE_UP_BOUND_S, scaled_out
    assert scaled_in is not None, status(SCALING)
    assert set(heavy) == {"200"} and heavy["200"] > 50, heavy
    # function, replicas, available, in flight, then the autoscaler's state
    name, _, _, busy, *_ = during.split()
    assert name == SCALING and int(busy) > 0 and "load-above-target at" in during, during
    assert set(light) == {"200"} and light["200"] > 20, light

    def decisions(direction: str) -> float:
        return prometheus_value(
            prometheus(platform),
            f'autoscaler_decisions_total{{function="{SCALING}",direction="{direction}"}}',
        )

    assert wait_for(lambda: decisions("up") >= 1 and decisions("down") >= 1, timeout_s=20), (
        decisions("up"),
        decisions("down"),
    )

    def desired() -> float:
        return prometheus_value(
            prometheus(platform), f'autoscaler_desired_replicas{{function="{SCALING}"}}'
        )

    # Prometheus scrapes the autoscaler every 5 s: the last decision may not be there yet.
    assert wait_for(lambda: desired() == 1, timeout_s=15), desired()
    after = status_line(platform, SCALING)
    assert "load-below-target" in after and "capacity" in after, after


def test_a_load_step_that_never_passes_the_gateway_scales_out_all_the_same(platform, deployed):
    """serve calls bid at the provider's invocation listener, not through the gateway. The
    autoscaler reads each replica's of-watchdog metrics, so that load scales a function out as
    the gateway's would."""

    def status(name: str) -> dict | None:
        return gateway_api.function_status(platform.profile, name)

    profile = platform.profile
    direct = f"http://{profile.bridge_ip}:{profile.ports.provider_invoke}/function/{SCALING}?ms=200"
    # Back to one replica after the previous test's step (or still there).
    assert wait_replicas(status, SCALING, lambda n, ready: n == 1 == ready, timeout_s=75)
    # The gateway's counter does count this function's calls through it.
    through = gateway_invocations(SCALING)
    assert requests.get(f"{platform.gateway}/function/{SCALING}?ms=1", timeout=10).ok
    assert wait_for(lambda: gateway_invocations(SCALING) > through, timeout_s=5)
    before = gateway_invocations(SCALING)
    with LoadLoop(direct, callers=6, max_s=60) as step:
        scaled_out = wait_replicas(status, SCALING, lambda n, ready: ready >= 2, timeout_s=45)
    print(f"\n  scale-out after a load step past the gateway: {scaled_out}s")
    assert scaled_out is not None and scaled_out <= SCALE_UP_BOUND_S, scaled_out
    assert set(step.codes) == {"200"} and step.codes["200"] > 50, step.codes
    assert gateway_invocations(SCALING) == before  # none of it went through it


def status_line(platform, function: str) -> str:
    """`make status`'s line for one function."""
    shown = platform.localplatform("status")
    lines = [line for line in shown.stdout.splitlines() if line.startswith(f"{function} ")]
    assert len(lines) == 1, shown.stdout + shown.stderr
    return lines[0]


def test_an_idle_function_that_may_scale_to_zero_goes_to_zero_and_stays(platform, deployed):
    def status(name: str) -> dict | None:
        return gateway_api.function_status(platform.profile, name)

    # zero-duration is 5 s; the autoscaler looks every 2 s.
    took = wait_replicas(status, IDLE, lambda n, ready: n == 0 == ready, timeout_s=30)
    assert took is not None, status(IDLE)
    assert provider_replicas(platform, IDLE) == []
    idle = f'autoscaler_decisions_total{{function="{IDLE}",direction="down",reason="idle"}}'
    assert wait_for(lambda: prometheus_value(prometheus(platform), idle) >= 1, timeout_s=15)
    time.sleep(5)  # at zero it stays: waking it is the gateway's job
    assert (status(IDLE) or {}).get("replicas", 0) == 0, status(IDLE)  # omitempty: absent is 0
