"""The stack itself: the no-op function through the gateway and directly at one replica.

Peak throughput with wrk, then p50/p95/p99 with the open-loop generator at half of that peak,
once through gateway + provider and once straight at one replica, so the cost of the two
extra hops is known. Runs against the dev platform (`make bench` runs `make up` first).
"""

from __future__ import annotations

import requests

from localplatform import gateway_api
from localplatform.profile import DEV
from tests.benchmarks.loadgen import open_loop, wrk

DURATION_S = 10
LOADGEN_CPU = 1  # the generator gets its own core, as far as a 2-core machine allows


def replica_url(function: str) -> str:
    groups = requests.get(f"http://127.0.0.1:{DEV.ports.provider_ops}/sd", timeout=5).json()
    for group in groups:
        labels = group["labels"]
        if labels.get("function_name") == function and labels.get("kind") == "function":
            ip = group["targets"][0].split(":")[0]
            return f"http://{ip}:8080/"
    raise SystemExit(f"no replica of {function} found in the provider's service discovery")


def measure(label: str, url: str) -> tuple[float, float]:
    peak = wrk(url, duration_s=DURATION_S, connections=16, cpu=LOADGEN_CPU)
    print(f"  {label:<22} wrk     {peak.line()}", flush=True)
    half = max(50.0, peak.requests_per_s / 2)
    result = open_loop(url, rate=half, duration_s=DURATION_S, cpu=LOADGEN_CPU)
    print(f"  {label:<22} open    {result.line()}", flush=True)
    return peak.requests_per_s, result.p95_ms


def main() -> None:
    gateway_api.wait_available(DEV, "noop")
    via_gateway = f"{DEV.gateway_url}/function/noop"
    direct = replica_url("noop")
    gw_peak, gw_p95 = measure("noop via gateway", via_gateway)
    rep_peak, rep_p95 = measure("noop at one replica", direct)
    print(
        f"  gateway+provider hops: peak ratio {gw_peak / rep_peak:.2f} "
        f"(gateway/direct), p95 at half peak {gw_p95:.2f} ms vs {rep_p95:.2f} ms"
    )
