"""The auction: ranking through the index equals the specification; the decision charges well."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_layer.bidding.domain.auction import (
    Price,
    build_index,
    choose_ad,
    decide,
    first_price,
    rank,
)
from shared_layer.bidding.domain.budget import ChargeOutcome
from shared_layer.bidding.domain.targeting import ELIGIBILITY_CHECKS, is_eligible
from shared_layer.kernel.models import BidRequest, Campaign

from .auction_fixtures import (
    InMemoryLedger,
    bid_requests,
    campaign_lists,
    make_campaign,
    make_request,
    reference_eligible,
    reference_ranking,
)

# 0: every rule value gets a bitset; 1000: every value is kept as positions; 2, 16: mixed.
sparse_limits = st.sampled_from((0, 2, 16, 1_000))


@settings(max_examples=300)
@given(campaign_lists(), bid_requests(), sparse_limits)
def test_ranking_is_exactly_the_eligible_campaigns_by_cpm_then_id(
    campaigns: list[Campaign], request: BidRequest, sparse_limit: int
) -> None:
    ranked = list(rank(build_index(campaigns, sparse_limit=sparse_limit), request))
    assert [c.id for c in ranked] == [c.id for c in reference_ranking(campaigns, request)]


@settings(max_examples=200)
@given(campaign_lists(), bid_requests(), sparse_limits)
def test_winner_satisfies_its_rules_and_nothing_better_was_eligible(
    campaigns: list[Campaign], request: BidRequest, sparse_limit: int
) -> None:
    winner = next(rank(build_index(campaigns, sparse_limit=sparse_limit), request), None)
    eligible = [c for c in campaigns if reference_eligible(c, request)]
    if winner is None:
        assert eligible == []
        return
    assert reference_eligible(winner, request)
    assert is_eligible(winner, request)
    for other in eligible:
        assert (other.cpm_micros, winner.id) <= (winner.cpm_micros, other.id)


@given(campaign_lists(), bid_requests(), st.randoms(use_true_random=False))
def test_ranking_does_not_depend_on_snapshot_order(
    campaigns: list[Campaign], request: BidRequest, rng: random.Random
) -> None:
    shuffled = campaigns[:]
    rng.shuffle(shuffled)
    first = [c.id for c in rank(build_index(campaigns), request)]
    again = [c.id for c in rank(build_index(shuffled), request)]
    assert first == again


@st.composite
def _pre_spent(draw: st.DrawFn, campaigns: list[Campaign]) -> dict[str, tuple[int, int]]:
    spent = {}
    for campaign in campaigns:
        daily = draw(st.integers(0, campaign.daily_budget_micros))
        lifetime_cap = campaign.lifetime_budget_micros
        extra = draw(st.integers(0, 10_000))
        lifetime = daily + (extra if lifetime_cap is None else min(extra, lifetime_cap - daily))
        spent[campaign.id] = (daily, lifetime)
    return spent


@settings(max_examples=300)
@given(st.data(), campaign_lists(), bid_requests())
def test_decision_takes_the_best_candidate_whose_budget_can_pay(
    data: st.DataObject, campaigns: list[Campaign], request: BidRequest
) -> None:
    ledger = InMemoryLedger(data.draw(_pre_spent(campaigns)))
    before = dict(ledger.spent)
    ranking = reference_ranking(campaigns, request)
    payable = [
        c
        for c in ranking
        if ledger.would_accept(c, first_price(c, request).charge_micros) is ChargeOutcome.CHARGED
    ]

    decision = decide(build_index(campaigns), request, ledger)

    if not payable:
        assert decision is None
        assert ledger.spent == before
        return
    assert decision is not None
    winner = decision.campaign
    assert winner.id == payable[0].id
    # Every eligible campaign ranked above the winner was tried and refused: none passed over.
    above = ranking[: ranking.index(winner)]
    assert ledger.calls == [c.id for c in above] + [winner.id]
    price = winner.cpm_micros // 1000
    assert decision.price == Price(winner.cpm_micros, price)
    old_daily, old_lifetime = before[winner.id]
    assert ledger.spent[winner.id] == (old_daily + price, old_lifetime + price)
    assert {k: v for k, v in ledger.spent.items() if k != winner.id} == {
        k: v for k, v in before.items() if k != winner.id
    }
    assert decision.ad in winner.ads


def test_highest_cpm_wins_and_ties_go_to_the_smallest_id() -> None:
    campaigns = [
        make_campaign("c-b", cpm_micros=3_000_000),
        make_campaign("c-a", cpm_micros=3_000_000),
        make_campaign("c-z", cpm_micros=9_000_000, status="paused"),
        make_campaign("c-c", cpm_micros=1_000_000),
    ]
    ranked = [c.id for c in rank(build_index(campaigns), make_request())]
    assert ranked == ["c-a", "c-b", "c-c"]


def test_spent_budget_falls_through_to_the_next_candidate_and_reports_refusals() -> None:
    rich = make_campaign("c-rich", cpm_micros=5_000_000, daily_budget_micros=4_999)
    poor = make_campaign("c-poor", cpm_micros=1_000_000)
    refused: list[tuple[str, ChargeOutcome]] = []
    decision = decide(
        build_index([rich, poor]),
        make_request(),
        InMemoryLedger(),
        on_refused=lambda campaign, result: refused.append((campaign.id, result.outcome)),
    )
    assert decision is not None and decision.campaign.id == "c-poor"
    assert refused == [("c-rich", ChargeOutcome.DAILY_BUDGET_EXHAUSTED)]


def test_max_attempts_bounds_the_ledger_calls() -> None:
    campaigns = [
        make_campaign(f"c-{n}", cpm_micros=9_000_000 - n, daily_budget_micros=0) for n in range(5)
    ]
    ledger = InMemoryLedger()
    assert decide(build_index(campaigns), make_request(), ledger, max_attempts=2) is None
    assert ledger.calls == ["c-0", "c-1"]


def test_a_pricing_step_can_decline_a_candidate() -> None:
    expensive = make_campaign("c-1", cpm_micros=5_000_000)
    cheap = make_campaign("c-2", cpm_micros=1_000_000)

    def floor_of_two(campaign: Campaign, request: BidRequest) -> Price | None:
        price = first_price(campaign, request)
        return price if price is not None and campaign.cpm_micros < 2_000_000 else None

    index = build_index([expensive, cheap])
    decision = decide(index, make_request(), InMemoryLedger(), pricing=floor_of_two)
    assert decision is not None and decision.campaign.id == "c-2"


def test_extra_checks_apply_to_every_candidate() -> None:
    campaigns = [make_campaign("c-1", cpm_micros=5_000_000), make_campaign("c-2")]

    def not_c1(campaign: Campaign, request: BidRequest) -> bool:
        return campaign.id != "c-1"

    ranked = rank(build_index(campaigns), make_request(), (*ELIGIBILITY_CHECKS, not_c1))
    assert [c.id for c in ranked] == ["c-2"]


def test_decision_response_has_the_seed_shape() -> None:
    campaign = make_campaign("campaign-456", cpm_micros=2_500_000)
    decision = decide(build_index([campaign]), make_request(), InMemoryLedger())
    assert decision is not None
    assert decision.to_response().to_json() == {
        "campaignId": "campaign-456",
        "adId": "ad-campaign-456-0",
        "bidPrice": 2.5,
        "priceMicros": 2_500,
        "adContent": {
            "title": "Amazing Product",
            "imageUrl": "https://cdn.example.com/ads/image.jpg",
            "redirectUrl": "https://example.com/offer",
        },
        "confidence": 1.0,
    }


def test_ad_choice_is_stable_per_user_and_spreads_across_users() -> None:
    campaign = make_campaign("c-1", ads=3)
    users = [make_request(user_id=f"user-{n}") for n in range(300)]
    choices = [choose_ad(campaign, request).id for request in users]
    assert choices == [choose_ad(campaign, request).id for request in users]
    assert set(choices) == {ad.id for ad in campaign.ads}


def test_duplicate_campaign_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        build_index([make_campaign("c-1"), make_campaign("c-1")])


def test_an_empty_snapshot_has_no_bid() -> None:
    index = build_index([])
    assert len(index) == 0
    assert list(rank(index, make_request())) == []
