"""Floors and second-price clearing (bidding.domain.auction): hypothesis properties and examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_layer.bidding.domain.auction import build_index, clearing_price, decide, effective_floor
from shared_layer.kernel.errors import ValidationFailed
from shared_layer.kernel.models import MAX_MICROS, BidRequest, PlacementFloor, parse
from shared_layer.kernel.money import impression_price

from .auction_fixtures import (
    InMemoryLedger,
    bid_requests,
    campaign_lists,
    make_campaign,
    make_request,
    reference_ranking,
)

CPM = st.integers(min_value=1_000, max_value=MAX_MICROS)
FLOOR = st.integers(min_value=0, max_value=MAX_MICROS)


@given(winner=CPM, runner_up=st.one_of(st.none(), CPM), floor=FLOOR)
def test_the_clearing_price_is_never_above_the_bid_nor_below_the_floor(
    winner: int, runner_up: int | None, floor: int
) -> None:
    if floor > winner:
        floor = winner  # the auction only prices bids that reach the floor
    if runner_up is not None and runner_up > winner:
        runner_up = winner  # ranked: the runner-up never bids more than the winner
    price = clearing_price(winner, runner_up, floor)
    assert floor <= price.cleared_cpm_micros <= winner
    assert price.cleared_cpm_micros >= min(winner, (runner_up or 0) + 1)
    assert 1 <= price.charge_micros <= impression_price(winner)
    assert price.charge_micros == max(1, impression_price(price.cleared_cpm_micros))
    assert price.bid_cpm_micros == winner


def test_second_price_examples() -> None:
    assert clearing_price(5_000_000, 3_000_000, 1_000_000).cleared_cpm_micros == 3_000_001
    assert clearing_price(5_000_000, 3_000_000, 4_000_000).cleared_cpm_micros == 4_000_001
    assert clearing_price(5_000_000, 5_000_000, 0).cleared_cpm_micros == 5_000_000  # capped
    assert clearing_price(5_000_000, None, 0).charge_micros == 1  # alone, no floor


@settings(max_examples=200)
@given(
    campaigns=campaign_lists(),
    request=bid_requests(),
    placement_floor=FLOOR.map(lambda f: f % 12_000_000),
    request_floor=FLOOR.map(lambda f: f % 12_000_000),
    second=st.booleans(),
)
def test_a_bid_below_the_floor_never_wins_and_the_best_one_above_it_does(
    campaigns, request: BidRequest, placement_floor: int, request_floor: int, second: bool
) -> None:
    # budgets that always pay: this property is about floors, not budgets
    campaigns = [
        c.model_copy(update={"daily_budget_micros": MAX_MICROS, "lifetime_budget_micros": None})
        for c in campaigns
    ]
    request = request.model_copy(update={"floor_micros": request_floor})
    placement = PlacementFloor(
        placement_id=request.placement_id,
        floor_cpm_micros=placement_floor,
        clearing="second-price" if second else "first-price",
    )
    floor = max(placement_floor, request_floor)
    assert effective_floor(placement, request) == floor
    stopped: list[int] = []
    ledger = InMemoryLedger()
    decision = decide(
        build_index(campaigns),
        request,
        ledger,
        placement=placement,
        on_below_floor=lambda _c, f: stopped.append(f),
    )
    ranked = reference_ranking(campaigns, request)
    payable = [c for c in ranked if c.cpm_micros >= floor]
    if not payable:
        assert decision is None
        assert stopped == ([floor] if ranked else [])
        return
    assert decision is not None and decision.campaign.id == payable[0].id
    price = decision.price
    assert floor <= price.cleared_cpm_micros <= decision.campaign.cpm_micros
    assert price.charge_micros <= impression_price(decision.campaign.cpm_micros)
    if second:
        runner_up = ranked[1].cpm_micros if len(ranked) > 1 else None
        assert price == clearing_price(decision.campaign.cpm_micros, runner_up, floor)
    else:
        assert price.charge_micros == impression_price(decision.campaign.cpm_micros)


def test_second_price_charges_the_next_bid_plus_one_micro_of_cpm() -> None:
    campaigns = [
        make_campaign("c-1", cpm_micros=5_000_000),
        make_campaign("c-2", cpm_micros=3_000_000),
    ]
    placement = PlacementFloor(placement_id="p-1", floor_cpm_micros=0, clearing="second-price")
    ledger = InMemoryLedger()
    decision = decide(build_index(campaigns), make_request(), ledger, placement=placement)
    assert decision is not None and decision.campaign.id == "c-1"
    assert decision.price.cleared_cpm_micros == 3_000_001
    assert ledger.prices == [3_000]  # 3.000001 CPM per thousand, rounded down


def test_the_request_floor_is_not_part_of_the_bid_json() -> None:
    with pytest.raises(ValidationFailed, match="floorMicros"):
        parse(BidRequest, b'{"userId": "u", "placementId": "p", "floorMicros": 5}')
    assert BidRequest(user_id="u", placement_id="p", floor_micros=5).floor_micros == 5
    assert "floorMicros" not in BidRequest(user_id="u", placement_id="p").model_dump(by_alias=True)
