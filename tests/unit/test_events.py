"""The event model: the specification's schema plus impressionId and priceMicros, read back
strictly."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_layer.kernel.errors import ValidationFailed
from shared_layer.kernel.storage.outbox import outbox_fields
from shared_layer.pipeline.domain import events as events_module
from shared_layer.pipeline.domain.events import (
    CLICKS_TOPIC,
    IMPRESSIONS_TOPIC,
    AdEvent,
    click_event_id,
    parse_event,
)

CAMPAIGN = "0b6d1a2e-0000-4000-8000-00000000000c"
AD = "0b6d1a2e-0000-4000-8000-00000000000a"
IMPRESSION = "0b6d1a2e-0000-4000-8000-000000000001"
AT = datetime(2025, 11, 29, 14, 30, 45, 123_456, tzinfo=UTC)


def impression(**overrides) -> AdEvent:
    fields = dict(
        impression_id=IMPRESSION,
        campaign_id=CAMPAIGN,
        ad_id=AD,
        user_id="user-123",
        placement_id="placement-001",
        bid_cpm_micros=2_500_000,
        price_micros=2_500,
        country="US",
        device_type="mobile",
        at=AT,
    )
    fields.update(overrides)
    return AdEvent.impression(**fields)


def test_an_impression_is_the_seed_schema_plus_impression_id_and_price():
    assert impression().to_json() == {
        "eventId": IMPRESSION,
        "timestamp": "2025-11-29T14:30:45.123Z",
        "eventType": "impression",
        "userId": "user-123",
        "campaignId": CAMPAIGN,
        "adId": AD,
        "placementId": "placement-001",
        "bidPrice": 2.5,
        "impressionId": IMPRESSION,
        "priceMicros": 2_500,
        "country": "US",
        "deviceType": "mobile",
    }


def test_topic_key_and_outbox_fields_follow_the_event():
    event = impression()
    assert (event.topic, event.key) == (IMPRESSIONS_TOPIC, CAMPAIGN.encode())
    assert outbox_fields(event) == [
        b"topic", b"impressions", b"key", CAMPAIGN.encode(), b"value", event.to_bytes(),
    ]  # fmt: skip
    click = AdEvent.click(
        impression_id=IMPRESSION, campaign_id=CAMPAIGN, ad_id=AD, user_id="u", placement_id="p"
    )
    assert (click.topic, click.price_micros) == (CLICKS_TOPIC, 0)


def test_every_click_on_one_impression_has_the_same_event_id_and_no_other_does():
    first = AdEvent.click(
        impression_id=IMPRESSION, campaign_id=CAMPAIGN, ad_id=AD, user_id="u", placement_id="p"
    )
    later = AdEvent.click(
        impression_id=IMPRESSION,
        campaign_id=CAMPAIGN,
        ad_id=AD,
        user_id="u",
        placement_id="p",
        at=AT + timedelta(minutes=5),
    )
    assert first.event_id == later.event_id == click_event_id(IMPRESSION)
    assert first.event_id != IMPRESSION
    assert click_event_id(str(uuid.uuid4())) != first.event_id
    uuid.UUID(first.event_id)  # events_log stores it as a UUID


def test_the_day_is_the_utc_date_whatever_the_zone_it_was_made_in():
    late_in_new_york = datetime(2025, 11, 29, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    event = impression(at=late_in_new_york)
    assert event.day.isoformat() == "2025-11-30"
    assert event.to_json()["timestamp"] == "2025-11-30T01:00:00.000Z"


@given(
    cpm=st.integers(min_value=1_000, max_value=10**15),
    price=st.integers(min_value=0, max_value=10**15),
    user=st.text(min_size=1, max_size=255),
)
def test_an_event_round_trips_exactly_through_bytes_and_decoded_json(cpm, price, user):
    event = impression(bid_cpm_micros=cpm, price_micros=price, user_id=user)
    assert parse_event(event.to_bytes()) == event
    # The connector hands batches over already decoded (floats for bidPrice): still exact.
    assert parse_event(json.loads(event.to_bytes())) == event


@pytest.mark.parametrize(
    ("change", "bad"),
    [
        ({"eventType": "view"}, "eventType"),
        ({"eventId": "not-a-uuid"}, "eventId"),
        ({"campaignId": None}, "campaignId"),
        ({"adId": 7}, "adId"),
        ({"userId": ""}, "userId"),
        ({"placementId": "p" * 256}, "placementId"),
        ({"country": "usa"}, "country"),
        ({"priceMicros": -1}, "priceMicros"),
        ({"priceMicros": 2.5}, "priceMicros"),
        ({"priceMicros": True}, "priceMicros"),
        ({"bidPrice": "lots"}, "bidPrice"),
        ({"timestamp": "2025-11-29T14:30:45"}, "timestamp"),  # no zone: ambiguous
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"campaignId": CAMPAIGN[:-1] + chr(0x661)}, "campaignId"),  # an Arabic-Indic one
    ],
)
def test_a_malformed_event_is_refused_naming_the_field(change, bad):
    data = {**impression().to_json(), **change}
    with pytest.raises(ValidationFailed) as refused:
        parse_event(json.dumps(data).encode())
    assert bad in refused.value.message


def test_a_click_carrying_a_price_is_refused():
    click = AdEvent.click(
        impression_id=IMPRESSION, campaign_id=CAMPAIGN, ad_id=AD, user_id="u", placement_id="p"
    )
    with pytest.raises(ValidationFailed, match="priceMicros"):
        parse_event({**click.to_json(), "priceMicros": 1})


@pytest.mark.parametrize("raw", [b"", b"[]", b"not json", b"{" * 20_000])
def test_what_is_not_an_event_object_is_refused(raw):
    with pytest.raises(ValidationFailed):
        parse_event(raw)


def test_uppercase_ids_are_read_in_canonical_form():
    data = {**impression().to_json(), "campaignId": CAMPAIGN.upper()}
    assert parse_event(data).campaign_id == CAMPAIGN


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300)
    | st.sampled_from(["US", "us", "2025-11-29T14:30:45.123Z", "2025-11-29T14:30:45", CAMPAIGN]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)
FIELDS = sorted(impression(country="US", device_type="mobile").to_json())


def _outcome(parse, raw: bytes):
    try:
        return parse(raw)
    except ValidationFailed:
        return "refused"


@given(
    changes=st.dictionaries(st.sampled_from([*FIELDS, "extra"]), JSON_VALUES, max_size=3),
    dropped=st.sets(st.sampled_from(FIELDS), max_size=2),
)
def test_the_fast_decoder_accepts_exactly_what_the_careful_reader_accepts(changes, dropped):
    """The msgspec pass is only a shortcut: for any event JSON, well-formed or not, it gives
    the event the careful reader gives, or leaves the decision to it."""
    data = {**impression(country="US", device_type="mobile").to_json(), **changes}
    raw = json.dumps({k: v for k, v in data.items() if k not in dropped}).encode()
    assert _outcome(parse_event, raw) == _outcome(events_module._parse_carefully, raw)
