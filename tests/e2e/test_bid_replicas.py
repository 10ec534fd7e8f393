"""bid on three replicas: budgets never overspent under concurrent load from threads and
processes, and a campaign paused through the API stops winning within 1 s on every replica."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import requests

from tests.e2e.test_bid_support import (
    GATEWAY,
    Campaigns,
    campaign_body,
    replicas,
    scale,
    spent,
    unique_placement,
    wait_replicas,
)

BID = f"{GATEWAY}/function/bid"
REPLICAS = 3


@pytest.fixture(scope="module")
def three_bids(platform):
    scale("bid", REPLICAS)
    try:
        wait_replicas("bid", REPLICAS)
        yield replicas("bid")
    finally:
        scale("bid", 1)
        wait_replicas("bid", 1)


def fire(placement: str, count: int, threads: int) -> list[tuple[int, str, int, str]]:
    """`count` bids for `placement` from `threads` threads: (status, campaign, price, imp id).

    Module-level so that worker processes (spawned) can run it.
    """

    def one(_: int) -> tuple[int, str, int, str]:
        r = requests.post(BID, json={"userId": "u-load", "placementId": placement}, timeout=30)
        if r.status_code == 200:
            body = r.json()
            return 200, body["campaignId"], body["priceMicros"], body["impressionId"]
        return r.status_code, "", 0, ""

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


# name: (CPM, daily budget, lifetime budget, impressions the budgets allow)
BUDGETS = {
    "daily binds": ("5000", "15", None, 3),  # 5.00 per impression, 15.00 a day
    "lifetime binds": ("4000", "16", "16", 4),
    "uneven": ("3000", "7.50", None, 2),  # 2 x 3.00; the 1.50 left buys nothing
    "single": ("2000", "2", "1000", 1),
}


def test_budgets_are_never_overspent_under_concurrent_bids_from_threads_and_processes(
    three_bids,
):
    placement = unique_placement("budget")
    campaigns = Campaigns()
    ids = {
        name: campaigns.create(
            campaign_body(cpm=cpm, daily=daily, lifetime=lifetime, rules=[("placement", placement)])
        )
        for name, (cpm, daily, lifetime, _) in BUDGETS.items()
    }
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=spawn) as processes:
        from_processes = [processes.submit(fire, placement, 40, 8) for _ in range(4)]
        from_threads = fire(placement, 120, 24)
        results = from_threads + [row for f in from_processes for row in f.result()]

    assert len(results) == 280
    assert {status for status, *_ in results} <= {200, 204}, Counter(r[0] for r in results)
    wins = Counter(campaign for status, campaign, *_ in results if status == 200)
    impression_ids = [imp for status, _, _, imp in results if status == 200]
    assert len(set(impression_ids)) == len(impression_ids)
    for name, (cpm, daily, lifetime, allowed) in BUDGETS.items():
        campaign = ids[name]
        price = int(cpm) * 1_000  # CPM / 1000 in micros: CPM units * 1e6 / 1e3
        prices = {p for status, c, p, _ in results if status == 200 and c == campaign}
        assert prices == {price}, (name, prices)
        daily_spent, lifetime_spent = spent(campaign)
        assert daily_spent == lifetime_spent == wins[campaign] * price, (name, wins[campaign])
        assert daily_spent <= int(float(daily) * 1_000_000)
        if lifetime is not None:
            assert lifetime_spent <= int(float(lifetime) * 1_000_000)
        assert wins[campaign] == allowed, (name, wins[campaign])


def test_a_paused_campaign_stops_winning_within_one_second_on_every_replica(three_bids):
    placement = unique_placement("pause")
    campaigns = Campaigns()
    campaign = campaigns.create(
        campaign_body(cpm="9000", daily="100000", rules=[("placement", placement)])
    )
    addresses = replicas("bid")
    assert len(addresses) == REPLICAS

    def winner(ip: str) -> str | None:
        r = requests.post(
            f"http://{ip}:8080/", json={"userId": "u-1", "placementId": placement}, timeout=5
        )
        assert r.status_code in (200, 204), r.text
        return r.json()["campaignId"] if r.status_code == 200 else None

    assert {name: winner(ip) for name, ip in addresses.items()} == dict.fromkeys(
        addresses, campaign
    )
    paused_at = time.monotonic()
    campaigns.pause(campaign)
    stopped_after: dict[str, float] = {}
    while time.monotonic() < paused_at + 1.0 and len(stopped_after) < len(addresses):
        for name, ip in addresses.items():
            if name not in stopped_after and winner(ip) != campaign:
                stopped_after[name] = time.monotonic() - paused_at
        time.sleep(0.01)
    time.sleep(max(0.0, paused_at + 1.0 - time.monotonic()))
    after = {name: winner(ip) for name, ip in addresses.items()}
    assert campaign not in after.values(), (after, stopped_after)
    print(f"paused campaign gone per replica after (s): {stopped_after}")
