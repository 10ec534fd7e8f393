"""serve when bid is down or frozen: 204 within the deadline with the reason in a header,
the circuit open after 5 consecutive failures, and fill again once bid is back.

Both failures are real: bid scaled to 0 replicas through the provider API (the CE gateway
refuses 0), and bid's processes stopped with SIGSTOP (a replica that accepts connections and
never answers, as under a long GC pause or a stuck dependency).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
import requests

from tests.e2e.test_bid_support import (
    GATEWAY,
    Campaigns,
    campaign_body,
    namespaces,
    replicas,
    scale,
    unique_placement,
    wait_replicas,
)

SERVE = f"{GATEWAY}/function/serve"
# serve's deadline for bid is 80 ms; the rest is the gateway, the provider and serve itself.
ANSWER_WITHIN_S = 0.5


@pytest.fixture(scope="module")
def placement(platform):
    placement = unique_placement("resilience")
    campaign = Campaigns().create(
        campaign_body(cpm="8000", daily="100000", rules=[("placement", placement)])
    )
    return placement, campaign


def serve_once(placement: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    r = requests.get(SERVE, params={"userId": "u-1", "placementId": placement}, timeout=10)
    return r, time.monotonic() - started


def wait_filled(placement: str, campaign: str, timeout_s: float = 20.0) -> None:
    """Until serve fills with our campaign again (bid back, the circuit closed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r, _ = serve_once(placement)
        if r.status_code == 200 and r.json()["campaignId"] == campaign:
            return
        time.sleep(0.2)
    raise AssertionError(f"serve did not fill again: {r.status_code} {dict(r.headers)}")


def no_fills(placement: str, count: int) -> list[str]:
    reasons = []
    for _ in range(count):
        r, elapsed = serve_once(placement)
        assert r.status_code == 204, (r.status_code, r.text)
        assert elapsed < ANSWER_WITHIN_S, f"serve took {elapsed:.3f} s"
        reasons.append(r.headers["X-No-Fill-Reason"])
    return reasons


def serve_metric(outcome: str) -> float:
    (ip,) = replicas("serve").values()
    text = requests.get(f"http://{ip}:8000/metrics", timeout=5).text
    match = re.search(rf'^serve_requests_total{{outcome="{outcome}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_bid_scaled_to_zero_gives_no_fill_then_an_open_circuit_then_fill_again(placement):
    where, campaign = placement
    wait_filled(where, campaign)
    opened_before = serve_metric("circuit-open")
    scale("bid", 0, via_provider=True)
    try:
        wait_replicas("bid", 0)
        reasons = no_fills(where, 8)
    finally:
        scale("bid", 1, via_provider=True)
        wait_replicas("bid", 1)
    assert reasons == ["bid-error"] * 5 + ["circuit-open"] * 3, reasons
    assert serve_metric("circuit-open") >= opened_before + 3
    wait_filled(where, campaign)  # half-open after 3 s, closed by the first good call


def test_a_frozen_bid_times_out_within_the_deadline_and_opens_the_circuit(placement):
    where, campaign = placement
    wait_filled(where, campaign)
    (netns,) = namespaces("bid")
    pids = [
        int(pid)
        for pid in subprocess.run(
            ["ip", "netns", "pids", netns], capture_output=True, text=True, check=True
        ).stdout.split()
    ]
    assert pids, f"no process in {netns}"
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        reasons = no_fills(where, 7)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert reasons[0] == "bid-timeout", reasons
    assert set(reasons[:5]) <= {"bid-timeout", "bid-error"}, reasons
    assert reasons[5:] == ["circuit-open"] * 2, reasons
    wait_filled(where, campaign)
