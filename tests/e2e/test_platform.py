"""The single-machine platform as a user meets it: faas-cli, the gateway, replicas, Prometheus."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest
import requests

from localplatform import gateway_api, images, lifecycle, network
from localplatform.components.redis import Redis
from tests.scaling import prometheus_value
from tests.support import wait_for

FUNCTIONS = [fn.name for stack in images.STACKS for fn in images.read_stack(stack)]


def sd_targets(platform, function: str, kind: str = "function") -> dict[str, str]:
    """replica namespace -> host:port of its metrics, from the provider's service discovery."""
    url = f"http://127.0.0.1:{platform.profile.ports.provider_ops}/sd"
    groups = requests.get(url, timeout=5).json()
    return {
        g["labels"]["netns"]: g["targets"][0]
        for g in groups
        if g["labels"].get("function_name") == function and g["labels"].get("kind") == kind
    }


def requests_served(target: str) -> float:
    text = requests.get(f"http://{target}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("function_requests_total{")
    )


def test_faas_cli_lists_every_function_with_an_available_replica(platform):
    assert FUNCTIONS, "no function is declared in any stack file"
    listing = platform.faas_cli("list", "--verbose").stdout
    for name in FUNCTIONS:
        assert name in listing
        described = platform.faas_cli("describe", name).stdout
        assert "Status:" in described and "Ready" in described, described


def test_faas_cli_list_shows_the_invocations_prometheus_holds(platform):
    """The gateway looks its invocation counts up in Prometheus by `name.namespace`; after N
    calls, `faas-cli list` shows the count Prometheus holds, once Prometheus has scraped the
    gateway (every 5 s here)."""
    prometheus = f"http://127.0.0.1:{platform.profile.ports.prometheus}"
    held = 'sum(gateway_function_invocation_total{function_name="noop.openfaas-fn"})'

    def listed() -> float:
        rows = [line.split() for line in platform.faas_cli("list").stdout.splitlines()]
        (count,) = [row[1] for row in rows if row and row[0] == "noop"]
        return float(count)

    before = prometheus_value(prometheus, held)
    calls = 7
    for _ in range(calls):
        assert requests.get(f"{platform.gateway}/function/noop", timeout=10).status_code == 200

    def agreed() -> tuple[float, float] | None:
        low = prometheus_value(prometheus, held)
        shown = listed()
        high = prometheus_value(prometheus, held)
        return (shown, high) if low <= shown <= high and shown >= before + calls else None

    # One scrape interval and a little more: the count is Prometheus' as soon as it has it.
    assert wait_for(agreed, timeout_s=8), (before, listed(), prometheus_value(prometheus, held))
    described = platform.faas_cli("describe", "noop").stdout.splitlines()
    (invocations,) = [line.split(":", 1)[1] for line in described if line.startswith("Invocations")]
    assert float(invocations) >= before + calls, described


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_answers_through_the_gateway(platform, name):
    r = requests.get(f"{platform.gateway}/function/{name}", timeout=10)
    assert r.status_code < 500, r.text


def test_noop_answers_ok_and_faas_cli_invoke_works(platform):
    r = requests.post(f"{platform.gateway}/function/noop", data=b"ping", timeout=10)
    assert (r.status_code, r.text) == (200, "ok")
    assert platform.faas_cli("invoke", "noop", check=True).stdout.strip() == "ok"


def test_system_routes_need_basic_auth(platform):
    assert requests.get(f"{platform.gateway}/system/functions", timeout=5).status_code == 401
    wrong = requests.get(f"{platform.gateway}/system/functions", auth=("admin", "nope"), timeout=5)
    assert wrong.status_code == 401
    assert platform.system("GET", "/system/functions").status_code == 200


def test_faas_cli_logs_show_the_function_output(platform):
    requests.get(f"{platform.gateway}/function/noop", timeout=10)
    result = platform.faas_cli("logs", "noop", "--tail=false", "--since=10m")
    assert result.stdout.strip(), "faas-cli logs printed nothing"


def test_a_request_is_one_json_line_of_the_function_and_one_of_its_watchdog(platform):
    request_id = f"logs-{uuid.uuid4().hex}"
    r = requests.get(
        f"{platform.gateway}/function/serve", headers={"X-Request-Id": request_id}, timeout=10
    )
    assert r.status_code == 400, r.text  # no placement: refused, and logged

    def texts(function: str = "serve") -> list[str]:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
        params = {"name": function, "since": since, "follow": "false"}
        rows = platform.system("GET", "/system/logs", params=params).text.splitlines()
        return [json.loads(row)["text"] for row in rows]

    assert wait_for(lambda: any(request_id in t for t in texts()), timeout_s=5), texts()[-5:]
    ours = [t for t in texts() if request_id in t]
    # The function's line is JSON as it wrote it (no watchdog prefix), and only once.
    assert len(ours) == 1 and json.loads(ours[0])["requestId"] == request_id, ours
    for function in ("serve", "daily-metrics"):  # no plain-text copy of a JSON line
        copies = [t for t in texts(function) if t.startswith("INFO") and t.endswith("request")]
        assert not copies, copies[:3]
    # of-watchdog's own access line; the provider's readiness probes get none (of-watchdog does
    # log a probe that fails while the template's server starts).
    assert any(" GET / - 400 BAD REQUEST - " in t for t in texts()), texts()[-5:]
    assert not [t for t in texts() if " /_/ready - " in t], "probes in the function's log"


def test_faas_cli_logs_follow_ends_by_itself(platform):
    """`faas-cli logs NAME` follows "up to 30s" (its --tail help): the provider ends a followed
    stream at its --logs-timeout, 30 s by default, and faas-cli exits."""
    result = platform.faas_cli("logs", "noop", "--since=5s", check=False)
    assert result.returncode == 0, result.stderr


def test_scale_to_three_spreads_requests_over_three_namespaces(platform):
    r = platform.system(
        "POST", "/system/scale-function/noop", json={"serviceName": "noop", "replicas": 3}
    )
    assert r.status_code in (200, 202), r.text
    try:
        gateway_api.wait_available(platform.profile, "noop", minimum=3, timeout_s=60)
        replicas = wait_for(
            lambda: len(sd_targets(platform, "noop")) == 3 and sd_targets(platform, "noop"),
            timeout_s=10,
        )
        assert len(replicas) == 3
        assert set(replicas) <= set(network.our_namespaces(platform.profile))
        assert len({target.split(":")[0] for target in replicas.values()}) == 3
        before = {name: requests_served(t) for name, t in replicas.items()}
        for _ in range(60):
            assert requests.get(f"{platform.gateway}/function/noop", timeout=10).ok
        after = {name: requests_served(t) for name, t in replicas.items()}
        assert all(after[n] > before[n] for n in replicas), (before, after)
    finally:
        platform.system(
            "POST", "/system/scale-function/noop", json={"serviceName": "noop", "replicas": 1}
        )


def test_a_killed_replica_is_restarted_within_five_seconds_while_serving(platform):
    platform.system(
        "POST", "/system/scale-function/noop", json={"serviceName": "noop", "replicas": 2}
    )
    try:
        gateway_api.wait_available(platform.profile, "noop", minimum=2, timeout_s=60)
        victim = sorted(sd_targets(platform, "noop"))[0]
        pids = subprocess.run(
            ["ip", "netns", "pids", victim], capture_output=True, text=True
        ).stdout.split()
        assert pids, f"no process in namespace {victim}"
        failures, served = [], [0]
        stop = threading.Event()

        def keep_calling():
            while not stop.is_set():
                try:
                    r = requests.get(f"{platform.gateway}/function/noop", timeout=5)
                    served[0] += 1
                    if r.status_code != 200:
                        failures.append(r.status_code)
                except requests.RequestException as exc:
                    failures.append(repr(exc))
                time.sleep(0.01)

        caller = threading.Thread(target=keep_calling)
        caller.start()
        time.sleep(0.3)
        killed_at = time.monotonic()
        for pid in pids:
            os.kill(int(pid), signal.SIGKILL)
        back = wait_for(
            lambda: (
                (gateway_api.function_status(platform.profile, "noop") or {}).get(
                    "availableReplicas"
                )
                == 2
                and victim in sd_targets(platform, "noop")
                and _answers(sd_targets(platform, "noop")[victim])
            ),
            timeout_s=10,
        )
        restarted_after = time.monotonic() - killed_at
        time.sleep(0.5)
        stop.set()
        caller.join()
        assert back and restarted_after < 5.0, f"not back after {restarted_after:.1f}s"
        assert served[0] > 50
        assert len(failures) <= 1, f"{len(failures)} failed calls during the restart: {failures}"
        metrics = requests.get(
            f"http://127.0.0.1:{platform.profile.ports.provider_ops}/metrics", timeout=5
        ).text
        assert 'provider_replica_restarts_total{function_name="noop"}' in metrics
    finally:
        platform.system(
            "POST", "/system/scale-function/noop", json={"serviceName": "noop", "replicas": 1}
        )


def _answers(target: str) -> bool:
    try:
        return requests.get(f"http://{target}/metrics", timeout=1).ok
    except requests.RequestException:
        return False


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("GET", "/system/function/no-such-function", None, 404),
        (
            "POST",
            "/system/scale-function/no-such-function",
            {"serviceName": "no-such-function", "replicas": 1},
            404,
        ),
        ("POST", "/system/scale-function/noop", {"serviceName": "noop", "replicas": 99}, 400),
        ("POST", "/system/scale-function/noop", {"serviceName": "noop", "replicas": -1}, 400),
        ("POST", "/system/functions", "{not json", 400),
        ("POST", "/system/functions", {"service": "ghost", "image": "ads/never-built:9.9"}, 400),
        (
            "PUT",
            "/system/functions",
            {"service": "no-such-function", "image": "ads/noop:0.1.0"},
            404,
        ),
        ("POST", "/system/functions", {"service": "Bad_Name!", "image": "ads/noop:0.1.0"}, 400),
    ],
)
def test_bad_input_to_the_provider_is_a_clear_4xx(platform, method, path, body, expected):
    # Straight at the provider API: the CE gateway clamps scale requests to 1..5 on its own.
    kwargs = {"data": body} if isinstance(body, str) else {"json": body}
    url = f"http://127.0.0.1:{platform.profile.ports.provider}{path}"
    r = requests.request(method, url, auth=platform.auth, timeout=10, **kwargs)
    assert r.status_code == expected, (r.status_code, r.text)
    assert r.text.strip(), "a 4xx must say what was wrong"
    assert platform.system("GET", "/system/function/noop").status_code == 200


