"""Floors, second-price clearing and the pacing fields through the gateway: the campaigns API
sets a placement's floor, every bid replica applies it, bid answers 204 with the floor in
``X-No-Bid-Reason`` when nothing reaches it, and campaigns and analytics show pacing."""

from __future__ import annotations

import requests

from shared_layer.campaigns.store.cache import VERSION_KEY
from tests.e2e.test_bid_support import (
    GATEWAY,
    Campaigns,
    campaign_body,
    redis_client,
    unique_placement,
    wait_for_snapshots,
)

BID = f"{GATEWAY}/function/bid"


def _floor(campaigns: Campaigns, method: str, placement: str, body: dict | None = None) -> int:
    r = campaigns._api(method, f"/floors/{placement}", json=body)
    wait_for_snapshots(int(redis_client().get(VERSION_KEY) or 0))
    return r.status_code


def test_a_floor_stops_low_bids_and_second_price_charges_the_next_bid() -> None:
    campaigns = Campaigns()
    placement = unique_placement("floor")
    high = campaigns.create(campaign_body(cpm="5", daily="100", rules=[("placement", placement)]))
    campaigns.create(campaign_body(cpm="3", daily="100", rules=[("placement", placement)]))
    payload = {"userId": "floor-user", "placementId": placement}

    assert _floor(campaigns, "PUT", placement, {"floorCpm": 4, "clearing": "second-price"}) == 200
    r = requests.post(BID, json=payload, timeout=10)
    assert r.status_code == 200, r.text
    # max(3.00 next bid, 4.00 floor) + 0.000001 CPM -> 4.000001 / 1000, rounded down
    assert (r.json()["campaignId"], r.json()["bidPrice"], r.json()["priceMicros"]) == (
        high,
        5,
        4_000,
    )

    assert _floor(campaigns, "PUT", placement, {"floorCpm": 6}) == 200
    r = requests.post(BID, json=payload, timeout=10)
    assert r.status_code == 204
    assert r.headers["X-No-Bid-Reason"].startswith("below-floor")
    assert "6.00" in r.headers["X-No-Bid-Reason"]

    assert _floor(campaigns, "DELETE", placement) == 204
    r = requests.post(BID, json=payload, timeout=10)
    assert r.status_code == 200 and r.json()["priceMicros"] == 5_000  # first price again
    assert campaigns._api("GET", f"/floors/{placement}").status_code == 404


def test_the_campaign_and_its_report_show_pacing_and_todays_spend() -> None:
    campaigns = Campaigns()
    placement = unique_placement("pacing")
    body = campaign_body(cpm="2", daily="100", rules=[("placement", placement)])
    body.update(pacing="even", timeZone="Europe/Paris")
    campaign_id = campaigns.create(body)
    assert requests.post(BID, json={"userId": "u", "placementId": placement}, timeout=10).ok
    shown = campaigns._api("GET", f"/{campaign_id}").json()
    assert (shown["pacing"], shown["timeZone"], shown["frequencyCap"]) == (
        "even",
        "Europe/Paris",
        None,
    )
    assert shown["spentToday"] == 0.002
    assert 0 < shown["expectedSpendNow"] <= 100
    report = requests.get(
        f"{GATEWAY}/function/analytics/campaign/{campaign_id}",
        params={"startDate": "2026-01-01", "endDate": "2026-01-01"},
        headers={"Authorization": f"Bearer {campaigns._token()}"},
        timeout=10,
    ).json()
    assert report["pacing"]["pacing"] == "even"
    assert report["pacing"]["spentToday"] == 0.002
