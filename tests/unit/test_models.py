"""Models: strict validation where data enters, with messages that name the fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared_layer.kernel.errors import PayloadTooLarge, ValidationFailed
from shared_layer.kernel.models import (
    MAX_BID_REQUEST_BYTES,
    AdContent,
    BidRequest,
    BidResponse,
    Campaign,
    TargetingRule,
    parse,
)

from .auction_fixtures import make_ad, make_campaign

SEED_BID_REQUEST = {
    "userId": "user-123",
    "placementId": "placement-001",
    "countryCode": "US",
    "deviceType": "mobile",
    "userAttributes": {
        "age": 25,
        "interests": ["tech", "gaming"],
        "purchaseHistory": ["electronics"],
    },
}


def _with(**changes: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(SEED_BID_REQUEST))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = body
        for parent in parents:
            target = target[parent]
        if value is _DROP:
            del target[leaf]
        else:
            target[leaf] = value
    return body


_DROP = object()


def test_the_seed_request_parses() -> None:
    request = parse(BidRequest, json.dumps(SEED_BID_REQUEST).encode())
    assert request.user_id == "user-123"
    assert request.placement_id == "placement-001"
    assert request.country_code == "US"
    assert request.device_type == "mobile"
    assert request.age == 25
    assert request.interests == frozenset({"tech", "gaming"})
    assert request.user_attributes.purchase_history == ("electronics",)


def test_only_user_and_placement_are_required() -> None:
    request = parse(BidRequest, {"userId": "u", "placementId": "p"})
    assert (request.country_code, request.device_type, request.age) == (None, None, None)
    assert request.interests == frozenset()


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        (_with(userId=_DROP), "userId", "Field required"),
        (_with(placementId=_DROP), "placementId", "Field required"),
        (_with(userId=""), "userId", "at least 1 character"),
        (_with(userId="u" * 129), "userId", "at most 128 characters"),
        (_with(placementId="p" * 129), "placementId", "at most 128 characters"),
        (_with(userId="a\nb"), "userId", "not allowed"),
        (_with(userId=123), "userId", "valid string"),
        (_with(countryCode="us"), "countryCode", "two upper-case letters"),
        (_with(countryCode="USA"), "countryCode", "two upper-case letters"),
        (_with(deviceType="phone"), "deviceType", "'mobile', 'desktop', 'tablet' or 'ctv'"),
        (_with(userAttributes__age="25"), "userAttributes.age", "valid integer"),
        (_with(userAttributes__age=25.0), "userAttributes.age", "valid integer"),
        (_with(userAttributes__age=True), "userAttributes.age", "valid integer"),
        (_with(userAttributes__age=-1), "userAttributes.age", "greater than or equal to 0"),
        (_with(userAttributes__age=151), "userAttributes.age", "less than or equal to 150"),
        (_with(userAttributes__interests="tech"), "userAttributes.interests", "valid"),
        (_with(userAttributes__interests=["x"] * 51), "userAttributes.interests", "at most 50"),
        (_with(userAttributes__interests=[""]), "userAttributes.interests.0", "at least 1"),
        (_with(userAttributes__interests=["i" * 65]), "userAttributes.interests.0", "at most 64"),
        (_with(userAttributes__purchaseHistory=[1]), "userAttributes.purchaseHistory.0", "string"),
        (_with(userAttributes__shoeSize=44), "userAttributes.shoeSize", "Extra inputs"),
        (_with(countrycode="US"), "countrycode", "Extra inputs"),
        (_with(userAttributes=None), "userAttributes", "should be an object"),
        ([], "body", "should be an object"),
    ],
)
def test_invalid_requests_name_the_field(body: Any, field: str, problem: str) -> None:
    for raw in (json.dumps(body).encode(), body):
        with pytest.raises(ValidationFailed) as caught:
            parse(BidRequest, raw)
        assert field in caught.value.fields
        assert f"{field}: " in caught.value.message
        assert problem in caught.value.message


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"{'userId': 'u'}", b"\xff\xfe", b"null", b"[1, 2]", b'"text"', b"NaN"],
)
def test_malformed_bodies_are_a_validation_failure_not_a_crash(raw: bytes) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(BidRequest, raw)
    assert caught.value.status == 400


def test_huge_bodies_are_refused_before_parsing() -> None:
    with pytest.raises(PayloadTooLarge):
        parse(BidRequest, b" " * (MAX_BID_REQUEST_BYTES + 1))


def test_many_problems_are_listed_with_a_bound() -> None:
    body = {"userAttributes": {"interests": [1] * 50}}
    with pytest.raises(ValidationFailed) as caught:
        parse(BidRequest, body)
    assert caught.value.message.endswith("more")
    assert len(caught.value.fields) == 52


@pytest.mark.parametrize(
    ("rule_type", "value", "stored"),
    [
        ("country", "US", "US"),
        ("device_type", "ctv", "ctv"),
        ("interest", "tech", "tech"),
        ("placement", "placement-001", "placement-001"),
        ("age_range", "18-24", "18-24"),
        ("age_range", "018-024", "18-24"),
        ("age_range", "13-120", "13-120"),
        ("age_range", "30-30", "30-30"),
    ],
)
def test_valid_targeting_rules(rule_type: str, value: str, stored: str) -> None:
    rule = parse(TargetingRule, {"ruleType": rule_type, "ruleValue": value})
    assert (rule.rule_type, rule.rule_value) == (rule_type, stored)


@pytest.mark.parametrize(
    ("rule_type", "value", "problem"),
    [
        ("country", "us", "two upper-case letters"),
        ("country", "U1", "two upper-case letters"),
        ("device_type", "phone", "device_type must be one of"),
        ("age_range", "24-18", "written like 18-24"),
        ("age_range", "12-18", "written like 18-24"),
        ("age_range", "18-121", "written like 18-24"),
        ("age_range", "18", "written like 18-24"),
        ("age_range", "a-b", "written like 18-24"),
        ("interest", "", "at least 1 character"),
        ("interest", "i" * 65, "at most 64 characters"),
        ("placement", "", "at least 1 character"),
        ("zip_code", "10001", "'country', 'device_type', 'interest', 'age_range' or 'placement'"),
    ],
)
def test_invalid_targeting_rules(rule_type: str, value: str, problem: str) -> None:
    with pytest.raises(ValidationFailed, match=problem):
        parse(TargetingRule, {"ruleType": rule_type, "ruleValue": value})


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"cpmMicros": 0}, "greater than or equal to 1000"),
        ({"cpmMicros": 999}, "greater than or equal to 1000"),
        ({"cpmMicros": "2500000"}, "valid integer"),
        ({"cpmMicros": 2.5}, "valid integer"),
        ({"dailyBudgetMicros": -1}, "greater than or equal to 0"),
        ({"lifetimeBudgetMicros": 5}, "lifetimeBudgetMicros must not be below"),
        ({"status": "deleted"}, "'active', 'paused' or 'ended'"),
        ({"name": ""}, "at least 1 character"),
        ({"ads": [{**make_ad("c-2").model_dump(), "id": "ad-9"}]}, "belong to another campaign"),
        ({"ads": [{**make_ad("c-1").model_dump(), "redirectUrl": "javascript:alert(1)"}]}, "http"),
        ({"ads": [{**make_ad("c-1").model_dump(), "imageUrl": "https://"}]}, "http"),
    ],
)
def test_campaign_invariants(changes: dict[str, Any], problem: str) -> None:
    body = make_campaign("c-1", daily_budget_micros=10).model_dump(by_alias=True)
    body.update(changes)
    with pytest.raises(ValidationFailed, match=problem):
        parse(Campaign, body)


def test_campaign_round_trips_through_its_cache_json_with_grouped_rules() -> None:
    campaign = make_campaign(
        "c-1",
        rules=(
            ("country", "US"),
            ("country", "GB"),
            ("age_range", "35-54"),
            ("age_range", "18-24"),
        ),
        ads=2,
        lifetime_budget_micros=5_000_000,
    )
    again = parse(Campaign, campaign.model_dump_json())
    assert again == campaign
    assert again.targeting == {
        "country": frozenset({"US", "GB"}),
        "age_range": again.targeting["age_range"],
    }
    assert again.age_ranges == ((18, 24), (35, 54))
    assert "cpmMicros" in json.loads(campaign.model_dump_json())


def _response(**changes: Any) -> BidResponse:
    fields: dict[str, Any] = {
        "campaign_id": "campaign-456",
        "ad_id": "ad-789",
        "bid_cpm_micros": 2_500_000,
        "price_micros": 2_500,
        "ad_content": AdContent(
            title="Amazing Product",
            image_url="https://cdn.example.com/ads/campaign-456/image.jpg",
            redirect_url="https://example.com/offer",
        ),
    }
    fields.update(changes)
    return BidResponse(**fields)


def test_bid_response_writes_the_seed_shape() -> None:
    assert _response().to_json() == {
        "campaignId": "campaign-456",
        "adId": "ad-789",
        "bidPrice": 2.5,
        "priceMicros": 2_500,
        "adContent": {
            "title": "Amazing Product",
            "imageUrl": "https://cdn.example.com/ads/campaign-456/image.jpg",
            "redirectUrl": "https://example.com/offer",
        },
        "confidence": 1.0,
    }


@pytest.mark.parametrize("cpm", [1_000, 2_500_000, 123_456_789, 999_999_999_999_999])
def test_bid_response_reads_back_exactly(cpm: int) -> None:
    response = _response(bid_cpm_micros=cpm)
    assert BidResponse.from_json(json.dumps(response.to_json())) == response


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"campaignId": "c"}', "bidPrice: Field required"),
        (b'{"bidPrice": "abc"}', "bidPrice"),
        (b'{"bidPrice": 2.5}', "campaignId"),
    ],
)
def test_bad_bid_responses_are_validation_failures(body: bytes, problem: str) -> None:
    with pytest.raises(ValidationFailed, match=problem):
        BidResponse.from_json(body)


def test_a_copy_with_new_rules_does_not_keep_the_old_grouping() -> None:
    campaign = make_campaign("c-1", rules=(("country", "US"),))
    assert campaign.targeting == {"country": frozenset({"US"})}
    changed = campaign.model_copy(
        update={"targeting_rules": (TargetingRule(rule_type="country", rule_value="GB"),)}
    )
    assert changed.targeting == {"country": frozenset({"GB"})}
    assert campaign.targeting == {"country": frozenset({"US"})}