def test_prometheus_scrapes_every_target_replicas_included(platform):
    url = f"http://127.0.0.1:{platform.profile.ports.prometheus}/api/v1/targets"

    def all_up():
        active = requests.get(url, timeout=5).json()["data"]["activeTargets"]
        jobs = {t["labels"].get("job") for t in active}
        ok = all(t["health"] == "up" for t in active)
        replicas = [t for t in active if t["labels"].get("function_name")]
        return ok and replicas and jobs >= {"gateway", "provider", "prometheus"} and active

    active = wait_for(all_up, timeout_s=30, interval_s=1)
    assert active, json.dumps(requests.get(url, timeout=5).json(), indent=1)[:3000]
    names = {t["labels"]["function_name"] for t in active if t["labels"].get("function_name")}
    assert set(FUNCTIONS) <= names


def test_second_start_is_harmless_and_a_dead_component_is_restarted_alone(platform):
    redis = Redis(platform.profile)
    others = {c.name: c.pid() for c in lifecycle.components(platform.profile) if c.name != "redis"}
    os.kill(redis.pid(), signal.SIGKILL)
    assert wait_for(lambda: not redis.running(), timeout_s=5)
    status = platform.localplatform("status")
    assert status.returncode == 1 and "redis" in status.stdout and "down" in status.stdout
    started = platform.localplatform("start")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "redis: starting" in started.stdout
    assert redis.running() and redis.healthy()
    assert {
        c.name: c.pid() for c in lifecycle.components(platform.profile) if c.name != "redis"
    } == others
    again = platform.localplatform("start")
    assert again.returncode == 0 and "redis: starting" not in again.stdout
    assert platform.localplatform("status").returncode == 0
