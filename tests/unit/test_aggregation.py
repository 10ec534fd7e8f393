"""The aggregation's pure part: what the connector delivers, sorted into events and rejections,
per (campaign, day) deltas, and the plan of the live counters' Redis script."""

from __future__ import annotations

import json
import sys
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_layer.kernel.errors import BadRequest
from shared_layer.pipeline.domain.aggregation import (
    DayDelta,
    DayWindow,
    Intake,
    KafkaRecord,
    by_partition,
    daily_deltas,
    read_events,
)
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.service.delivery import records_from_request
from shared_layer.pipeline.store.live_counters import (
    LOST_AT_KEY,
    READY_KEY,
    offset_key,
    plan,
    stats_key,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra" / "connector"))
from kafka_connector.payloads import batch_body

from tests.support import FakeKafkaRecord, click_on

TODAY = date(2025, 11, 29)
NOON = datetime(2025, 11, 29, 12, 0, tzinfo=UTC)
WINDOW = DayWindow.last_days(TODAY, 30)


def impression(campaign: str = "c-1", price: int = 2_500, at: datetime = NOON, **kw) -> AdEvent:
    return AdEvent.impression(
        impression_id=kw.pop("impression_id", str(uuid.uuid4())),
        campaign_id=kw.pop("campaign_id", str(uuid.uuid5(uuid.NAMESPACE_DNS, campaign))),
        ad_id=kw.pop("ad_id", str(uuid.uuid5(uuid.NAMESPACE_URL, campaign))),
        user_id="user-1",
        placement_id="placement-001",
        bid_cpm_micros=2_500_123,
        price_micros=price,
        country="US",
        device_type="mobile",
        at=at,
    )


def click(of: AdEvent, at: datetime = NOON) -> AdEvent:
    return click_on(of, at)


def batch(*values: bytes | None, first_offset: int = 100, topic: str = "impressions") -> bytes:
    """A batch exactly as the connector builds it (its own payload code)."""
    return batch_body(
        [
            FakeKafkaRecord(v, b"campaign", first_offset + i, 3, topic, (1, 1_764_417_600_000))
            for i, v in enumerate(values)
        ]
    )


# records_from_request


def test_a_connector_batch_becomes_records_whose_events_round_trip_exactly():
    events = [impression(price=1), impression(price=999_999_999), click(impression())]
    records = records_from_request(batch(*(e.to_bytes() for e in events)), {})
    assert [(r.topic, r.partition, r.offset) for r in records] == [
        ("impressions", 3, 100),
        ("impressions", 3, 101),
        ("impressions", 3, 102),
    ]
    intake = read_events(records, WINDOW)
    assert [e for _, e in intake.events] == events  # bidPrice 2.500123 stays exact
    assert intake.rejected == [] and intake.received == 3


@pytest.mark.parametrize("field", ["eventId", "campaignId", "adId", "impressionId"])
@pytest.mark.parametrize(
    ("spelling", "outcome"),
    [
        (str.upper, "canonical"),  # another spelling of the same UUID: read, canonicalised
        (lambda i: "{" + i[:-2] + "}", "invalid"),  # 36 characters, not a UUID
        (lambda i: i[:8] + "0" + i[9:], "invalid"),  # a dash missing, still 36 characters
        (lambda i: i[:-1] + "g", "invalid"),
        (lambda i: i[:-1] + chr(0xFC), "invalid"),  # not ASCII
    ],
    ids=["upper", "braces", "no-dash", "not-hex", "not-ascii"],
)
def test_a_batch_with_one_odd_id_counts_the_rest_and_judges_that_one_alone(
    field, spelling, outcome
):
    events = [impression(), impression(), impression()]
    odd = events[1].to_json()
    odd[field] = spelling(odd[field])
    values = [events[0].to_bytes(), json.dumps(odd).encode(), events[2].to_bytes()]

    intake = read_events(records_from_request(batch(*values), {}), WINDOW)

    counted = [e for _, e in intake.events]
    if outcome == "canonical":
        assert counted == events and intake.rejected == []
    else:
        assert counted == [events[0], events[2]]
        [rejection] = intake.rejected
        assert (rejection.offset, rejection.reason) == (101, "invalid")


@pytest.mark.parametrize("country", ["us", "U1", chr(0xDC) + "S"])
def test_a_batch_with_one_odd_country_sets_that_event_aside(country):
    events = [impression(), impression()]
    odd = {**events[1].to_json(), "country": country}

    intake = read_events(
        records_from_request(batch(events[0].to_bytes(), json.dumps(odd).encode()), {}), WINDOW
    )

    assert [e for _, e in intake.events] == [events[0]]
    assert [r.offset for r in intake.rejected] == [101]


def test_one_record_per_call_takes_its_place_from_the_connector_headers():
    event = impression()
    headers = {"x-topic": "clicks", "x-kafka-partition": "4", "x-kafka-offset": "17"}
    [record] = records_from_request(event.to_bytes(), headers)
    assert (record.topic, record.partition, record.offset) == ("clicks", 4, 17)
    assert [e for _, e in read_events([record], WINDOW).events] == [event]


def test_one_record_without_headers_has_no_place():
    [record] = records_from_request(impression().to_bytes(), {})
    assert (record.topic, record.partition, record.offset) == ("", None, None)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"[not json", {}),
        (b'[{"topic": "impressions", "partition": 1}]', {}),  # no offset
        (b'[{"topic": "impressions", "partition": -1, "offset": 2, "value": {}}]', {}),
        (b'[{"topic": 5, "partition": 1, "offset": 2, "value": {}}]', {}),
        (b'[{"topic": "impressions", "partition": true, "offset": 2, "value": {}}]', {}),
        (b"[1, 2]", {}),
        (b"{}", {"x-kafka-offset": "twelve"}),
    ],
    ids=["not-json", "no-offset", "negative", "topic-type", "bool", "not-objects", "bad-header"],
)
def test_a_delivery_that_is_not_a_batch_of_records_is_the_callers_fault(body, headers):
    with pytest.raises(BadRequest):
        records_from_request(body, headers)


