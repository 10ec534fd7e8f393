"""Decisioning III through the gateway: several slots per request without duplicates, each winner
charged exactly once (also under 8 processes of concurrent requests on tiny budgets), priority
tiers (sponsorship, standard, house) and key-values, against the real Redis ledger."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime

import requests

from shared_layer.campaigns.store.cache import VERSION_KEY
from tests.e2e.test_bid_support import (
    GATEWAY,
    Campaigns,
    campaign_body,
    redis_client,
    spent,
    unique_placement,
    wait_for_snapshots,
)

BID = f"{GATEWAY}/function/bid"
SERVE = f"{GATEWAY}/function/serve"


def _campaign(placement: str, cpm: str, daily: str = "100", **fields: object) -> dict:
    body = campaign_body(cpm=cpm, daily=daily, rules=[("placement", placement)])
    body.update(fields)
    return body


def _three_slots(placement: str, duplicates: str = "advertiser") -> dict:
    return {
        "userId": f"u-{uuid.uuid4().hex[:8]}",
        "duplicates": duplicates,
        "slots": [{"name": n, "placementId": placement} for n in ("top", "side", "bottom")],
    }


def test_three_slots_at_advertiser_level_serve_three_advertisers_each_charged_once() -> None:
    campaigns = Campaigns()
    placement = unique_placement("slots")
    shared, other, third = (str(uuid.uuid4()) for _ in range(3))
    ids = {
        "a-high": campaigns.create(_campaign(placement, "9", advertiserId=shared)),
        "a-next": campaigns.create(_campaign(placement, "8", advertiserId=shared)),
        "b": campaigns.create(_campaign(placement, "7", advertiserId=other)),
        "c": campaigns.create(_campaign(placement, "6", advertiserId=third)),
    }
    r = requests.post(BID, json=_three_slots(placement), timeout=10)
    assert r.status_code == 200, r.text
    slots = r.json()["slots"]
    winners = {name: [ad["campaignId"] for ad in ads] for name, ads in slots.items()}
    assert winners == {"top": [ids["a-high"]], "side": [ids["b"]], "bottom": [ids["c"]]}
    assert len({ads[0]["impressionId"] for ads in slots.values()}) == 3
    for name, cpm in (("a-high", 9), ("b", 7), ("c", 6)):
        assert spent(ids[name]) == (cpm * 1_000, cpm * 1_000)
    assert spent(ids["a-next"]) == (0, 0)

    # serve: GET with repeated slot parameters, and POST with the same JSON body.
    got = requests.get(
        SERVE,
        params=[
            ("userId", "u-serve"),
            ("duplicates", "advertiser"),
            ("slot", f"top:{placement}"),
            ("slot", f"side:{placement}::1"),
        ],
        timeout=10,
    )
    assert got.status_code == 200, got.text
    served = got.json()["slots"]
    assert [served["top"][0]["campaignId"], served["side"][0]["campaignId"]] == [
        ids["a-high"],
        ids["b"],
    ]
    assert all(ad["clickTrackingUrl"].count("t=") == 1 for ads in served.values() for ad in ads)
    posted = requests.post(SERVE, json=_three_slots(placement, "campaign"), timeout=10)
    assert posted.status_code == 200, posted.text
    assert [ads[0]["campaignId"] for ads in posted.json()["slots"].values()] == [
        ids["a-high"],
        ids["a-next"],
        ids["b"],
    ]


def test_the_one_slot_request_and_answer_are_unchanged() -> None:
    campaigns = Campaigns()
    placement = unique_placement("one-slot")
    campaign = campaigns.create(_campaign(placement, "3"))
    r = requests.post(BID, json={"userId": "u-1", "placementId": placement}, timeout=10)
    assert r.status_code == 200
    assert set(r.json()) == {
        "bidPrice",
        "campaignId",
        "adId",
        "priceMicros",
        "adContent",
        "confidence",
        "impressionId",
    }
    assert r.json()["campaignId"] == campaign


def fire_slots(placement: str, count: int, threads: int) -> list[list[tuple[str, int, str]]]:
    """`count` three-slot requests from `threads` threads: each answer's (campaign, price,
    impression id) winners. Module-level so that spawned processes can run it."""

    def one(_: int) -> list[tuple[str, int, str]]:
        r = requests.post(BID, json=_three_slots(placement), timeout=30)
        assert r.status_code in (200, 204), r.text
        if r.status_code == 204:
            return []
        return [
            (ad["campaignId"], ad["priceMicros"], ad["impressionId"])
            for ads in r.json()["slots"].values()
            for ad in ads
        ]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


# name: (CPM, daily budget, impressions the budget allows)
TINY = {
    "a": ("5000", "15", 3),
    "b": ("4000", "8", 2),
    "c": ("3000", "7.50", 2),
    "d": ("2000", "2", 1),
}


def test_eight_processes_of_concurrent_multi_slot_requests_never_overspend() -> None:
    campaigns = Campaigns()
    placement = unique_placement("slots-load")
    advertisers = {name: str(uuid.uuid4()) for name in TINY}
    ids = {
        name: campaigns.create(_campaign(placement, cpm, daily, advertiserId=advertisers[name]))
        for name, (cpm, daily, _) in TINY.items()
    }
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(8, mp_context=spawn) as processes:
        answers = [
            a
            for f in [processes.submit(fire_slots, placement, 12, 4) for _ in range(8)]
            for a in f.result()
        ]
    assert len(answers) == 96
    by_campaign = {v: k for k, v in ids.items()}
    for answer in answers:
        shown = [by_campaign[c] for c, _, _ in answer]
        assert len(shown) == len(set(shown))  # one advertiser each: never twice per request
    wins = Counter(c for answer in answers for c, _, _ in answer)
    impression_ids = [imp for answer in answers for _, _, imp in answer]
    assert len(set(impression_ids)) == len(impression_ids)
    for name, (cpm, daily, allowed) in TINY.items():
        price = int(cpm) * 1_000
        daily_spent, lifetime_spent = spent(ids[name])
        assert daily_spent == lifetime_spent == wins[ids[name]] * price, name
        assert daily_spent <= int(float(daily) * 1_000_000)
        assert wins[ids[name]] == allowed, (name, wins[ids[name]])


def _winner(placement: str, **extra: object) -> tuple[str | None, int]:
    r = requests.post(BID, json={"userId": "u-tier", "placementId": placement, **extra}, timeout=10)
    assert r.status_code in (200, 204), r.text
    return (r.json()["campaignId"], r.json()["priceMicros"]) if r.status_code == 200 else (None, 0)


def test_sponsorship_beats_standard_until_its_goal_is_met_then_house_fills_at_no_charge() -> None:
    campaigns = Campaigns()
    placement = unique_placement("tiers")
    sponsor = campaigns.create(
        _campaign(
            placement,
            "1",
            tier="sponsorship",
            goal={"impressions": 1, "period": "lifetime"},
        )
    )
    standard = campaigns.create(_campaign(placement, "5000", daily="5"))  # one impression
    house = campaigns.create(_campaign(placement, "50", daily="0", tier="house"))
    assert _winner(placement) == (sponsor, 1_000)  # CPM 1 beats CPM 5000: behind its goal
    assert _winner(placement) == (standard, 5_000_000)  # goal met: the standard one wins
    assert _winner(placement) == (house, 0)  # both exhausted: the house ad, charged 0
    assert spent(house) == (0, 0)
    shown = campaigns._api("GET", f"/{house}").json()
    assert shown["tier"] == "house"


def test_key_values_any_of_and_none_of_through_bid() -> None:
    campaigns = Campaigns()
    placement = unique_placement("kv")
    sports = campaigns.create(
        _campaign(
            placement,
            "5",
            keyValues={"section": ["sports"]},
            excludedKeyValues={"lang": ["de"]},
        )
    )
    assert _winner(placement, keyValues={"section": ["sports"]})[0] == sports
    assert _winner(placement, keyValues={"section": ["news"]})[0] is None
    assert _winner(placement, keyValues={"section": ["sports"], "lang": ["de"]})[0] is None
    assert _winner(placement)[0] is None
    query = {"userId": "u-kv", "placementId": placement}
    served = requests.get(SERVE, params={**query, "keyValues": "section:news|sports"}, timeout=10)
    assert served.status_code == 200 and served.json()["campaignId"] == sports
    excluded = {**query, "keyValues": "section:sports,lang:de"}
    assert requests.get(SERVE, params=excluded, timeout=10).status_code == 204


def test_the_explainer_needs_the_admin_token_and_moves_the_same_money() -> None:
    campaigns = Campaigns()
    placement = unique_placement("explain")
    winner = campaigns.create(_campaign(placement, "5", daily="100"))
    sports = campaigns.create(_campaign(placement, "9", keyValues={"section": ["sports"]}))
    cheap = campaigns.create(_campaign(placement, "1"))
    body = {"userId": "u-explain", "placementId": placement}
    admin = {"Authorization": f"Bearer {campaigns._token()}"}

    plain = requests.post(BID, json=body, timeout=10)
    explained = requests.post(f"{BID}?explain=1", json=body, headers=admin, timeout=10)
    assert plain.status_code == explained.status_code == 200
    assert "explain" not in plain.json()
    explanation = explained.json()["explain"]
    reasons = {row["campaignId"]: row["reason"] for row in explanation["candidates"]}
    assert reasons == {winner: "won", sports: "targeting", cheap: "lower-bid"}
    assert explanation["winner"] == {"campaignId": winner, "priceMicros": 5_000}
    assert spent(winner) == (2 * 5_000, 2 * 5_000)  # the explained request charged as the other

    ignored = requests.post(
        f"{BID}?explain=1", json=body, headers={"Authorization": "Bearer wrong"}, timeout=10
    )
    assert ignored.status_code == 200 and "explain" not in ignored.json()
    header = requests.post(BID, json=body, headers={**admin, "X-Explain": "1"}, timeout=10)
    assert "explain" in header.json()
    assert spent(winner) == (4 * 5_000, 4 * 5_000)


def test_the_explainer_on_several_slots_through_bid_and_serve_moves_the_same_money() -> None:
    campaigns = Campaigns()
    placement = unique_placement("explain-slots")
    shared = str(uuid.uuid4())
    a_high = campaigns.create(
        _campaign(placement, "9", advertiserId=shared, exclusionLabels=["auto"])
    )
    a_next = campaigns.create(_campaign(placement, "8", advertiserId=shared))
    rival = campaigns.create(
        _campaign(placement, "7.5", advertiserId=str(uuid.uuid4()), exclusionLabels=["auto"])
    )
    other = campaigns.create(_campaign(placement, "7", advertiserId=str(uuid.uuid4())))
    admin = {"Authorization": f"Bearer {campaigns._token()}"}
    body = {
        "userId": "u-explain-slots",
        "duplicates": "advertiser",
        "slots": [{"name": n, "placementId": placement} for n in ("top", "side")],
    }

    plain = requests.post(BID, json=body, timeout=10)
    explained = requests.post(f"{BID}?explain=1", json=body, headers=admin, timeout=10)
    assert plain.status_code == explained.status_code == 200, explained.text
    assert "explain" not in plain.json()
    assert _campaigns_of(plain.json()) == _campaigns_of(explained.json())
    slots = explained.json()["explain"]["slots"]
    reasons = {
        name: {row["campaignId"]: row["reason"] for row in slot["candidates"]}
        for name, slot in slots.items()
    }
    assert reasons == {
        "top": {a_high: "won", a_next: "lower-bid", rival: "lower-bid", other: "lower-bid"},
        "side": {a_high: "duplicate", a_next: "duplicate", rival: "duplicate", other: "won"},
    }
    assert slots["top"]["winners"] == [{"campaignId": a_high, "priceMicros": 9_000}]
    assert slots["side"]["winners"] == [{"campaignId": other, "priceMicros": 7_000}]
    # The explained request charged exactly as the plain one.
    assert spent(a_high) == (2 * 9_000, 2 * 9_000) and spent(other) == (2 * 7_000, 2 * 7_000)
    assert spent(a_next) == spent(rival) == (0, 0)

    # serve passes explain on to bid: POST, GET with slots, and one slot; ignored without the token.
    posted = requests.post(f"{SERVE}?explain=1", json=body, headers=admin, timeout=10)
    assert posted.status_code == 200, posted.text
    assert posted.json()["slots"]["side"][0]["campaignId"] == other
    assert posted.json()["explain"]["slots"]["side"]["winners"][0]["campaignId"] == other
    query = [
        ("userId", "u-explain-get"),
        ("duplicates", "advertiser"),
        ("slot", f"top:{placement}"),
        ("slot", f"side:{placement}"),
    ]
    got = requests.get(SERVE, params=query, headers={**admin, "X-Explain": "1"}, timeout=10)
    assert got.status_code == 200 and "explain" in got.json(), got.text
    wrong = {"Authorization": "Bearer wrong"}
    ignored = requests.get(SERVE, params=[*query, ("explain", "1")], headers=wrong, timeout=10)
    assert ignored.status_code == 200 and "explain" not in ignored.json()
    one = requests.get(
        SERVE,
        params={"userId": "u-1", "placementId": placement, "explain": "1"},
        headers=admin,
        timeout=10,
    )
    assert one.status_code == 200 and one.json()["campaignId"] == a_high, one.text
    assert one.json()["explain"]["winner"] == {"campaignId": a_high, "priceMicros": 9_000}
    assert spent(a_high) == (6 * 9_000, 6 * 9_000) and spent(other) == (5 * 7_000, 5 * 7_000)


def _campaigns_of(answer: dict) -> dict[str, list[str]]:
    return {name: [ad["campaignId"] for ad in ads] for name, ads in answer["slots"].items()}


def test_a_placements_duplicate_level_applies_when_the_request_sets_none() -> None:
    campaigns = Campaigns()
    placement = unique_placement("placement-level")
    shared = str(uuid.uuid4())
    best = campaigns.create(_campaign(placement, "9", advertiserId=shared))
    campaigns.create(_campaign(placement, "8", advertiserId=shared))
    other = campaigns.create(_campaign(placement, "7", advertiserId=str(uuid.uuid4())))
    put = campaigns._api(
        "PUT", f"/floors/{placement}", json={"floorCpm": 0, "duplicates": "advertiser"}
    )
    assert put.status_code == 200 and put.json()["duplicates"] == "advertiser", put.text
    wait_for_snapshots(int(redis_client().get(VERSION_KEY) or 0))
    try:
        body = _three_slots(placement)
        del body["duplicates"]
        body["slots"] = body["slots"][:2]
        r = requests.post(BID, json=body, timeout=10)
        assert r.status_code == 200 and _campaigns_of(r.json()) == {"top": [best], "side": [other]}
        # The request's own level wins over the placement's.
        r = requests.post(BID, json={**body, "duplicates": "none"}, timeout=10)
        assert r.status_code == 200 and _campaigns_of(r.json()) == {"top": [best], "side": [best]}
    finally:
        assert campaigns._api("DELETE", f"/floors/{placement}").status_code == 204


def test_a_house_impression_is_counted_apart_in_analytics_through_the_pipeline() -> None:
    campaigns = Campaigns()
    placement = unique_placement("house")
    house = campaigns.create(_campaign(placement, "50", daily="0", tier="house"))
    paid_placement = unique_placement("paid")
    standard = campaigns.create(_campaign(paid_placement, "2"))
    for where, winner in ((placement, house), (paid_placement, standard)):
        served = requests.get(SERVE, params={"userId": "u-house", "placementId": where}, timeout=10)
        assert served.status_code == 200 and served.json()["campaignId"] == winner, served.text

    house_report = _report_once_counted(campaigns, house)
    assert house_report["summary"]["houseImpressions"] == 1
    assert house_report["summary"]["totalSpendMicros"] == 0
    assert house_report["pacing"]["tier"] == "house"
    standard_report = _report_once_counted(campaigns, standard)
    assert standard_report["summary"]["houseImpressions"] == 0
    assert standard_report["summary"]["totalSpendMicros"] == 2_000


def _report_once_counted(campaigns: Campaigns, campaign_id: str) -> dict:
    """Today's report of the campaign once the pipeline counted its one impression."""
    day = datetime.now(UTC).date().isoformat()
    deadline = time.monotonic() + 60
    while True:
        report = requests.get(
            f"{GATEWAY}/function/analytics/campaign/{campaign_id}",
            params={"startDate": day, "endDate": day},
            headers={"Authorization": f"Bearer {campaigns._token()}"},
            timeout=10,
        ).json()
        if report["summary"]["totalImpressions"] >= 1 or time.monotonic() > deadline:
            assert report["summary"]["totalImpressions"] == 1, report
            return report
        time.sleep(0.5)
