"""Decisioning III, pure parts: priority tiers in the auction, dayparting with an injected clock
(across daylight-saving time), key-value targeting, and the campaign fields' validation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_layer.bidding.domain.auction import build_index, decide, rank
from shared_layer.bidding.domain.budget import ChargeOutcome, ChargeResult, check_charge
from shared_layer.bidding.domain.pacing import pacing_limit
from shared_layer.bidding.domain.targeting import (
    daypart_check,
    in_daypart,
    is_eligible,
    matches_key_values,
)
from shared_layer.campaigns.domain.requests import campaign_json, parse_campaign
from shared_layer.kernel.errors import ValidationFailed
from shared_layer.kernel.models import Campaign, Daypart, PlacementFloor, parse
from tests.unit.auction_fixtures import make_campaign, make_request

MONDAY_9_TO_17 = Daypart(days=("mon",), hours=tuple(range(9, 17)))
NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # a Monday


class PacedLedger:
    """The ledger's rule with pacing at a fixed time: check_charge, then pacing_limit."""

    def __init__(self, now: datetime, spent: dict[str, int] | None = None) -> None:
        self.now = now
        self.spent = dict(spent or {})
        self.charged: list[tuple[str, int]] = []

    def charge(
        self,
        campaign: Campaign,
        price_micros: int,
        record: Sequence[bytes] = (),
        *,
        user_id: str | None = None,
    ) -> ChargeResult:
        spent = self.spent.get(campaign.id, 0)
        outcome = check_charge(
            price_micros=price_micros,
            daily_spent_micros=spent,
            lifetime_spent_micros=spent,
            daily_budget_micros=campaign.daily_cap_micros,
            lifetime_budget_micros=campaign.lifetime_cap_micros,
        )
        limit = pacing_limit(campaign, self.now, price_micros)
        if outcome is ChargeOutcome.CHARGED and limit is not None and spent + price_micros > limit:
            outcome = ChargeOutcome.PACED
        if outcome is ChargeOutcome.CHARGED:
            spent += price_micros
            self.spent[campaign.id] = spent
            self.charged.append((campaign.id, price_micros))
        return ChargeResult(outcome, spent, spent)


def sponsorship(campaign_id: str = "sponsor", impressions: int = 1_000, **fields: object):
    values: dict[str, object] = {
        "cpm_micros": 1_000_000,
        "daily_budget_micros": 100_000_000,
        "tier": "sponsorship",
        "goal": {"impressions": impressions, "period": "day"},
    }
    values.update(fields)
    return make_campaign(campaign_id, **values)


STANDARD_AT_5 = make_campaign("standard", cpm_micros=5_000_000, daily_budget_micros=100_000_000)


def test_a_sponsorship_at_cpm_1_beats_a_standard_one_at_cpm_5_while_behind_its_curve() -> None:
    ledger = PacedLedger(NOON)  # half the day gone, nothing delivered: behind
    decision = decide(build_index([STANDARD_AT_5, sponsorship()]), make_request(), ledger)
    assert decision is not None
    assert decision.campaign.id == "sponsor"
    assert decision.price.charge_micros == 1_000  # its own CPM, first price


def test_ahead_of_its_curve_the_standard_campaign_wins() -> None:
    # 1,000 impressions a day at 1,000 micros each: by noon the curve allows 500 impressions.
    ledger = PacedLedger(NOON, {"sponsor": 501 * 1_000})
    decision = decide(build_index([STANDARD_AT_5, sponsorship()]), make_request(), ledger)
    assert decision is not None and decision.campaign.id == "standard"


def test_with_its_goal_met_the_standard_campaign_wins() -> None:
    late = NOON.replace(hour=23, minute=59)
    ledger = PacedLedger(late, {"sponsor": 1_000 * 1_000})
    decision = decide(build_index([STANDARD_AT_5, sponsorship()]), make_request(), ledger)
    assert decision is not None and decision.campaign.id == "standard"


def test_a_lifetime_goal_caps_lifetime_delivery_without_a_daily_curve() -> None:
    sponsor = sponsorship(goal={"impressions": 10, "period": "lifetime"})
    assert sponsor.effective_pacing == "asap"
    assert sponsor.lifetime_cap_micros == 10 * 1_000
    ledger = PacedLedger(NOON, {"sponsor": 10 * 1_000})
    decision = decide(build_index([STANDARD_AT_5, sponsor]), make_request(), ledger)
    assert decision is not None and decision.campaign.id == "standard"


