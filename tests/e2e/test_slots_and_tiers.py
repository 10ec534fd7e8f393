"""Decisioning III through the gateway: several slots per request without duplicates, each winner
charged exactly once (also under 8 processes of concurrent requests on tiny budgets), priority
tiers (sponsorship, standard, house) and key-values, against the real Redis ledger."""

from __future__ import annotations

import multiprocessing
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import requests

from tests.e2e.test_bid_support import (
    GATEWAY,
    Campaigns,
    campaign_body,
    spent,
    unique_placement,
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
