"""serve through the local gateway, side by side with the no-op, open loop: rated rate, p50/p95/p99.

Three targets, same gateway, provider and template, same run: the no-op; serve as deployed,
calling bid at bid's own address (BID_URL); and serve's image deployed once more for the run
as `serve-via-gateway`, calling bid through the gateway. For each, the open-loop generator
looks for the highest rate at which p95 stays below 100 ms (doubling from 50/s, then bisecting;
5 s per step, a step with more than 1% errors counts as over), BENCH_ROUNDS times (3 by
default) with the searches of a round back to back, so that all see the same moment of a shared
machine; the figure is the median of the rounds' ratios. Then it measures p50/p95/p99 and CPU
per request by process for 10 s at half and at 80% of each median rated rate (all of it, and what
the load added to the idle platform, measured for 10 s before), and, at 80% of serve's, the p95
delay from serve's answer to the live impression counter.
serve's requests ask for a placement that a benchmark campaign (created through the campaigns
API, huge budget, ended afterwards) targets, so that every request runs the whole path:
validation, bid through the gateway with its Redis charge, the signed click URL. Targets:
serve's rated rate >= 0.4 x the no-op's (docs/specification.md, service levels).
Runs against the dev platform (`make bench` runs `make up` first).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import redis
import requests
import yaml

from localplatform import faas_cli, gateway_api, secrets
from localplatform.profile import DEV, REPO_ROOT, Profile
from shared_layer.pipeline.store.live_counters import stats_key
from tests.benchmarks.cpu import CpuMeter
from tests.benchmarks.loadgen import OpenLoopResult, open_loop

STEP_S = 5
MEASURE_S = 10
IDLE_S = 10  # the idle platform's CPU, measured once and subtracted from each load's
P95_LIMIT_MS = 100.0
START_RATE = 50.0
MAX_RATE = 20_000.0
BISECT_STEPS = 3
LOADGEN_CPU = 1
PLACEMENT = f"bench-serve-{uuid.uuid4().hex[:8]}"
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
LOADS = (0.5, 0.8)  # shares of the rated rate at which p50/p95/p99 and CPU are measured
STACK = REPO_ROOT / "stack.yml"
VIA_GATEWAY = "serve-via-gateway"  # serve's image, calling bid through the gateway


def _ok(result: OpenLoopResult) -> bool:
    return result.p95_ms < P95_LIMIT_MS and result.errors <= 0.01 * result.sent


def rated_rate(label: str, url: str) -> float:
    """The highest rate (req/s) found with p95 < 100 ms and <= 1% errors."""
    good, bad, rate = 0.0, 0.0, START_RATE
    while rate <= MAX_RATE:
        result = open_loop(url, rate=rate, duration_s=STEP_S, cpu=LOADGEN_CPU)
        print(f"  {label:<6} search  {result.line()}", flush=True)
        if not _ok(result):
            bad = rate
            break
        good, rate = rate, rate * 2
    if bad:
        for _ in range(BISECT_STEPS):
            rate = (good + bad) / 2
            result = open_loop(url, rate=rate, duration_s=STEP_S, cpu=LOADGEN_CPU)
            print(f"  {label:<6} bisect  {result.line()}", flush=True)
            good, bad = (rate, bad) if _ok(result) else (good, rate)
    return good


def admin(method: str, path: str, profile: Profile = DEV, **kwargs) -> requests.Response:
    """The campaigns API of `profile`'s platform, with its admin token."""
    token = secrets.read(profile, "campaigns-admin-token")
    return requests.request(
        method,
        f"{profile.gateway_url}/function/campaigns{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        **kwargs,
    )