def test_a_house_ad_serves_only_when_nothing_else_is_eligible_and_is_charged_zero() -> None:
    house = make_campaign("house", tier="house", cpm_micros=50_000_000, daily_budget_micros=0)
    index = build_index([house, STANDARD_AT_5])
    first = decide(index, make_request(), PacedLedger(NOON))
    assert first is not None and first.campaign.id == "standard"
    exhausted = PacedLedger(NOON, {"standard": 100_000_000})
    second = decide(index, make_request(), exhausted)
    assert second is not None and second.campaign.id == "house"
    assert second.price.charge_micros == 0
    assert exhausted.charged == [("house", 0)]


def test_with_sponsorship_and_standard_exhausted_the_house_ad_serves() -> None:
    house = make_campaign("house", tier="house", daily_budget_micros=0)
    ledger = PacedLedger(NOON, {"standard": 100_000_000, "sponsor": 1_000 * 1_000})
    decision = decide(build_index([house, sponsorship(), STANDARD_AT_5]), make_request(), ledger)
    assert decision is not None and decision.campaign.id == "house"


def test_below_the_floor_a_house_ad_still_fills_and_sponsorships_ignore_floors() -> None:
    house = make_campaign("house", tier="house", daily_budget_micros=0)
    floor = PlacementFloor(placement_id="p-1", floor_cpm_micros=9_000_000)
    below: list[int] = []
    decision = decide(
        build_index([house, STANDARD_AT_5]),
        make_request(),
        PacedLedger(NOON),
        placement=floor,
        on_below_floor=lambda _c, f: below.append(f),
    )
    assert decision is not None and decision.campaign.id == "house"
    assert below == [9_000_000]
    sponsored = decide(
        build_index([sponsorship(), STANDARD_AT_5]),
        make_request(),
        PacedLedger(NOON),
        placement=floor,
    )
    assert sponsored is not None and sponsored.campaign.id == "sponsor"


def test_second_price_is_set_by_standard_bids_only() -> None:
    house = make_campaign("house", tier="house", cpm_micros=4_000_000, daily_budget_micros=0)
    floor = PlacementFloor(placement_id="p-1", floor_cpm_micros=1_000_000, clearing="second-price")
    decision = decide(
        build_index([house, STANDARD_AT_5]), make_request(), PacedLedger(NOON), placement=floor
    )
    assert decision is not None and decision.campaign.id == "standard"
    assert decision.price.clearing_cpm_micros == 1_000_001  # the floor, not the house ad's CPM


@given(
    st.lists(
        st.tuples(
            st.sampled_from(("sponsorship", "standard", "house")), st.integers(1_000, 9_000_000)
        ),
        max_size=12,
    )
)
def test_ranking_is_by_tier_then_cpm(specs: list[tuple[str, int]]) -> None:
    campaigns = []
    for n, (tier, cpm) in enumerate(specs):
        goal = {"impressions": 5} if tier == "sponsorship" else None
        campaigns.append(make_campaign(f"c-{n}", tier=tier, cpm_micros=cpm, goal=goal))
    order = {"sponsorship": 0, "standard": 1, "house": 2}
    ranked = list(rank(build_index(campaigns), make_request()))
    keys = [(order[c.tier], -c.cpm_micros, c.id) for c in ranked]
    assert keys == sorted(keys)
    assert len(ranked) == len(campaigns)


