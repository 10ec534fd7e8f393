"""Builders, hypothesis strategies, a reference oracle and a ledger double for auction tests.

The oracle (`reference_eligible`) restates the targeting rules from the specification directly
over a campaign's raw rule list, independently of targeting.py's grouped sets and of the
auction's bitsets, so that property tests compare two separate implementations.

`InMemoryLedger` is a test double of OUR seam (`budget.BudgetLedger`), not of Redis.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from shared_layer.bidding.domain.budget import ChargeOutcome, ChargeResult, check_charge
from shared_layer.kernel.models import Ad, BidRequest, Campaign, TargetingRule

COUNTRIES = ("US", "GB", "DE", "FR")
DEVICES = ("mobile", "desktop", "tablet", "ctv")
INTERESTS = ("tech", "gaming", "sports", "music", "travel")
PLACEMENTS = ("p-1", "p-2", "p-3")
AGE_RANGES = ("18-24", "25-34", "35-54", "13-120", "30-30")
CPMS = (1_000, 1_999, 2_500_000, 2_500_000, 3_000_000, 10_000_000)


def make_ad(campaign_id: str, ad_id: str = "ad-1") -> Ad:
    return Ad(
        id=ad_id,
        campaign_id=campaign_id,
        title="Amazing Product",
        image_url="https://cdn.example.com/ads/image.jpg",
        redirect_url="https://example.com/offer",
    )


def make_campaign(
    campaign_id: str = "c-1",
    *,
    rules: tuple[tuple[str, str], ...] = (),
    ads: int = 1,
    **fields: Any,
) -> Campaign:
    values: dict[str, Any] = {
        "id": campaign_id,
        "advertiser_id": "adv-1",
        "name": f"Campaign {campaign_id}",
        "status": "active",
        "cpm_micros": 2_500_000,
        "daily_budget_micros": 1_000_000,
        "lifetime_budget_micros": None,
        "targeting_rules": tuple(TargetingRule(rule_type=t, rule_value=v) for t, v in rules),
        "ads": tuple(make_ad(campaign_id, f"ad-{campaign_id}-{n}") for n in range(ads)),
    }
    values.update(fields)
    return Campaign(**values)


def make_request(**fields: Any) -> BidRequest:
    attributes = {
        key: fields.pop(key) for key in ("age", "interests", "purchase_history") if key in fields
    }
    values: dict[str, Any] = {"user_id": "user-123", "placement_id": "p-1"}
    values.update(fields)
    return BidRequest(**values, user_attributes=attributes)


def _rule_matches(rule_type: str, value: str, request: BidRequest) -> bool:
    attributes = request.user_attributes
    if rule_type == "country":
        return request.country_code == value
    if rule_type == "device_type":
        return request.device_type == value
    if rule_type == "interest":
        return value in attributes.interests
    if rule_type == "placement":
        return request.placement_id == value
    if rule_type == "age_range":
        low, high = (int(part) for part in value.split("-"))
        return attributes.age is not None and low <= attributes.age <= high
    raise AssertionError(f"unknown rule type {rule_type}")


def reference_eligible(campaign: Campaign, request: BidRequest) -> bool:
    """The specification, literally: active, has ads, and per rule type present one match."""
    if campaign.status != "active" or not campaign.ads:
        return False
    by_type: dict[str, list[str]] = defaultdict(list)
    for rule in campaign.targeting_rules:
        by_type[rule.rule_type].append(rule.rule_value)
    return all(
        any(_rule_matches(rule_type, value, request) for value in values)
        for rule_type, values in by_type.items()
    )


def reference_ranking(campaigns: list[Campaign], request: BidRequest) -> list[Campaign]:
    eligible = [c for c in campaigns if reference_eligible(c, request)]
    return sorted(eligible, key=lambda c: (-c.cpm_micros, c.id))


class InMemoryLedger:
    """Budget ledger double: the same rule (`check_charge`) over a dict, one UTC day."""

    def __init__(self, spent: dict[str, tuple[int, int]] | None = None) -> None:
        self.spent: dict[str, tuple[int, int]] = dict(spent or {})
        self.calls: list[str] = []
        self.prices: list[int] = []  # the price of each charge asked for, in order
        self.records: list[Sequence[bytes]] = []  # outbox fields of charged impressions

    def charge(
        self,
        campaign: Campaign,
        price_micros: int,
        record: Sequence[bytes] = (),
        *,
        user_id: str | None = None,
    ) -> ChargeResult:
        self.calls.append(campaign.id)
        self.prices.append(price_micros)
        daily, lifetime = self.spent.get(campaign.id, (0, 0))
        outcome = self.would_accept(campaign, price_micros)
        if outcome is ChargeOutcome.CHARGED:
            daily, lifetime = daily + price_micros, lifetime + price_micros
            self.spent[campaign.id] = (daily, lifetime)
            if record:
                self.records.append(record)
        return ChargeResult(outcome, daily, lifetime)

    def would_accept(self, campaign: Campaign, price_micros: int) -> ChargeOutcome:
        daily, lifetime = self.spent.get(campaign.id, (0, 0))
        return check_charge(
            price_micros=price_micros,
            daily_spent_micros=daily,
            lifetime_spent_micros=lifetime,
            daily_budget_micros=campaign.daily_cap_micros,
            lifetime_budget_micros=campaign.lifetime_cap_micros,
        )


# Hypothesis strategies: small value pools so that rules and requests often meet.
_rules = st.one_of(
    st.tuples(st.just("country"), st.sampled_from(COUNTRIES)),
    st.tuples(st.just("device_type"), st.sampled_from(DEVICES)),
    st.tuples(st.just("interest"), st.sampled_from(INTERESTS)),
    st.tuples(st.just("placement"), st.sampled_from(PLACEMENTS)),
    st.tuples(st.just("age_range"), st.sampled_from(AGE_RANGES)),
    st.tuples(
        st.just("age_range"),
        st.tuples(st.integers(13, 120), st.integers(0, 30)).map(
            lambda lo_width: f"{lo_width[0]}-{min(120, lo_width[0] + lo_width[1])}"
        ),
    ),
)


@st.composite
def campaign_lists(draw: st.DrawFn, max_size: int = 30) -> list[Campaign]:
    ids = draw(
        st.lists(st.integers(0, 10_000), unique=True, max_size=max_size).map(
            lambda numbers: [f"c-{n}" for n in numbers]
        )
    )
    campaigns = []
    for campaign_id in ids:
        daily = draw(st.integers(0, 10_000))
        lifetime = draw(st.one_of(st.none(), st.integers(daily, daily + 10_000)))
        campaigns.append(
            make_campaign(
                campaign_id,
                rules=tuple(draw(st.lists(_rules, max_size=5))),
                ads=draw(st.sampled_from((0, 1, 1, 1, 2))),
                status=draw(st.sampled_from(("active", "active", "active", "paused", "ended"))),
                cpm_micros=draw(st.sampled_from(CPMS)),
                daily_budget_micros=daily,
                lifetime_budget_micros=lifetime,
            )
        )
    return campaigns


@st.composite
def bid_requests(draw: st.DrawFn) -> BidRequest:
    return make_request(
        user_id=draw(st.sampled_from(("u-1", "u-2", "user-123"))),
        placement_id=draw(st.sampled_from((*PLACEMENTS, "p-unknown"))),
        country_code=draw(st.one_of(st.none(), st.sampled_from((*COUNTRIES, "ZZ")))),
        device_type=draw(st.one_of(st.none(), st.sampled_from(DEVICES))),
        age=draw(st.one_of(st.none(), st.integers(10, 60), st.integers(0, 150))),
        interests=tuple(
            draw(st.lists(st.sampled_from((*INTERESTS, "knitting")), unique=True, max_size=4))
        ),
    )
