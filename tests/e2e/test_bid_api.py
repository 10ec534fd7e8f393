"""POST /function/bid through the gateway: the specification's answer plus impressionId and
priceMicros, the charge in Redis, and bad input refused (400/413, the error body) with nothing
charged."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.e2e.test_bid_support import GATEWAY, Campaigns, campaign_body, spent, unique_placement

BID = f"{GATEWAY}/function/bid"


@pytest.fixture(scope="module")
def campaign():
    placement = unique_placement("bid")
    campaign_id = Campaigns().create(
        campaign_body(
            cpm="1234.5678",
            daily="500",
            lifetime="600",
            rules=[("placement", placement), ("country", "US")],
        )
    )
    return placement, campaign_id


def test_a_winning_bid_is_charged_once_and_answered_in_the_seed_shape(campaign):
    placement, campaign_id = campaign
    before = spent(campaign_id)
    payload = {
        "userId": "user-123",
        "placementId": placement,
        "countryCode": "US",
        "deviceType": "mobile",
        "userAttributes": {"age": 25, "interests": ["tech"], "purchaseHistory": ["electronics"]},
    }
    r = requests.post(BID, json=payload, headers={"X-Request-Id": "bid-e2e-1"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["X-Request-Id"] == "bid-e2e-1"
    body = r.json()
    assert body["campaignId"] == campaign_id
    assert body["bidPrice"] == 1234.5678 and body["priceMicros"] == 1_234_567  # floor(CPM/1000)
    assert body["confidence"] == 1.0
    assert set(body["adContent"]) == {"title", "imageUrl", "redirectUrl"}
    assert str(uuid.UUID(body["impressionId"])) == body["impressionId"]
    assert spent(campaign_id) == (before[0] + 1_234_567, before[1] + 1_234_567)


def test_each_bid_gets_its_own_impression_id(campaign):
    placement, _ = campaign
    payload = {"userId": "u-1", "placementId": placement, "countryCode": "US"}
    ids = {requests.post(BID, json=payload, timeout=10).json()["impressionId"] for _ in range(5)}
    assert len(ids) == 5


def test_a_request_nothing_is_eligible_for_is_a_204(campaign):
    placement, campaign_id = campaign
    before = spent(campaign_id)
    r = requests.post(
        BID, json={"userId": "u-1", "placementId": placement, "countryCode": "FR"}, timeout=10
    )
    # Campaigns of other suites may be unrestricted; ours must not win (it wants US).
    assert r.status_code == 204 or r.json()["campaignId"] != campaign_id
    assert spent(campaign_id) == before


def _valid(placement: str) -> dict:
    return {"userId": "u-1", "placementId": placement, "countryCode": "US"}


BAD_BODIES = [
    ("malformed JSON", lambda p: b'{"userId": "u-1", "placementId": ', 400),
    ("empty body", lambda p: b"", 400),
    ("a JSON array", lambda p: json.dumps([_valid(p)]).encode(), 400),
    ("a JSON string", lambda p: b'"u-1"', 400),
    ("null", lambda p: b"null", 400),
    ("userId a number", lambda p: json.dumps({**_valid(p), "userId": 5}).encode(), 400),
    ("userId empty", lambda p: json.dumps({**_valid(p), "userId": ""}).encode(), 400),
    ("userId oversized", lambda p: json.dumps({**_valid(p), "userId": "u" * 129}).encode(), 400),
    ("no placementId", lambda p: json.dumps({"userId": "u-1", "countryCode": "US"}).encode(), 400),
    ("unknown field", lambda p: json.dumps({**_valid(p), "countrycode": "US"}).encode(), 400),
    ("country lower case", lambda p: json.dumps({**_valid(p), "countryCode": "us"}).encode(), 400),
    (
        "age as text",
        lambda p: json.dumps({**_valid(p), "userAttributes": {"age": "25"}}).encode(),
        400,
    ),
    (
        "age negative",
        lambda p: json.dumps({**_valid(p), "userAttributes": {"age": -1}}).encode(),
        400,
    ),
    (
        "51 interests",
        lambda p: json.dumps(
            {**_valid(p), "userAttributes": {"interests": [f"i{n}" for n in range(51)]}}
        ).encode(),
        400,
    ),
    (
        "userAttributes a list",
        lambda p: json.dumps({**_valid(p), "userAttributes": []}).encode(),
        400,
    ),
    ("invalid UTF-8", lambda p: b'{"userId": "\xff\xfe", "placementId": "x"}', 400),
    (
        "a 100 KB body",
        lambda p: json.dumps({**_valid(p), "userId": "u" * 100_000}).encode(),
        413,
    ),
    (
        "a 2 MB body",
        lambda p: json.dumps({**_valid(p), "pad": "x" * 2_000_000}).encode(),
        413,
    ),
]


@pytest.mark.parametrize(
    ("label", "make", "status"), BAD_BODIES, ids=[case[0] for case in BAD_BODIES]
)
def test_bad_input_is_refused_with_the_error_body_and_nothing_charged(
    campaign, label, make, status
):
    placement, campaign_id = campaign
    before = spent(campaign_id)
    r = requests.post(
        BID,
        data=make(placement),
        headers={"Content-Type": "application/json", "X-Request-Id": "bad-bid-1"},
        timeout=10,
    )
    assert r.status_code == status, (label, r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error", "message", "requestId"} and body["requestId"] == "bad-bid-1"
    assert body["error"] == ("INVALID_REQUEST" if status == 400 else "PAYLOAD_TOO_LARGE")
    assert spent(campaign_id) == before


def test_get_is_refused_with_the_error_body():
    r = requests.get(BID, timeout=10)
    assert r.status_code == 405 and set(r.json()) == {"error", "message", "requestId"}