# read_events


def _record(value, offset: int = 1) -> KafkaRecord:
    return KafkaRecord("impressions", 0, offset, value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "invalid"),
        ("plain text", "invalid"),
        ([1, 2], "invalid"),
        ({"eventId": "x"}, "invalid"),
        ({**impression().to_json(), "priceMicros": -1}, "invalid"),
        ({**impression().to_json(), "eventType": "view"}, "invalid"),
        (impression(at=NOON - timedelta(days=30)).to_json(), "too-old"),
        (impression(at=NOON + timedelta(days=2)).to_json(), "in-the-future"),
    ],
    ids=["null", "text", "array", "no-fields", "negative-price", "type", "too-old", "future"],
)
def test_records_that_cannot_be_counted_are_set_aside_with_their_place(value, reason):
    good = impression()
    intake = read_events([_record(good.to_json(), 1), _record(value, 2)], WINDOW)
    assert [e for _, e in intake.events] == [good]
    [rejection] = intake.rejected
    assert (rejection.topic, rejection.partition, rejection.offset) == ("impressions", 0, 2)
    assert rejection.reason == reason
    assert intake.received == 2


def test_a_rejection_names_the_event_id_it_claims():
    broken = {**impression().to_json(), "priceMicros": "lots"}
    [rejection] = read_events([_record(broken)], WINDOW).rejected
    assert rejection.event_id == broken["eventId"]
    assert rejection.to_log()["eventId"] == broken["eventId"]


def test_the_same_event_twice_in_a_batch_is_kept_once():
    event = impression()
    intake = read_events([_record(event.to_json(), 1), _record(event.to_json(), 2)], WINDOW)
    assert [e for _, e in intake.events] == [event]
    assert intake.repeated == 1 and intake.received == 2


def test_events_the_store_refuses_move_to_the_rejections():
    kept, unknown = impression("a"), impression("b")
    intake = read_events([_record(kept.to_json(), 1), _record(unknown.to_json(), 2)], WINDOW)
    moved = intake.set_aside([unknown.event_id], "unknown-campaign")
    assert [e for _, e in intake.events] == [kept]
    assert [(r.offset, r.reason, r.event_id) for r in moved] == [
        (2, "unknown-campaign", unknown.event_id)
    ]
    assert intake.rejected == moved and intake.received == 2


@pytest.mark.parametrize(
    ("days", "day", "verdict"),
    [
        (30, TODAY, None),
        (30, TODAY + timedelta(days=1), None),  # a clock a little ahead
        (30, TODAY + timedelta(days=2), "in-the-future"),
        (30, TODAY - timedelta(days=29), None),  # the oldest day kept
        (30, TODAY - timedelta(days=30), "too-old"),
        (1, TODAY, None),
        (1, TODAY - timedelta(days=1), "too-old"),
    ],
)
def test_the_window_holds_the_last_days_and_tomorrow(days, day, verdict):
    assert DayWindow.last_days(TODAY, days).judge(day) == verdict


def test_a_window_needs_a_day():
    with pytest.raises(ValueError):
        DayWindow.last_days(TODAY, 0)


# daily_deltas


