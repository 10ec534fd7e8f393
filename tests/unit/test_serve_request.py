"""serve's pure steps: query to BidRequest, bid's answer back, the ad response, the click URL."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from shared_layer.bidding.service.bid_client import (
    SERVE_PARAMETERS,
    NoFillReason,
    ad_response,
    bid_request_from_query,
    click_tracking_url,
    parse_bid_answer,
)
from shared_layer.clicks.domain.clicktoken import verify
from shared_layer.kernel.errors import ValidationFailed, http_error
from shared_layer.kernel.models import AdContent, BidResponse

KEY = b"k" * 32
BID = BidResponse(
    campaign_id="c-1",
    ad_id="a-1",
    bid_cpm_micros=2_500_000,
    price_micros=2_500,
    ad_content=AdContent(
        title="Amazing Product",
        image_url="https://cdn.example.com/a.jpg",
        redirect_url="https://example.com/offer",
    ),
)
BASE = {"userId": "user-123", "placementId": "placement-001"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, {"country_code": None, "device_type": None, "age": None, "interests": set()}),
        (
            {"countryCode": "US", "deviceType": "mobile"},
            {"country_code": "US", "device_type": "mobile"},
        ),
        ({"age": "25"}, {"age": 25}),
        ({"age": "0"}, {"age": 0}),
        ({"interests": "tech"}, {"interests": {"tech"}}),
        ({"interests": "tech,gaming,music"}, {"interests": {"tech", "gaming", "music"}}),
        ({"interests": "home & garden"}, {"interests": {"home & garden"}}),
    ],
)
def test_valid_queries_become_bid_requests(extra, expected):
    request = bid_request_from_query({**BASE, **extra})
    assert request.user_id == "user-123" and request.placement_id == "placement-001"
    for name, value in expected.items():
        actual = request.interests if name == "interests" else getattr(request, name)
        assert actual == value, name


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"placementId": "p-1"}, "userId"),
        ({"userId": "u-1"}, "placementId"),
        ({}, "userId"),
        ({**BASE, "userId": ""}, "userId"),
        ({**BASE, "placementId": ""}, "placementId"),
        ({**BASE, "userId": "u" * 129}, "userId"),
        ({**BASE, "placementId": "p\x00"}, "placementId"),
        ({**BASE, "countryCode": "us"}, "countryCode"),
        ({**BASE, "countryCode": "USA"}, "countryCode"),
        ({**BASE, "countryCode": ""}, "countryCode"),
        ({**BASE, "deviceType": "phone"}, "deviceType"),
        ({**BASE, "age": "abc"}, "age"),
        ({**BASE, "age": "-1"}, "age"),
        ({**BASE, "age": "25.5"}, "age"),
        ({**BASE, "age": "1000"}, "age"),
        ({**BASE, "age": "151"}, "age"),
        ({**BASE, "age": ""}, "age"),
        ({**BASE, "interests": ""}, "interests"),
        ({**BASE, "interests": "a,,b"}, "interests"),
        ({**BASE, "interests": ",".join(f"i{n}" for n in range(51))}, "interests"),
        ({**BASE, "interests": "x" * 65}, "interests"),
        ({**BASE, "countrycode": "US"}, "countrycode"),
    ],
)
def test_bad_queries_are_validation_errors_naming_the_parameter(query, field):
    with pytest.raises(ValidationFailed) as caught:
        bid_request_from_query(query)
    assert any(name == field or name.startswith(field) for name in caught.value.fields), (
        caught.value.fields,
        caught.value.message,
    )
    assert field in caught.value.message
    status, body = http_error(caught.value, "req-1")
    assert status == 400 and body["error"] == "INVALID_REQUEST" and body["requestId"] == "req-1"


def test_every_problem_of_a_query_is_reported_at_once():
    with pytest.raises(ValidationFailed) as caught:
        bid_request_from_query({"userId": "", "bogus": "1"})
    assert {"userId", "placementId", "bogus"} <= set(caught.value.fields)


def test_the_request_sent_to_bid_is_the_seed_body():
    request = bid_request_from_query({**BASE, "countryCode": "US", "age": "30", "interests": "a"})
    body = json.loads(request.model_dump_json(exclude_none=True))
    assert body["userId"] == "user-123" and body["countryCode"] == "US"
    assert body["userAttributes"]["age"] == 30 and body["userAttributes"]["interests"] == ["a"]
    assert set(SERVE_PARAMETERS) == {
        "userId", "placementId", "countryCode", "deviceType", "age", "interests", "keyValues",
        "gdpr", "gdpr_consent", "us_privacy", "coppa", "explain",
    }  # fmt: skip


def test_bid_answer_round_trips_with_exact_money_and_impression_id():
    body = json.dumps({**BID.to_json(), "impressionId": "2f1c1b3e-0d7a-4b8e-9f55-1c2d3e4f5a6b"})
    parsed, impression_id = parse_bid_answer(body.encode())
    assert parsed == BID and impression_id == "2f1c1b3e-0d7a-4b8e-9f55-1c2d3e4f5a6b"
    # The specification writes 2.50; read without floats, it is still 2_500_000 micros.
    again, _ = parse_bid_answer(body.replace("2.5,", "2.50,").encode())
    assert again.bid_cpm_micros == 2_500_000


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        json.dumps(BID.to_json()).encode(),  # no impressionId
        json.dumps({**BID.to_json(), "impressionId": ""}).encode(),
        json.dumps({**BID.to_json(), "impressionId": "x", "bidPrice": "free"}).encode(),
        json.dumps({**BID.to_json(), "impressionId": "x", "campaignId": 7}).encode(),
    ],
)
def test_unreadable_bid_answers_are_validation_errors(body):
    with pytest.raises(ValidationFailed):
        parse_bid_answer(body)


def test_click_url_carries_a_signed_token_binding_the_impression():
    url = click_tracking_url(
        "https://ads.example.com/click",
        KEY,
        impression_id="imp-1",
        bid=BID,
        user_id="user-123",
        placement_id="placement-001",
        expires_at=1_900_000_000,
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "ads.example.com", "/click")
    (token,) = parse_qs(parts.query)["t"]
    claims = verify(KEY, token, now=1_800_000_000)
    assert (
        claims.impression_id,
        claims.ad_id,
        claims.campaign_id,
        claims.user_id,
        claims.placement_id,
    ) == ("imp-1", "a-1", "c-1", "user-123", "placement-001")
    assert claims.expires_at == 1_900_000_000


def test_click_url_appends_to_a_base_that_has_a_query():
    url = click_tracking_url(
        "https://ads.example.com/c?src=x",
        KEY,
        impression_id="i",
        bid=BID,
        user_id="u",
        placement_id="p",
        expires_at=1,
    )
    assert url.startswith("https://ads.example.com/c?src=x&t=v1.")


def test_ad_response_is_the_seed_shape():
    body = ad_response(BID, "imp-1", "https://ads.example.com/click?t=v1.x.y")
    assert body == {
        "adId": "a-1",
        "campaignId": "c-1",
        "title": "Amazing Product",
        "imageUrl": "https://cdn.example.com/a.jpg",
        "redirectUrl": "https://example.com/offer",
        "clickTrackingUrl": "https://ads.example.com/click?t=v1.x.y",
        "bidPrice": 2.5,
        "impressionId": "imp-1",
    }


def test_no_fill_reasons_are_the_documented_header_values():
    assert {str(r) for r in NoFillReason} == {
        "no-bid",
        "bid-timeout",
        "bid-error",
        "circuit-open",
    }
