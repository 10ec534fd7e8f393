"""The campaigns API's input and output shapes (shared_layer.campaigns.domain.requests), no
database."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from shared_layer.campaigns.domain.requests import (
    MAX_BULK_CAMPAIGNS,
    CampaignRecord,
    LiveSpend,
    campaign_json,
    decode_cursor,
    decode_offset_cursor,
    encode_cursor,
    encode_offset_cursor,
    parse_bulk,
    parse_campaign,
    parse_floor,
    parse_list_query,
)
from shared_layer.kernel.errors import InvalidSettings, PayloadTooLarge, ValidationFailed
from shared_layer.kernel.storage.postgres import parse_database_url

ADVERTISER = "3f2b8d9c-1f1c-4a0e-8e4b-9a573f1f2b8d"
AD = {"title": "T", "imageUrl": "https://x.test/i.png", "redirectUrl": "https://x.test/"}


def body(**overrides) -> bytes:
    fields = {"advertiserId": ADVERTISER, "name": "N", "cpmBid": 2.5, "dailyBudget": 100}
    fields.update(overrides)
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("text", "micros"),
    [("2.50", 2_500_000), ("0.001", 1_000), ("12", 12_000_000), ("999999.9999", 999_999_999_900)],
)
def test_cpm_is_read_exactly_from_the_json_text(text, micros):
    raw = body().replace(b'"cpmBid": 2.5', f'"cpmBid": {text}'.encode())
    assert parse_campaign(raw).cpm_bid == micros


def test_a_budget_keeps_every_cent():
    raw = body().replace(b'"dailyBudget": 100', b'"dailyBudget": 0.29, "lifetimeBudget": 1e3')
    parsed = parse_campaign(raw)
    assert (parsed.daily_budget, parsed.lifetime_budget) == (290_000, 1_000_000_000)


BAD = [
    ({"cpmBid": 0}, "cpmBid"),
    ({"cpmBid": 0.0009}, "cpmBid"),
    ({"cpmBid": 1.00001}, "cpmBid"),
    ({"cpmBid": "2.5"}, "cpmBid"),
    ({"cpmBid": True}, "cpmBid"),
    ({"cpmBid": 1_000_000}, "cpmBid"),
    ({"dailyBudget": -1}, "dailyBudget"),
    ({"dailyBudget": 1.001}, "dailyBudget"),
    ({"lifetimeBudget": 99}, "lifetimeBudget"),
    ({"advertiserId": "adv-1"}, "advertiserId"),
    ({"advertiserId": 7}, "advertiserId"),
    ({"advertiserId": ADVERTISER[:-1] + chr(0x661)}, "advertiserId"),  # an Arabic-Indic one
    ({"name": ""}, "name"),
    ({"name": "x" * 256}, "name"),
    ({"name": "bad\nname"}, "name"),
    ({"status": "ended"}, "status"),
    ({"targetingRules": [{"ruleType": "city", "ruleValue": "Paris"}]}, "ruleType"),
    ({"targetingRules": [{"ruleType": "country", "ruleValue": "us"}]}, "ruleValue"),
    ({"targetingRules": [{"ruleType": "device_type", "ruleValue": "phone"}]}, "ruleValue"),
    ({"targetingRules": [{"ruleType": "age_range", "ruleValue": "5-10"}]}, "ruleValue"),
    ({"targetingRules": [{"ruleType": "interest", "ruleValue": "x" * 65}]}, "ruleValue"),
    ({"ads": [{**AD, "imageUrl": "ftp://x.test/i.png"}]}, "imageUrl"),
    ({"ads": [{**AD, "redirectUrl": "javascript:alert(1)"}]}, "redirectUrl"),
    ({"ads": [{**AD, "redirectUrl": "https://"}]}, "redirectUrl"),
    ({"ads": [AD] * 51}, "ads"),
    ({"ads": [{**AD, "id": "a-1"}]}, "id"),
    ({"ads": [{**AD, "campaignId": ADVERTISER}]}, "campaignId"),
    ({"extra": 1}, "extra"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD, ids=[f for _, f in BAD])
def test_invalid_input_names_the_field(overrides, field):
    with pytest.raises(ValidationFailed) as caught:
        parse_campaign(body(**overrides))
    assert field in caught.value.message


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValidationFailed) as caught:
        parse_campaign(body(cpmBid=0, dailyBudget=-1, name=""))
    assert {"cpmBid", "dailyBudget", "name"} <= set(caught.value.fields)


@pytest.mark.parametrize("raw", [b"{nope", b"[]", b'"text"', b"", b"[" * 50_000])
def test_a_body_that_is_not_a_json_object_is_a_400(raw):
    with pytest.raises(ValidationFailed):
        parse_campaign(raw)


def test_oversized_bodies_are_413():
    with pytest.raises(PayloadTooLarge):
        parse_campaign(b" " * (256 * 1024 + 1))


def test_to_campaign_canonicalises_rules_and_ads_and_lowercases_ids():
    rules = [
        {"ruleType": "interest", "ruleValue": "tech"},
        {"ruleType": "country", "ruleValue": "US"},
        {"ruleType": "country", "ruleValue": "US"},
        {"ruleType": "age_range", "ruleValue": "018-24"},
    ]
    parsed = parse_campaign(
        body(targetingRules=rules, ads=[AD, AD], advertiserId=ADVERTISER.upper())
    )
    campaign = parsed.to_campaign()
    assert [(r.rule_type, r.rule_value) for r in campaign.targeting_rules] == [
        ("age_range", "18-24"),
        ("country", "US"),
        ("interest", "tech"),
    ]
    assert [ad.id for ad in campaign.ads] == sorted(ad.id for ad in campaign.ads)
    assert all(ad.campaign_id == campaign.id for ad in campaign.ads)
    assert campaign.advertiser_id == ADVERTISER and campaign.status == "active"


def test_bulk_names_the_index_and_refuses_duplicates_and_too_many():
    good = json.loads(body())
    with pytest.raises(ValidationFailed) as caught:
        parse_bulk(json.dumps({"campaigns": [good, {**good, "cpmBid": 0}]}))
    assert "campaigns.1.cpmBid" in caught.value.message
    same = {**good, "id": "00000000-0000-4000-8000-000000000001"}
    with pytest.raises(ValidationFailed, match="duplicate"):
        parse_bulk(json.dumps({"campaigns": [same, same]}))
    with pytest.raises(ValidationFailed, match="at most 1000"):
        parse_bulk(json.dumps({"campaigns": [good] * (MAX_BULK_CAMPAIGNS + 1)}))
    with pytest.raises(ValidationFailed):
        parse_bulk(b'{"campaigns": []}')
    assert len(parse_bulk(json.dumps({"campaigns": [good] * 3})).campaigns) == 3


def test_campaign_json_writes_money_as_decimal_numbers():
    campaign = parse_campaign(body(lifetimeBudget=None)).to_campaign()
    campaign = campaign.model_copy(update={"cpm_micros": 2_501_200})
    moment = datetime(2025, 11, 29, 14, 30, 45, 123000)
    out = campaign_json(CampaignRecord(campaign, moment, moment))
    assert (out["cpmBid"], out["dailyBudget"], out["lifetimeBudget"]) == (2.5012, 100, None)
    assert out["createdAt"] == "2025-11-29T14:30:45.123Z"
    assert json.loads(json.dumps(out)) == out


def test_pacing_time_zone_and_frequency_cap_reach_the_campaign_and_its_json():
    raw = body(
        pacing="even",
        timeZone="Europe/Paris",
        frequencyCap={"impressions": 3, "windowSeconds": 86400},
    )
    campaign = parse_campaign(raw).to_campaign()
    assert (campaign.pacing, campaign.time_zone) == ("even", "Europe/Paris")
    moment = datetime(2025, 11, 29, 14, 30, 45, 123000)
    out = campaign_json(CampaignRecord(campaign, moment, moment), LiveSpend(41_200_000, 45_000_000))
    assert out["frequencyCap"] == {"impressions": 3, "windowSeconds": 86400}
    assert (out["pacing"], out["spentToday"], out["expectedSpendNow"]) == ("even", 41.2, 45)
    plain = campaign_json(CampaignRecord(parse_campaign(body()).to_campaign(), moment, moment))
    assert (plain["pacing"], plain["timeZone"], plain["frequencyCap"]) == ("asap", "UTC", None)
    assert plain["spentToday"] is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"pacing": "fast"}, "pacing"),
        ({"timeZone": "Nowhere/Land"}, "timeZone"),
        ({"frequencyCap": {"impressions": 3}}, "frequencyCap.windowSeconds"),
        ({"frequencyCap": {"impressions": 3, "windowSeconds": 1}}, "frequencyCap.windowSeconds"),
    ],
)
def test_bad_pacing_fields_are_a_400_naming_the_field(overrides, field):
    with pytest.raises(ValidationFailed, match=field):
        parse_campaign(body(**overrides))


def test_a_floor_is_a_cpm_with_a_clearing_rule():
    floor = parse_floor("placement-001", b'{"floorCpm": 1.25, "clearing": "second-price"}')
    assert (floor.floor_cpm_micros, floor.clearing) == (1_250_000, "second-price")
    assert parse_floor("p", b'{"floorCpm": 0}').clearing == "first-price"
    for bad in (b'{"floorCpm": -1}', b'{"floorCpm": 1.00001}', b'{"clearing": "vickrey"}', b"[]"):
        with pytest.raises(ValidationFailed):
            parse_floor("p", bad)


def test_cursors_round_trip_and_garbage_is_a_400():
    cid = "00000000-0000-4000-8000-0000000000ff"
    assert decode_cursor(encode_cursor(cid)) == cid
    for garbage in ["", "x", "e30", encode_cursor("not-a-uuid")]:
        with pytest.raises(ValidationFailed):
            decode_cursor(garbage)


def test_database_url_parsing():
    params = parse_database_url("postgresql://adserver@10.62.0.1:6543/ads", password="s3cret")  # noqa: S106
    assert (params.host, params.port, params.database, params.user, params.password) == (
        "10.62.0.1",
        6543,
        "ads",
        "adserver",
        "s3cret",
    )
    assert "s3cret" not in repr(params)
    assert parse_database_url("postgres://u:p%40ss@h/db").password == "p@ss"  # noqa: S105
    with pytest.raises(InvalidSettings) as caught:
        parse_database_url("mysql://:x@/")
    assert len(caught.value.problems) == 4


@pytest.mark.parametrize(
    "query",
    [
        {"status": ""},
        {"status": "deleted"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"limit": "-1"},
        {"limit": "\u0663"},
        {"advertiserId": "adv-1"},
        {"cursor": ""},
        {"cursor": "garbage"},
        {"sort": "spend", "cursor": encode_cursor("00000000-0000-4000-8000-0000000000ff")},
        {"cursor": encode_offset_cursor(50)},
        {"sort": "budget"},
        {"sort": "name", "order": "down"},
        {"q": "x" * 201},
        {"q": "a\x00b"},
        {"startDate": "2026-12-1"},
        {"endDate": "20261201"},
        {"startDate": "2026-12-02", "endDate": "2026-12-01"},
    ],
)
def test_bad_list_parameters_are_refused(query):
    with pytest.raises(ValidationFailed):
        parse_list_query(query)


def test_list_parameters_become_store_arguments():
    cursor = encode_cursor("00000000-0000-4000-8000-0000000000ff")
    unsorted = {"text": None, "sort": None, "descending": False, "spend_days": (None, None)}
    assert parse_list_query({}) == {
        "status": None,
        "advertiser_id": None,
        "limit": 50,
        "cursor": None,
        **unsorted,
    }
    assert parse_list_query(
        {"status": "paused", "advertiserId": ADVERTISER, "limit": "7", "cursor": cursor}
    ) == {"status": "paused", "advertiser_id": ADVERTISER, "limit": 7, "cursor": cursor, **unsorted}
    offset = encode_offset_cursor(50)
    assert decode_offset_cursor(offset) == 50
    query = {"q": "Sale", "sort": "spend", "order": "desc", "cursor": offset}
    query |= {"startDate": "2026-12-01", "endDate": "2026-12-07"}
    assert parse_list_query(query) == {
        "status": None,
        "advertiser_id": None,
        "limit": 50,
        "cursor": offset,
        "text": "Sale",
        "sort": "spend",
        "descending": True,
        "spend_days": (date(2026, 12, 1), date(2026, 12, 7)),
    }