def campaign_body(placement: str) -> dict:
    """A campaign only `placement` sees, with a budget a benchmark cannot spend."""
    return {
        "advertiserId": "00000000-0000-4000-8000-00000000be9c",
        "name": f"benchmark {placement}",
        "cpmBid": 5000,
        "dailyBudget": 1_000_000_000,
        "targetingRules": [{"ruleType": "placement", "ruleValue": placement}],
        "ads": [
            {
                "title": "Benchmark",
                "imageUrl": "https://cdn.example.com/bench.png",
                "redirectUrl": "https://example.com/bench",
            }
        ],
    }


def create_campaign(placement: str = PLACEMENT, profile: Profile = DEV) -> str | None:
    """A campaign only the benchmark's placement sees, with a budget it cannot spend."""
    try:
        r = admin("POST", "/", profile, json=campaign_body(placement))
    except (OSError, requests.RequestException) as exc:
        print(f"  (no benchmark campaign: {exc}; serve fills from whatever is active)")
        return None
    if r.status_code != 201:
        print(f"  (no benchmark campaign: {r.status_code}; serve fills from whatever is active)")
        return None
    return r.json()["id"]


def deploy_serve_via_gateway() -> None:
    """serve's image once more as VIA_GATEWAY, with an empty BID_URL: it calls bid through the
    gateway, so both ways are measured side by side in the same rounds."""
    stack = yaml.safe_load(STACK.read_text())
    function = stack["functions"]["serve"]
    function["environment"]["BID_URL"] = ""
    stack["functions"] = {VIA_GATEWAY: function}
    path = DEV.state_dir / f"{VIA_GATEWAY}.yml"
    path.write_text(yaml.safe_dump(stack, sort_keys=False))
    faas_cli.run(DEV, ["deploy", "-f", str(path)])
    gateway_api.wait_available(DEV, VIA_GATEWAY)


def live_delay_p95(campaign: str, run) -> float | None:
    """p95 seconds from serve's k-th answer until the campaign's live impression counter (one
    partition, counted in order) reached k, while `run(answered_at)` loads serve."""
    live = redis.Redis.from_url(DEV.host_env()["REDIS_URL"])
    key = stats_key("impressions", campaign, datetime.now(UTC).date())

    def count() -> int:
        return int(live.get(key) or 0)

    settled = count()  # what earlier loads produced is counted first
    for _ in range(60):
        time.sleep(1)
        if (now := count()) == settled:
            break
        settled = now
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set() or (samples and samples[-1][1] < settled + len(answered)):
            samples.append((time.perf_counter(), count()))
            if len(samples) > 1 and samples[-1][0] - samples[0][0] > 600:
                return
            time.sleep(0.01)

    answered: list[float] = []
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    run(answered)
    done.set()
    poller.join(120)
    answered.sort()
    delays, i = [], 0
    for k, at in enumerate(answered, start=1):
        while i < len(samples) and samples[i][1] - settled < k:
            i += 1
        if i == len(samples):
            break
        delays.append(samples[i][0] - at)
    if len(delays) < 20:
        return None
    return statistics.quantiles(delays, n=20)[-1]