@pytest.mark.parametrize(
    ("moment", "eligible"),
    [
        # Winter (CET, UTC+1): Monday 09:00-17:00 Paris is 08:00-16:00 UTC.
        (datetime(2026, 12, 7, 7, 59, 59, tzinfo=UTC), False),
        (datetime(2026, 12, 7, 8, 0, tzinfo=UTC), True),
        (datetime(2026, 12, 7, 15, 59, 59, tzinfo=UTC), True),
        (datetime(2026, 12, 7, 16, 0, tzinfo=UTC), False),
        (datetime(2026, 12, 8, 10, 0, tzinfo=UTC), False),  # Tuesday
        # Summer (CEST, UTC+2): 07:00-15:00 UTC.
        (datetime(2026, 6, 1, 6, 59, tzinfo=UTC), False),
        (datetime(2026, 6, 1, 7, 0, tzinfo=UTC), True),
        (datetime(2026, 6, 1, 14, 59, tzinfo=UTC), True),
        (datetime(2026, 6, 1, 15, 0, tzinfo=UTC), False),
        # Sunday 29 March 2026 clocks go forward; Monday 30 March is the first summer Monday.
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 23, 7, 0, tzinfo=UTC), False),  # the Monday before: 08:00 Paris
        (datetime(2026, 3, 23, 8, 0, tzinfo=UTC), True),
        # Sunday 25 October 2026 clocks go back; Monday 26 October is winter again.
        (datetime(2026, 10, 26, 7, 30, tzinfo=UTC), False),
        (datetime(2026, 10, 26, 8, 0, tzinfo=UTC), True),
        (datetime(2026, 10, 19, 7, 0, tzinfo=UTC), True),
    ],
)
def test_a_monday_9_to_17_paris_campaign_runs_exactly_then(
    moment: datetime, eligible: bool
) -> None:
    assert in_daypart(MONDAY_9_TO_17, "Europe/Paris", moment) is eligible
    campaign = make_campaign(time_zone="Europe/Paris", daypart=MONDAY_9_TO_17)
    check = daypart_check(lambda: moment)
    assert check(campaign, make_request()) is eligible


def test_across_a_whole_dst_week_the_daypart_is_eight_local_hours_each_monday() -> None:
    campaign = make_campaign(time_zone="Europe/Paris", daypart=MONDAY_9_TO_17)
    for monday in (datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC)):
        minutes = [monday - timedelta(hours=2) + timedelta(minutes=m) for m in range(0, 26 * 60)]
        on = [m for m in minutes if daypart_check(lambda m=m: m)(campaign, make_request())]
        assert len(on) == 8 * 60


def test_no_daypart_means_always() -> None:
    assert daypart_check(lambda: NOON)(make_campaign(), make_request())


@pytest.mark.parametrize(
    ("wanted", "excluded", "sent", "matches"),
    [
        ({}, {}, {}, True),
        ({"section": ("sports",)}, {}, {"section": ("sports",)}, True),
        ({"section": ("sports", "news")}, {}, {"section": ("news", "x")}, True),
        ({"section": ("sports",)}, {}, {"section": ("news",)}, False),
        ({"section": ("sports",)}, {}, {}, False),
        ({"section": ("sports",), "lang": ("fr",)}, {}, {"section": ("sports",)}, False),
        ({}, {"section": ("politics",)}, {"section": ("politics",)}, False),
        ({}, {"section": ("politics",)}, {"section": ("sports",)}, True),
        ({}, {"section": ("politics",)}, {}, True),
        (
            {"section": ("sports",)},
            {"lang": ("de",)},
            {"section": ("sports",), "lang": ("de",)},
            False,
        ),
    ],
)
def test_key_values_any_of_and_none_of(
    wanted: dict, excluded: dict, sent: dict, matches: bool
) -> None:
    campaign = make_campaign(key_values=wanted, excluded_key_values=excluded)
    request = make_request(key_values=sent)
    assert matches_key_values(campaign, request) is matches
    assert is_eligible(campaign, request) is matches
    assert (next(rank(build_index([campaign]), request), None) is not None) is matches


ADVERTISER = "00000000-0000-4000-8000-000000000001"


def _body(**fields: object) -> bytes:
    import json

    base: dict[str, object] = {
        "advertiserId": ADVERTISER,
        "name": "N",
        "cpmBid": 1,
        "dailyBudget": 10,
    }
    base.update(fields)
    return json.dumps(base).encode()


def test_the_api_takes_every_new_field_and_shows_it() -> None:
    from shared_layer.campaigns.domain.requests import CampaignRecord

    request = parse_campaign(
        _body(
            tier="sponsorship",
            goal={"impressions": 5000, "period": "lifetime"},
            exclusionLabels=["auto", "auto", "airline"],
            daypart={"days": ["tue", "mon"], "hours": [10, 9]},
            keyValues={"section": ["sports"]},
            excludedKeyValues={"section": ["politics"]},
            ads=[
                {
                    "title": "T",
                    "imageUrl": "https://x.test/i.png",
                    "redirectUrl": "https://x.test/",
                    "width": 300,
                    "height": 250,
                }
            ],
        )
    )
    campaign = request.to_campaign()
    shown = campaign_json(CampaignRecord(campaign, NOON, NOON))
    assert shown["tier"] == "sponsorship"
    assert shown["goal"] == {"impressions": 5000, "period": "lifetime"}
    assert shown["exclusionLabels"] == ["airline", "auto"]
    assert shown["daypart"] == {"days": ["mon", "tue"], "hours": [9, 10]}
    assert shown["keyValues"] == {"section": ["sports"]}
    assert shown["excludedKeyValues"] == {"section": ["politics"]}
    assert shown["ads"][0]["width"] == 300 and shown["ads"][0]["height"] == 250


