"""The log-level export's file layout, pure: keys, deterministic bytes, manifests, closed hours,
and the lag the alert watches."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared_layer.export.domain.log_export import (
    ExportHour,
    Manifest,
    closed_hours,
    encode_parts,
    lag_hours,
)
from shared_layer.pipeline.domain.events import AdEvent, parse_event

HOUR = ExportHour("impression", datetime(2026, 12, 2, 13, tzinfo=UTC))


def impression(at: datetime) -> AdEvent:
    return AdEvent.impression(
        impression_id=str(uuid.uuid4()),
        campaign_id=str(uuid.uuid4()),
        ad_id=str(uuid.uuid4()),
        user_id="user-1",
        placement_id="placement-001",
        bid_cpm_micros=2_500_000,
        price_micros=2_500,
        country="US",
        at=at,
    )


def test_keys_follow_the_documented_layout():
    assert HOUR.part_key("ads/", 0) == (
        "ads/events/type=impression/date=2026-12-02/hour=13/part-00000.json.gz"
    )
    assert HOUR.manifest_key("") == "events/type=impression/date=2026-12-02/hour=13/manifest.json"


def test_an_hour_encodes_to_the_same_bytes_in_any_order_and_every_record_once():
    events = [impression(HOUR.start + timedelta(seconds=s)) for s in range(0, 3600, 7)]
    parts = encode_parts(HOUR, events, records_per_part=100, prefix="")
    again = encode_parts(HOUR, list(reversed(events)), records_per_part=100, prefix="")
    assert [p.body for p in parts] == [p.body for p in again]
    assert [p.records for p in parts] == [100, 100, 100, 100, 100, 15]
    decoded = [parse_event(line) for p in parts for line in gzip.decompress(p.body).splitlines()]
    assert sorted(e.event_id for e in decoded) == sorted(e.event_id for e in events)
    assert decoded == sorted(events, key=lambda e: e.event_id)
    assert all(p.sha256 == hashlib.sha256(p.body).hexdigest() for p in parts)


def test_the_manifest_lists_every_object_with_its_count_size_and_checksum():
    events = [impression(HOUR.start + timedelta(minutes=m)) for m in range(5)]
    parts = encode_parts(HOUR, events, records_per_part=2, prefix="x/")
    manifest = Manifest.of(HOUR, parts, prefix="x/")
    body = json.loads(manifest.to_bytes())
    assert body["records"] == 5 and body["hour"] == "2026-12-02T13:00:00Z"
    assert [o["key"] for o in body["objects"]] == [p.key for p in parts]
    assert [(o["records"], o["bytes"], o["sha256"]) for o in body["objects"]] == [
        (p.records, len(p.body), p.sha256) for p in parts
    ]
    assert manifest.sha256() == hashlib.sha256(manifest.to_bytes()).hexdigest()


def test_an_empty_hour_has_a_manifest_and_no_object():
    manifest = Manifest.of(HOUR, encode_parts(HOUR, [], records_per_part=10, prefix=""), prefix="")
    assert json.loads(manifest.to_bytes())["objects"] == [] and manifest.records == 0


@pytest.mark.parametrize(
    "event",
    [
        impression(HOUR.start - timedelta(microseconds=1)),
        impression(HOUR.end),
        AdEvent.click(
            impression_id=str(uuid.uuid4()),
            campaign_id="c",
            ad_id="a",
            user_id="u",
            placement_id="p",
            at=HOUR.start,
        ),
    ],
)
def test_an_event_of_another_hour_or_type_is_refused(event):
    with pytest.raises(ValueError, match="is not of"):
        encode_parts(HOUR, [event], records_per_part=10, prefix="")


def test_an_hour_closes_only_after_the_grace():
    since = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
    now = datetime(2026, 12, 2, 13, 9, tzinfo=UTC)
    hours = closed_hours(since, now, grace=timedelta(minutes=10))
    assert hours == [datetime(2026, 12, 2, h, tzinfo=UTC) for h in (10, 11)]
    later = closed_hours(since, now + timedelta(minutes=1), grace=timedelta(minutes=10))
    assert later[-1] == datetime(2026, 12, 2, 12, tzinfo=UTC)


def test_the_lag_counts_from_the_oldest_pending_hour():
    now = datetime(2026, 12, 2, 16, 10, tzinfo=UTC)
    grace = timedelta(minutes=10)
    assert lag_hours([], now, grace=grace) == 0
    pending = [datetime(2026, 12, 2, h, tzinfo=UTC) for h in (15, 12, 14)]
    assert lag_hours(pending, now, grace=grace) == 3.0  # 12:00-13:00 ended 3 h before 16:00


def test_an_hour_is_on_the_hour_in_utc():
    with pytest.raises(ValueError):
        ExportHour("click", datetime(2026, 12, 2, 13, 5, tzinfo=UTC))
    with pytest.raises(ValueError):
        ExportHour("click", datetime(2026, 12, 2, 13))
