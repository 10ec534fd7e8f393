"""GET /function/serve through the gateway: ads that honour targeting, signed click URLs,
no fill once budgets are spent, and bad input refused with nothing charged."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from localplatform import secrets
from shared_layer.clicks.domain.clicktoken import verify
from tests.e2e.test_bid_support import (
    GATEWAY,
    PROFILE,
    Campaigns,
    campaign_body,
    gateway_invocations,
    others_could_fill,
    spent,
    unique_placement,
)
from tests.support import wait_for

SERVE = f"{GATEWAY}/function/serve"
AUDIENCE = (
    ("us_mobile", "3000", [("country", "US"), ("device_type", "mobile")]),
    ("de", "2000", [("country", "DE")]),
    ("young_gamers", "2500", [("interest", "e2e-gaming"), ("age_range", "18-24")]),
    ("anyone", "1000", []),
)


@pytest.fixture(scope="module")
def audience(platform):
    """Four campaigns on one placement of their own, from narrow to untargeted."""
    placement = unique_placement("serve")
    campaigns = Campaigns()
    ids = {
        name: campaigns.create(
            campaign_body(
                cpm=cpm, daily="1000", rules=[("placement", placement), *rules], title=name
            )
        )
        for name, cpm, rules in AUDIENCE
    }
    return placement, ids


def serve(**params) -> requests.Response:
    return requests.get(SERVE, params=params, timeout=10)


@pytest.mark.parametrize(
    ("params", "winner"),
    [
        ({"countryCode": "US", "deviceType": "mobile"}, "us_mobile"),
        ({"countryCode": "US", "deviceType": "desktop"}, "anyone"),
        (
            {"countryCode": "US", "deviceType": "mobile", "age": "20", "interests": "e2e-gaming"},
            "us_mobile",
        ),
        ({"countryCode": "FR", "age": "20", "interests": "music,e2e-gaming"}, "young_gamers"),
        ({"countryCode": "FR", "age": "30", "interests": "e2e-gaming"}, "anyone"),
        ({"countryCode": "FR", "age": "20"}, "anyone"),
        ({"countryCode": "DE", "deviceType": "tablet"}, "de"),
        ({}, "anyone"),
    ],
)
def test_serve_returns_the_best_ad_the_targeting_allows(audience, params, winner):
    placement, ids = audience
    r = serve(userId=f"user-{uuid.uuid4().hex[:8]}", placementId=placement, **params)
    assert r.status_code == 200, (r.status_code, r.headers, r.text)
    assert r.json()["campaignId"] == ids[winner], r.json()["title"]
    assert r.json()["title"] == winner


def test_an_ad_is_the_seed_shape_with_a_signed_click_url_and_the_price_charged(audience):
    placement, ids = audience
    before = spent(ids["us_mobile"])
    r = requests.get(
        SERVE,
        params={"userId": "user-123", "placementId": placement, "countryCode": "US",
                "deviceType": "mobile"},
        headers={"X-Request-Id": "e2e-req-1"},
        timeout=10,
    )  # fmt: skip
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Request-Id"] == "e2e-req-1"
    body = r.json()
    assert set(body) == {
        "adId", "campaignId", "title", "imageUrl", "redirectUrl", "clickTrackingUrl",
        "bidPrice", "impressionId",
    }  # fmt: skip
    assert body["bidPrice"] == 3000 and body["redirectUrl"] == "https://example.com/e2e"
    assert str(uuid.UUID(body["impressionId"])) == body["impressionId"]
    click = urlsplit(body["clickTrackingUrl"])
    assert body["clickTrackingUrl"].startswith(f"{PROFILE.service_env()['CLICK_BASE_URL']}?t=")
    key = secrets.read(PROFILE, "click-signing-key").encode()
    claims = verify(key, parse_qs(click.query)["t"][0], now=time.time())
    assert (claims.impression_id, claims.ad_id, claims.campaign_id, claims.user_id) == (
        body["impressionId"],
        body["adId"],
        ids["us_mobile"],
        "user-123",
    )
    assert claims.expires_at > time.time() + 3600
    after = spent(ids["us_mobile"])
    assert after == (before[0] + 3_000_000, before[1] + 3_000_000)  # CPM 3000: 3.00 each


def test_serve_calls_bid_at_bids_own_address_not_through_the_gateway(audience):
    """serve's BID_URL is the provider's invocation listener (bid's Service on Kubernetes):
    the ads are bid for and charged, and the gateway proxies serve's calls but none to bid."""
    placement, ids = audience
    before = spent(ids["us_mobile"])
    through = {name: gateway_invocations(name) for name in ("serve", "bid")}
    for _ in range(5):
        r = serve(userId="u-direct", placementId=placement, countryCode="US", deviceType="mobile")
        assert r.status_code == 200 and r.json()["campaignId"] == ids["us_mobile"], r.text
    assert spent(ids["us_mobile"])[0] == before[0] + 5 * 3_000_000
    # The gateway counts a call once it has answered it: wait for serve's five.
    counted = wait_for(lambda: gateway_invocations("serve") >= through["serve"] + 5, timeout_s=5)
    assert counted, (gateway_invocations("serve"), through)
    assert gateway_invocations("bid") == through["bid"]


def test_no_fill_once_every_budget_is_spent():
    placement = unique_placement("spent")
    campaign = Campaigns().create(
        campaign_body(cpm="1000", daily="2.50", rules=[("placement", placement)])
    )
    answers = [serve(userId=f"u-{n}", placementId=placement) for n in range(4)]
    winners = [r.json()["campaignId"] if r.status_code == 200 else None for r in answers]
    assert winners[:2] == [campaign, campaign], [r.text for r in answers]
    assert campaign not in winners[2:]
    assert spent(campaign) == (
        2_000_000,
        2_000_000,
    )  # two impressions of 1.00; 2.50 allows no third
    if not others_could_fill(placement, [campaign]):
        for r in answers[2:]:
            assert r.status_code == 204 and r.text == ""
            assert r.headers["X-No-Fill-Reason"] == "no-bid"


LONG = "u" * 129
BAD_QUERIES = [
    ({"placementId": "{p}"}, "userId"),
    ({"userId": "u-1"}, "placementId"),
    ({"userId": "", "placementId": "{p}"}, "userId"),
    ({"userId": "u-1", "placementId": ""}, "placementId"),
    ({"userId": LONG, "placementId": "{p}"}, "userId"),
    ({"userId": "x" * 6000, "placementId": "{p}"}, "userId"),
    ({"userId": "u-\x01", "placementId": "{p}"}, "userId"),
    ({"userId": "u-1", "placementId": "{p}", "age": "abc"}, "age"),
    ({"userId": "u-1", "placementId": "{p}", "age": "-3"}, "age"),
    ({"userId": "u-1", "placementId": "{p}", "age": "12.5"}, "age"),
    ({"userId": "u-1", "placementId": "{p}", "age": "151"}, "age"),
    ({"userId": "u-1", "placementId": "{p}", "countryCode": "usa"}, "countryCode"),
    ({"userId": "u-1", "placementId": "{p}", "deviceType": "toaster"}, "deviceType"),
    ({"userId": "u-1", "placementId": "{p}", "interests": ","}, "interests"),
    ({"userId": "u-1", "placementId": "{p}", "userid": "u-2"}, "userid"),
]


@pytest.mark.parametrize(("query", "field"), BAD_QUERIES)
def test_bad_input_is_a_400_with_the_error_body_and_nothing_charged(audience, query, field):
    placement, ids = audience
    before = {name: spent(campaign) for name, campaign in ids.items()}
    params = {k: v.replace("{p}", placement) for k, v in query.items()}
    r = requests.get(SERVE, params=params, headers={"X-Request-Id": "bad-1"}, timeout=10)
    assert r.status_code == 400, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error", "message", "requestId"}
    assert body["error"] == "INVALID_REQUEST" and body["requestId"] == "bad-1"
    assert field in body["message"]
    assert {name: spent(campaign) for name, campaign in ids.items()} == before


def test_other_methods_are_refused_with_the_error_body():
    r = requests.put(SERVE, data=b"{}", timeout=10)
    assert r.status_code == 405 and set(r.json()) == {"error", "message", "requestId"}
    # POST is for several slots: a body without them is a 400 that names them.
    r = requests.post(SERVE, data=b"{}", timeout=10)
    assert r.status_code == 400 and "slots" in r.json()["message"]