def test_deltas_are_per_campaign_and_utc_day_with_exact_spend():
    late = datetime(2025, 11, 28, 23, 59, 59, 999_000, tzinfo=UTC)
    a1, a2, a_late = impression("a", 2_501), impression("a", 7), impression("a", 1_000, at=late)
    b1 = impression("b", 3)
    deltas = daily_deltas([a1, a2, a_late, b1, click(a1), click(b1)])
    assert deltas == {
        (a1.campaign_id, TODAY): DayDelta(impressions=2, clicks=1, spend_micros=2_508),
        (a1.campaign_id, date(2025, 11, 28)): DayDelta(1, 0, 1_000),
        (b1.campaign_id, TODAY): DayDelta(1, 1, 3),
    }


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.booleans(), st.integers(0, 10**15)), max_size=60)
)
def test_deltas_add_up_to_the_events_exactly(specs):
    events = [impression(c, p) if is_imp else click(impression(c)) for c, is_imp, p in specs]
    deltas = daily_deltas(events)
    assert sum(d.impressions for d in deltas.values()) == sum(1 for s in specs if s[1])
    assert sum(d.clicks for d in deltas.values()) == sum(1 for s in specs if not s[1])
    assert sum(d.spend_micros for d in deltas.values()) == sum(p for _, i, p in specs if i)


# by_partition and the live counters' plan


def test_slices_end_at_the_last_offset_delivered_even_if_it_was_set_aside():
    a, b = impression(), impression()
    records = [
        KafkaRecord("impressions", 1, 7, a.to_json()),
        KafkaRecord("impressions", 2, 3, b.to_json()),
        KafkaRecord("impressions", 1, 8, {"eventId": "broken"}),
    ]
    slices = by_partition(records, read_events(records, WINDOW))
    assert [(s.topic, s.partition, s.events, s.last_offset) for s in slices] == [
        ("impressions", 1, [(7, a)], 8),
        ("impressions", 2, [(3, b)], 3),
    ]


def test_slices_need_kafka_places():
    with pytest.raises(BadRequest):
        by_partition([KafkaRecord("", None, None, b"{}")], Intake())


def test_the_plan_counts_each_record_once_into_the_seed_keys():
    a = impression("a", 2_500)
    free = impression("a", 0)
    c = click(a)
    [call] = plan("impressions", 5, [(10, a), (11, free), (12, c)], last_offset=13, keep_days=3)
    assert call.keys == (
        offset_key("impressions", 5),
        READY_KEY,
        LOST_AT_KEY,
        stats_key("spend", a.campaign_id, TODAY),
        stats_key("impressions", a.campaign_id, TODAY),
        stats_key("clicks", a.campaign_id, TODAY),
    )
    expiry = int(datetime(2025, 12, 2, tzinfo=UTC).timestamp())  # 3 days after the day began
    records = f"10,{a.event_id},5,4,2500;11,{free.event_id},5,0,0;12,{c.event_id},6,0,0;"
    # the watermark's move, the dedupe window, the ids' lifetime until a rebuild, the expiries
    assert call.args == (13, 600, 86_400, expiry, expiry, expiry, "live::seen::", records)
    assert call.records == 3


def test_the_plan_keeps_each_event_id_for_the_dedupe_window_it_is_given():
    a = impression("a", 10)
    [call] = plan("impressions", 0, [(1, a)], last_offset=1, keep_days=3, dedupe_s=90_000)
    assert call.args[1:3] == (90_000, 90_000)  # never shorter than the window while lost
    assert f",{a.event_id}," in call.args[-1]


def test_a_plan_with_nothing_to_count_still_moves_the_watermark():
    [call] = plan("clicks", 0, [], last_offset=41, keep_days=3)
    assert call.keys == ("kafka::offset::clicks::0", READY_KEY, LOST_AT_KEY)
    assert call.args == (41, 600, 86_400, "live::seen::", "")


def test_spend_beyond_exact_lua_integers_is_cut_into_calls_in_offset_order():
    big = 10**15  # the largest price an event may carry
    events = [(100 + i, impression("a", big)) for i in range(20)]
    calls = plan("impressions", 0, events, last_offset=200, keep_days=3)
    assert len(calls) == 3
    per_key: Counter[str] = Counter()
    for call in calls:
        records = [r.split(",") for r in call.args[-1].split(";") if r]
        assert sum(int(price) for *_, price in records) < 2**53
        for _offset, _event_id, _count, spend_key, price in records:
            per_key[call.keys[int(spend_key) - 1]] += int(price)
    assert [c.args[0] for c in calls] == [108, 117, 200]  # each moves to its last record
    assert sum(c.records for c in calls) == 20
    assert per_key == {stats_key("spend", events[0][1].campaign_id, TODAY): 20 * big}


def test_the_batch_json_of_the_connector_keeps_non_json_values_as_invalid():
    records = records_from_request(batch(b"\xff\xfe binary", b"text, not json", b"null"), {})
    intake = read_events(records, WINDOW)
    assert intake.events == []
    assert [r.reason for r in intake.rejected] == ["invalid"] * 3
    assert json.loads(batch(b"null"))[0]["value"] is None