def test_defaults_keep_a_campaign_as_before() -> None:
    campaign = parse_campaign(_body()).to_campaign()
    assert campaign.tier == "standard" and campaign.goal is None
    assert campaign.daypart is None and campaign.key_values == {}
    assert campaign.exclusion_labels == ()
    assert campaign.effective_pacing == campaign.pacing
    assert campaign.pacing_budget_micros == campaign.daily_budget_micros


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"tier": "sponsorship"}, "goal"),
        ({"goal": {"impressions": 10}}, "goal"),
        ({"tier": "premium"}, "tier"),
        ({"tier": "sponsorship", "goal": {"impressions": 0}}, "goal.impressions"),
        ({"daypart": {"days": ["monday"], "hours": [9]}}, "daypart.days"),
        ({"daypart": {"days": ["mon"], "hours": [24]}}, "daypart.hours"),
        ({"daypart": {"days": ["mon", "mon"], "hours": [9]}}, "daypart.days"),
        ({"daypart": {"days": [], "hours": [9]}}, "daypart.days"),
        ({"keyValues": {"section": "sports"}}, "keyValues.section"),
        ({"keyValues": {"section": []}}, "keyValues.section"),
        ({"exclusionLabels": [""]}, "exclusionLabels.0"),
        (
            {
                "ads": [
                    {
                        "title": "T",
                        "imageUrl": "https://x.test/i",
                        "redirectUrl": "https://x.test/",
                        "width": 300,
                    }
                ]
            },
            "ads.0",
        ),
    ],
)
def test_bad_fields_are_a_400_that_names_them(fields: dict, named: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_campaign(_body(**fields))
    assert named in caught.value.message


def test_a_bid_request_carries_key_values() -> None:
    request = parse(
        type(make_request()), b'{"userId": "u", "placementId": "p", "keyValues": {"s": ["x"]}}'
    )
    assert request.key_values == {"s": ("x",)}
    with pytest.raises(ValidationFailed):
        parse(type(make_request()), b'{"userId": "u", "placementId": "p", "keyValues": {"s": 1}}')


def test_the_explainer_gives_each_candidates_first_reason() -> None:
    from shared_layer.bidding.domain.budget import ChargeOutcome
    from shared_layer.bidding.domain.explain import explain

    campaigns = [
        make_campaign("winner", cpm_micros=9_000_000),
        make_campaign("paced", cpm_micros=9_500_000),
        make_campaign("capped", cpm_micros=9_400_000),
        make_campaign("spent", cpm_micros=9_300_000),
        make_campaign("usa", rules=(("country", "US"),), cpm_micros=9_900_000),
        make_campaign(
            "night", time_zone="Europe/Paris", daypart=Daypart(days=("sun",), hours=(3,))
        ),
        make_campaign("cheap", cpm_micros=1_000),
        make_campaign("low", cpm_micros=1_000_000),
        make_campaign("elsewhere", rules=(("placement", "p-2"),)),
    ]
    refused = {
        "paced": ChargeOutcome.PACED,
        "capped": ChargeOutcome.FREQUENCY_CAPPED,
        "spent": ChargeOutcome.DAILY_BUDGET_EXHAUSTED,
    }
    result = explain(
        build_index(campaigns),
        make_request(country_code="GB"),
        winners=["winner"],
        refused=refused,
        daypart=daypart_check(lambda: NOON),
        budget_memo=lambda c, r: True,
        pacing_memo=lambda c, r: True,
        floor_micros=500_000,
    )
    reasons = {row["campaignId"]: row["reason"] for row in result["candidates"]}
    assert reasons == {
        "winner": "won",
        "paced": "pacing",
        "capped": "frequency-cap",
        "spent": "budget",
        "usa": "targeting",
        "night": "daypart",
        "cheap": "floor",
        "low": "lower-bid",
    }
    assert result["truncated"] == 0
