"""openrtb through the local gateway, open loop: p50/p95/p99 of BidRequests next to the no-op.

Every BidRequest (one banner imp, site, device with geo and devicetype, user with yob, tmax
100) asks for a placement that a benchmark campaign (created through the campaigns API, a
budget it cannot spend, ended afterwards) targets, so each request runs the whole path: msgspec
decoding, the privacy signals and the mapping, the auction, the Redis reservation (the bid's
price held, its impression record kept for the settlement; no notice is sent, so the window
releases it), the signed nurl/burl/lurl/click URLs, the BidResponse. Rounds alternate openrtb
and the no-op at the same fixed rate (5 s each, 3 rounds), and the medians of the rounds are
printed with every round, so the machine's load shows as spread rather than as a bias. Runs
against the dev platform (`make bench` runs `make up` first); `ADS_PROFILE=test` points it at a
running test platform instead.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid

import requests

from localplatform import gateway_api
from localplatform.profile import PROFILES
from tests.benchmarks.bench_serve import admin, create_campaign
from tests.benchmarks.loadgen import OpenLoopResult, open_loop

PROFILE = PROFILES[os.environ.get("ADS_PROFILE", "dev")]
RATE = float(os.environ.get("OPENRTB_BENCH_RATE", "100"))
ROUND_S = 5
ROUNDS = 3
LOADGEN_CPU = 1
PLACEMENT = f"bench-openrtb-{uuid.uuid4().hex[:8]}"


def bid_request() -> bytes:
    return json.dumps(
        {
            "id": "bench-1",
            "imp": [
                {
                    "id": "1",
                    "tagid": PLACEMENT,
                    "bidfloor": 0.5,
                    "banner": {"format": [{"w": 300, "h": 250}]},
                }
            ],
            "site": {"id": "bench-site", "domain": "news.example.com"},
            "device": {"devicetype": 4, "geo": {"country": "USA"}, "ua": "Mozilla/5.0"},
            "user": {"id": "bench-user", "yob": 1990},
            "tmax": 100,
        }
    ).encode()


def main() -> None:
    for name in ("noop", "openrtb", "campaigns"):
        gateway_api.wait_available(PROFILE, name)
    campaign = create_campaign(PLACEMENT, PROFILE)
    openrtb, noop = (
        f"{PROFILE.gateway_url}/function/openrtb",
        f"{PROFILE.gateway_url}/function/noop",
    )
    body, headers = bid_request(), {"Content-Type": "application/json"}
    try:
        deadline = time.monotonic() + 10  # replicas see a new campaign within ~1 s
        while (
            probe := requests.post(openrtb, data=body, headers=headers, timeout=5)
        ).status_code != 200:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        print(f"  openrtb answers {probe.status_code} for the benchmark BidRequest", flush=True)
        rounds: dict[str, list[OpenLoopResult]] = {"openrtb": [], "noop": []}
        for _ in range(ROUNDS):
            rounds["openrtb"].append(
                open_loop(
                    openrtb,
                    rate=RATE,
                    duration_s=ROUND_S,
                    method="POST",
                    body=body,
                    headers=headers,
                    cpu=LOADGEN_CPU,
                )
            )
            rounds["noop"].append(open_loop(noop, rate=RATE, duration_s=ROUND_S, cpu=LOADGEN_CPU))
        for label, results in rounds.items():
            for result in results:
                print(f"  {label:<7} round  {result.line()}", flush=True)
        for label, results in rounds.items():
            p50, p95, p99 = (
                statistics.median(getattr(r, f"p{q}_ms") for r in results) for q in (50, 95, 99)
            )
            print(
                f"  {label:<7} median of {ROUNDS} rounds at {RATE:.0f}/s: "
                f"p50 {p50:.2f} ms  p95 {p95:.2f} ms  p99 {p99:.2f} ms",
                flush=True,
            )
    finally:
        if campaign is not None:
            admin("DELETE", f"/{campaign}", PROFILE)


if __name__ == "__main__":
    main()
