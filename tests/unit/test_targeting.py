"""Targeting: each check alone (table), and all of them against the specification (property)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from shared_layer.bidding.domain.targeting import (
    ELIGIBILITY_CHECKS,
    RULE_CHECKS,
    EligibilityCheck,
    failed_checks,
    has_ads,
    is_active,
    is_eligible,
    matches_age_range,
    matches_country,
    matches_device_type,
    matches_interest,
    matches_placement,
)
from shared_layer.kernel.models import RULE_TYPES, BidRequest, Campaign

from .auction_fixtures import (
    _rule_matches,
    bid_requests,
    campaign_lists,
    make_campaign,
    make_request,
    reference_eligible,
)

US_MOBILE_25 = {"country_code": "US", "device_type": "mobile", "age": 25, "interests": ("tech",)}


@pytest.mark.parametrize(
    ("check", "campaign_fields", "request_fields", "expected"),
    [
        (is_active, {"status": "active"}, {}, True),
        (is_active, {"status": "paused"}, {}, False),
        (is_active, {"status": "ended"}, {}, False),
        (has_ads, {"ads": 1}, {}, True),
        (has_ads, {"ads": 0}, {}, False),
        # No rule of a type: unrestricted on it, even when the request says nothing.
        (matches_country, {}, {}, True),
        (matches_country, {}, US_MOBILE_25, True),
        (matches_country, {"rules": (("country", "US"),)}, US_MOBILE_25, True),
        (matches_country, {"rules": (("country", "GB"), ("country", "US"))}, US_MOBILE_25, True),
        (matches_country, {"rules": (("country", "GB"),)}, US_MOBILE_25, False),
        (matches_country, {"rules": (("country", "US"),)}, {}, False),
        (matches_device_type, {"rules": (("device_type", "mobile"),)}, US_MOBILE_25, True),
        (matches_device_type, {"rules": (("device_type", "ctv"),)}, US_MOBILE_25, False),
        (matches_device_type, {"rules": (("device_type", "ctv"),)}, {}, False),
        (matches_interest, {"rules": (("interest", "tech"),)}, US_MOBILE_25, True),
        (
            matches_interest,
            {"rules": (("interest", "music"), ("interest", "tech"))},
            US_MOBILE_25,
            True,
        ),
        (matches_interest, {"rules": (("interest", "Tech"),)}, US_MOBILE_25, False),
        (matches_interest, {"rules": (("interest", "tech"),)}, {}, False),
        (matches_age_range, {"rules": (("age_range", "18-24"),)}, {"age": 24}, True),
        (matches_age_range, {"rules": (("age_range", "18-24"),)}, {"age": 18}, True),
        (matches_age_range, {"rules": (("age_range", "18-24"),)}, {"age": 25}, False),
        (
            matches_age_range,
            {"rules": (("age_range", "18-24"), ("age_range", "25-34"))},
            {"age": 25},
            True,
        ),
        (matches_age_range, {"rules": (("age_range", "18-24"),)}, {}, False),
        (matches_placement, {"rules": (("placement", "p-1"),)}, {"placement_id": "p-1"}, True),
        (matches_placement, {"rules": (("placement", "p-1"),)}, {"placement_id": "p-2"}, False),
        # A rule of another type never restricts this one.
        (matches_country, {"rules": (("device_type", "ctv"),)}, US_MOBILE_25, True),
    ],
)
def test_each_check_alone(
    check: EligibilityCheck,
    campaign_fields: dict[str, Any],
    request_fields: dict[str, Any],
    expected: bool,
) -> None:
    campaign = make_campaign("c-1", **campaign_fields)
    assert check(campaign, make_request(**request_fields)) is expected


def test_every_rule_type_has_a_check_and_every_check_is_in_the_list() -> None:
    assert set(RULE_CHECKS) == set(RULE_TYPES)
    assert set(RULE_CHECKS.values()) <= set(ELIGIBILITY_CHECKS)
    assert {is_active, has_ads} <= set(ELIGIBILITY_CHECKS)


def test_failed_checks_explain_a_no_bid() -> None:
    campaign = make_campaign("c-1", status="paused", rules=(("country", "GB"),))
    assert failed_checks(campaign, make_request(country_code="US")) == [
        "is_active",
        "matches_country",
    ]


@settings(max_examples=300)
@given(campaign_lists(max_size=10), bid_requests())
def test_checks_agree_with_the_specification(
    campaigns: list[Campaign], request: BidRequest
) -> None:
    for campaign in campaigns:
        assert is_eligible(campaign, request) is reference_eligible(campaign, request)
        for rule_type, check in RULE_CHECKS.items():
            values = [r.rule_value for r in campaign.targeting_rules if r.rule_type == rule_type]
            expected = not values or any(_rule_matches(rule_type, v, request) for v in values)
            assert check(campaign, request) is expected