def main() -> str | None:
    """Prints the figures; returns the summary line `make bench` repeats at its end."""
    for name in ("noop", "serve", "bid"):
        gateway_api.wait_available(DEV, name)
    deploy_serve_via_gateway()
    noop = f"{DEV.gateway_url}/function/noop"
    campaign = create_campaign()
    query = urlencode({"userId": "bench-user", "placementId": PLACEMENT, "countryCode": "US",
                       "deviceType": "mobile"})  # fmt: skip
    serve = f"{DEV.gateway_url}/function/serve?{query}"
    targets = (
        ("noop", noop),
        ("serve", serve),
        (VIA_GATEWAY, f"{DEV.gateway_url}/function/{VIA_GATEWAY}?{query}"),
    )
    try:
        deadline = time.monotonic() + 10  # bid replicas see a new campaign within ~1 s
        while True:
            probe = requests.get(serve, timeout=5)
            if probe.status_code == 200 or campaign is None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        reason = probe.headers.get("X-No-Fill-Reason", "")
        print(f"  serve answers {probe.status_code} {reason} for the benchmark request", flush=True)
        rounds = []
        for n in range(ROUNDS):
            print(f"  round {n + 1} of {ROUNDS}:", flush=True)
            rounds.append({label: rated_rate(label, url) for label, url in targets})
        rated = {label: statistics.median(r[label] for r in rounds) for label, _ in targets}
        meter = CpuMeter(DEV)
        idle = meter.idle(IDLE_S)
        print(f"  idle platform: {CpuMeter.report(idle, per=1, unit='s')}", flush=True)
        per_ad: dict[str, float] = {}  # CPU seconds per answer beyond idle, at the last load
        for label, url in targets:
            each = " / ".join(f"{r[label]:.0f}" for r in rounds)
            print(
                f"  {label:<6} rated {rated[label]:7.0f}/s (p95 < {P95_LIMIT_MS:.0f} ms; "
                f"median of {each})",
                flush=True,
            )
            for share in LOADS:
                rate = max(START_RATE / 2, rated[label] * share)
                before, began = meter.sample(), time.monotonic()
                with meter.polling():  # a replica scaled in mid-load keeps its share
                    result = open_loop(url, rate=rate, duration_s=MEASURE_S, cpu=LOADGEN_CPU)
                cpu, spent_s = meter.sample() - before, time.monotonic() - began
                added = CpuMeter.beyond_idle(cpu, idle, spent_s)
                print(f"  {label:<6} {share:.0%} {result.line()}", flush=True)
                unit = "no-op call" if label == "noop" else "served ad"
                answered = max(1, result.sent - result.errors)
                print(f"         all:    {CpuMeter.report(cpu, per=answered, unit=unit)}")
                print(f"         added:  {CpuMeter.report(added, per=answered, unit=unit)}")
                per_ad[label] = sum(added.values()) / answered
        delay = None
        if campaign is not None:
            rate = max(START_RATE / 2, rated["serve"] * LOADS[-1])

            def load(answered_at: list[float]) -> None:
                open_loop(serve, rate=rate, duration_s=MEASURE_S, cpu=LOADGEN_CPU,
                          answered_at=answered_at)  # fmt: skip

            delay = live_delay_p95(campaign, load)
            shown = "n/a" if delay is None else f"{delay * 1000:.0f} ms"
            print(f"  live numbers at {rate:.0f}/s of serve: p95 {shown} after the answer")
        ratios = {
            label: [r[label] / r["noop"] for r in rounds if r["noop"]]
            for label in ("serve", VIA_GATEWAY)
        }
        if ratios["serve"]:
            ratio = statistics.median(ratios["serve"])
            gateway_ratio = statistics.median(ratios[VIA_GATEWAY])
            for label, values in ratios.items():
                each = " / ".join(f"{x:.2f}" for x in values)
                print(
                    f"  {label} / noop rated rate: {statistics.median(values):.2f}, "
                    f"median of {each} (target >= 0.4)",
                    flush=True,
                )
            return (
                f"serve rated {rated['serve']:.0f}/s, no-op {rated['noop']:.0f}/s (medians): "
                f"{ratio:.2f} of it ({gateway_ratio:.2f} with bid through the gateway), "
                f"median of {len(ratios['serve'])} rounds (target >= 0.4)"
                + f"; CPU per served ad beyond the idle platform {per_ad['serve'] * 1e3:.2f} ms "
                f"at 80% (target <= 6 ms; no-op call {per_ad['noop'] * 1e3:.2f} ms), idle "
                f"platform {sum(idle.values()):.2f} cores"
                + ("" if delay is None else f"; live numbers p95 {delay * 1000:.0f} ms at 80%")
            )
        return None
    finally:
        if campaign is not None:
            admin("DELETE", f"/{campaign}")
        faas_cli.run(DEV, ["remove", VIA_GATEWAY])


if __name__ == "__main__":
    main()
