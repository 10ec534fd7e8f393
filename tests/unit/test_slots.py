"""Several slots per request (pure): duplicates blocked at the chosen level, exclusion labels,
sizes, counts; each winner charged exactly once; a property test over random campaigns."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_layer.bidding.domain.auction import (
    NO_FLOOR,
    build_index,
    decide_slots,
    duplicate_level,
)
from shared_layer.bidding.domain.explain import explain
from shared_layer.kernel.errors import ValidationFailed
from shared_layer.kernel.models import Ad, Campaign, PlacementFloor, SlotsRequest, parse
from tests.unit.auction_fixtures import (
    PLACEMENTS,
    InMemoryLedger,
    campaign_lists,
    make_campaign,
    reference_eligible,
)


def sized_ad(campaign_id: str, n: int, size: str | None) -> Ad:
    width, height = (int(v) for v in size.split("x")) if size else (None, None)
    return Ad(
        id=f"ad-{campaign_id}-{n}",
        campaign_id=campaign_id,
        title="T",
        image_url="https://cdn.example.com/a.png",
        redirect_url="https://example.com/",
        width=width,
        height=height,
    )


def slots_request(slots: list[dict[str, Any]], duplicates: str = "none") -> SlotsRequest:
    return parse(SlotsRequest, {"userId": "u-1", "slots": slots, "duplicates": duplicates})


def run(
    campaigns: list[Campaign],
    request: SlotsRequest,
    ledger: InMemoryLedger | None = None,
    **more: Any,
):
    ledger = ledger or InMemoryLedger()
    ids = (f"imp-{n}" for n in itertools.count())
    wins = decide_slots(
        build_index(campaigns),
        request,
        ledger,
        new_impression=lambda _r: (next(ids), lambda c, a, p: [c.id.encode()]),
        **more,
    )
    return wins, ledger


THREE_SLOTS = [{"name": n, "placementId": "p-1"} for n in ("top", "side", "bottom")]


def test_three_slots_blocked_at_advertiser_level_show_three_advertisers_each_charged_once():
    campaigns = [
        make_campaign("a1", advertiser_id="adv-a", cpm_micros=9_000_000),
        make_campaign("a2", advertiser_id="adv-a", cpm_micros=8_000_000),
        make_campaign("b1", advertiser_id="adv-b", cpm_micros=7_000_000),
        make_campaign("c1", advertiser_id="adv-c", cpm_micros=6_000_000),
    ]
    wins, ledger = run(campaigns, slots_request(THREE_SLOTS, "advertiser"))
    chosen = {name: [w.decision.campaign.id for w in won] for name, won in wins.items()}
    assert chosen == {"top": ["a1"], "side": ["b1"], "bottom": ["c1"]}
    assert sorted(ledger.calls) == ["a1", "b1", "c1"]  # a2 never even asked
    assert len({w.impression_id for won in wins.values() for w in won}) == 3
    assert len(ledger.records) == 3


def test_without_a_duplicate_level_the_best_campaign_fills_every_slot():
    campaigns = [make_campaign("a1", cpm_micros=9_000_000, daily_budget_micros=10**9)]
    wins, ledger = run(campaigns, slots_request(THREE_SLOTS))
    assert [w.decision.campaign.id for won in wins.values() for w in won] == ["a1"] * 3
    assert ledger.spent["a1"][0] == 3 * 9_000


def test_a_campaign_level_lets_an_advertiser_fill_two_slots_with_two_campaigns():
    campaigns = [
        make_campaign("a1", advertiser_id="adv-a", cpm_micros=9_000_000),
        make_campaign("a2", advertiser_id="adv-a", cpm_micros=8_000_000),
    ]
    wins, _ = run(campaigns, slots_request(THREE_SLOTS[:2], "campaign"))
    assert [w.decision.campaign.id for won in wins.values() for w in won] == ["a1", "a2"]


def test_a_creative_level_shows_each_ad_once():
    campaign = make_campaign("a1", ads=2, daily_budget_micros=10**9)
    wins, _ = run([campaign], slots_request(THREE_SLOTS, "creative"))
    shown = [w.decision.ad.id for won in wins.values() for w in won]
    assert sorted(shown) == ["ad-a1-0", "ad-a1-1"]
    assert wins["bottom"] == []


def test_campaigns_sharing_an_exclusion_label_never_fill_two_slots():
    campaigns = [
        make_campaign("ford", advertiser_id="x", cpm_micros=9_000_000, exclusion_labels=("auto",)),
        make_campaign("fiat", advertiser_id="y", cpm_micros=8_000_000, exclusion_labels=("auto",)),
        make_campaign("air", advertiser_id="z", cpm_micros=1_000_000, exclusion_labels=("air",)),
    ]
    wins, _ = run(campaigns, slots_request(THREE_SLOTS, "campaign"))
    assert [w.decision.campaign.id for won in wins.values() for w in won] == ["ford", "air"]


SAME_ADVERTISER = [
    make_campaign("a1", advertiser_id="adv-a", cpm_micros=9_000_000),
    make_campaign("a2", advertiser_id="adv-a", cpm_micros=8_000_000),
    make_campaign("b1", advertiser_id="adv-b", cpm_micros=7_000_000),
]


def test_a_placements_duplicate_level_applies_when_the_request_sets_none():
    floors = {"p-1": PlacementFloor(placement_id="p-1", duplicates="advertiser")}.get
    unset = parse(SlotsRequest, {"userId": "u-1", "slots": THREE_SLOTS[:2]})
    wins, _ = run(SAME_ADVERTISER, unset, floors=lambda p: floors(p) or NO_FLOOR)
    assert [w.decision.campaign.id for won in wins.values() for w in won] == ["a1", "b1"]
    # The request's own level wins over the placement's, "none" included.
    wins, _ = run(
        SAME_ADVERTISER, slots_request(THREE_SLOTS[:2]), floors=lambda p: floors(p) or NO_FLOOR
    )
    assert [w.decision.campaign.id for won in wins.values() for w in won] == ["a1", "a1"]


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ((), "none"),
        (("creative", "none"), "creative"),
        (("creative", "campaign"), "campaign"),
        (("advertiser", "campaign", "creative"), "advertiser"),
    ],
)
def test_the_strictest_placement_level_wins(levels: tuple[str, ...], expected: str) -> None:
    slots = [{"name": f"s{n}", "placementId": f"p-{n}"} for n in range(max(len(levels), 1))]
    floors = {
        f"p-{n}": PlacementFloor(placement_id=f"p-{n}", duplicates=level)
        for n, level in enumerate(levels)
    }
    request = parse(SlotsRequest, {"userId": "u-1", "slots": slots})
    assert duplicate_level(request, lambda p: floors.get(p, NO_FLOOR)) == expected


def test_the_explainer_names_a_duplicate_per_slot():
    seen: list = []
    request = slots_request(THREE_SLOTS[:2], "advertiser")
    wins, _ = run(SAME_ADVERTISER, request, on_slot=lambda *observed: seen.append(observed))
    index = build_index(SAME_ADVERTISER)
    reasons = {}
    for slot, slot_request, duplicate in seen:
        explained = explain(
            index,
            slot_request,
            winners=[w.decision.campaign.id for w in wins[slot.name]],
            refused={},
            daypart=lambda c, r: True,
            budget_memo=lambda c, r: True,
            pacing_memo=lambda c, r: True,
            floor_micros=0,
            duplicate=duplicate,
        )
        reasons[slot.name] = {row["campaignId"]: row["reason"] for row in explained["candidates"]}
    assert reasons == {
        "top": {"a1": "won", "a2": "lower-bid", "b1": "lower-bid"},
        "side": {"a1": "duplicate", "a2": "duplicate", "b1": "won"},
    }


def test_sizes_and_counts():
    big = make_campaign("big", cpm_micros=9_000_000, ads=0)
    big = big.model_copy(update={"ads": (sized_ad("big", 0, "728x90"),)})
    small = make_campaign("small", cpm_micros=5_000_000, ads=0)
    small = small.model_copy(update={"ads": (sized_ad("small", 0, "300x250"),)})
    unsized = make_campaign("any", cpm_micros=1_000_000)
    request = slots_request(
        [
            {"name": "leader", "placementId": "p-1", "sizes": ["728x90", "970x250"]},
            {"name": "box", "placementId": "p-1", "sizes": ["300x250"], "count": 3},
        ],
        "campaign",
    )
    wins, _ = run([big, small, unsized], request)
    assert [w.decision.campaign.id for w in wins["leader"]] == ["big"]
    assert [w.decision.campaign.id for w in wins["box"]] == ["small"]  # the rest has no 300x250


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"userId": "u", "slots": []}, "slots"),
        (
            {"userId": "u", "slots": [{"name": "a", "placementId": "p", "count": 6}]},
            "slots.0.count",
        ),
        ({"userId": "u", "slots": [{"name": "a", "placementId": "p", "sizes": ["300"]}]}, "sizes"),
        (
            {
                "userId": "u",
                "slots": [{"name": "a", "placementId": "p"}, {"name": "a", "placementId": "q"}],
            },
            "slots",
        ),
        (
            {"userId": "u", "slots": [{"name": "a", "placementId": "p"}], "duplicates": "x"},
            "duplicates",
        ),
    ],
)
def test_bad_slot_requests_are_a_400_that_names_the_field(body: dict, named: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(SlotsRequest, body)
    assert named in caught.value.message


_LABELS = ("auto", "air", "bank")
_SIZES = ("300x250", "728x90")


@st.composite
def _campaigns(draw: st.DrawFn) -> list[Campaign]:
    base = draw(campaign_lists(max_size=15))
    campaigns = []
    for campaign in base:
        ads = tuple(
            sized_ad(campaign.id, n, draw(st.sampled_from((None, *_SIZES))))
            for n in range(len(campaign.ads))
        )
        campaigns.append(
            campaign.model_copy(
                update={
                    "advertiser_id": draw(st.sampled_from(("adv-1", "adv-2", "adv-3"))),
                    "exclusion_labels": tuple(draw(st.sets(st.sampled_from(_LABELS), max_size=2))),
                    "ads": ads,
                    "daily_budget_micros": draw(st.sampled_from((0, 10_000, 10**9))),
                    "lifetime_budget_micros": None,
                }
            )
        )
    return campaigns


_slot = st.fixed_dictionaries(
    {
        "placementId": st.sampled_from(PLACEMENTS),
        "count": st.integers(1, 3),
        "sizes": st.lists(st.sampled_from(_SIZES), unique=True, max_size=2),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    _campaigns(),
    st.lists(_slot, min_size=1, max_size=4),
    st.sampled_from(("none", "campaign", "advertiser", "creative")),
)
def test_no_request_returns_a_duplicate_and_every_winner_is_eligible(campaigns, slots, mode):
    request = slots_request([{**s, "name": f"s{n}"} for n, s in enumerate(slots)], mode)
    wins, ledger = run(campaigns, request)
    winners = [(slot, w) for slot in request.slots for w in wins[slot.name]]
    assert len(ledger.records) == len(winners)  # each winner charged and recorded once
    assert len({w.impression_id for _, w in winners}) == len(winners)
    for slot, win in winners:
        decision = win.decision
        assert reference_eligible(decision.campaign, request.for_slot(slot))
        assert not slot.sizes or decision.ad.size in slot.sizes
        assert decision.ad in decision.campaign.ads
    assert len(wins[request.slots[0].name]) <= request.slots[0].count
    key = {
        "campaign": lambda d: d.campaign.id,
        "advertiser": lambda d: d.campaign.advertiser_id,
        "creative": lambda d: d.ad.id,
    }.get(mode)
    if key is not None:
        keys = [key(w.decision) for _, w in winners]
        assert len(keys) == len(set(keys))
    for (_, one), (_, other) in itertools.combinations(winners, 2):
        a, b = one.decision.campaign, other.decision.campaign
        if a.id != b.id:
            assert set(a.exclusion_labels).isdisjoint(b.exclusion_labels)


def test_serve_reads_repeated_slot_parameters() -> None:
    from shared_layer.bidding.service.slots import slots_request_from_query

    lists = {"slot": ["top:p-1:728x90|970x250:2", "side:p-2"]}
    query = {"userId": "u-1", "slot": lists["slot"][0], "duplicates": "creative", "age": "30"}
    request = slots_request_from_query(query, lists)
    assert [(s.name, s.placement_id, s.sizes, s.count) for s in request.slots] == [
        ("top", "p-1", ("728x90", "970x250"), 2),
        ("side", "p-2", (), 1),
    ]
    assert request.duplicates == "creative" and request.user_attributes.age == 30


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"userId": "u", "slot": "top"}, "slot.0"),
        ({"userId": "u", "slot": "top:p:300x250:x"}, "slot.0"),
        ({"userId": "u", "slot": "top:p", "placementId": "p"}, "placementId"),
        ({"userId": "u", "slot": "top:p:300"}, "sizes"),
        ({"userId": "u", "slot": "top:p::9"}, "count"),
        ({"slot": "top:p"}, "userId"),
        ({"userId": "u", "slot": "top:p", "duplicates": "page"}, "duplicates"),
    ],
)
def test_bad_slot_parameters_are_a_400_that_names_them(query: dict, named: str) -> None:
    from shared_layer.bidding.service.slots import slots_request_from_query

    with pytest.raises(ValidationFailed) as caught:
        slots_request_from_query(query, {"slot": [query["slot"]]})
    assert named in caught.value.message


def test_bids_slots_answer_reads_back_exactly() -> None:
    import json

    from shared_layer.bidding.service.bid_client import parse_slots_answer
    from shared_layer.bidding.service.slots import slots_answer

    campaigns = [make_campaign("a1", cpm_micros=2_500_100), make_campaign("b1", advertiser_id="b")]
    wins, _ = run(campaigns, slots_request(THREE_SLOTS[:2], "advertiser"))
    body = json.dumps(slots_answer(wins))
    read = parse_slots_answer(body)
    assert {
        name: [(b.campaign_id, b.bid_cpm_micros, i) for b, i in won] for name, won in read.items()
    } == {
        name: [
            (w.decision.campaign.id, w.decision.campaign.cpm_micros, w.impression_id) for w in won
        ]
        for name, won in wins.items()
    }


def test_serve_reads_key_values_from_the_query() -> None:
    from shared_layer.bidding.service.bid_client import bid_request_from_query

    query = {"userId": "u", "placementId": "p", "keyValues": "section:sports|news,lang:fr"}
    assert bid_request_from_query(query).key_values == {
        "section": ("sports", "news"),
        "lang": ("fr",),
    }
    for bad in ("section", "section:", ":x", "a:b||c"):
        with pytest.raises(ValidationFailed):
            bid_request_from_query({"userId": "u", "placementId": "p", "keyValues": bad})
