"""One ad's correlation id, step by step: serve's request id into the outbox entry, the Kafka
headers, the connector's batch, the aggregation's log line and the click token."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra" / "connector"))
from kafka_connector.payloads import batch_body, record_headers

from shared_layer.clicks.domain.clicktoken import ClickClaims, sign, verify
from shared_layer.clicks.service.tracker import ClickTracker
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.http import Router, json_response
from shared_layer.kernel.storage.outbox import outbox_fields
from shared_layer.pipeline.domain.aggregation import correlation_ids
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.service.delivery import records_from_request
from shared_layer.pipeline.store.relay import _entry
from tests.support import FakeKafkaRecord
from tests.unit.test_click_requests import (
    AD,
    CAMPAIGN,
    IMPRESSION,
    KEY,
    LANDING,
    NOW,
    Directory,
    Recorder,
)

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
AD_REQUEST = Correlation("req-ad-1", TRACE)
EVENT = AdEvent.impression(
    impression_id="0b6d1a2e-0000-4000-8000-000000000001",
    campaign_id="c-1",
    ad_id="a-1",
    user_id="u-1",
    placement_id="p-1",
    bid_cpm_micros=2_500_000,
    price_micros=2_500,
    at=datetime(2026, 12, 3, 9, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("request_id", "traceparent"),
    [("", ""), ("x" * 129, ""), ("has space", ""), ("ok", "00-bad"), ("ok", TRACE + "0")],
)
def test_a_correlation_holds_only_what_may_travel_in_headers(request_id, traceparent):
    with pytest.raises(ValueError):
        Correlation(request_id, traceparent)


def test_the_outbox_entry_carries_the_correlation_to_the_kafka_headers():
    fields = outbox_fields(EVENT, AD_REQUEST)
    entry = _entry(b"1-0", dict(zip(fields[::2], fields[1::2], strict=True)))
    assert entry.headers == [("x-request-id", b"req-ad-1"), ("traceparent", TRACE.encode())]
    assert entry.value == EVENT.to_bytes()
    bare = outbox_fields(EVENT)  # an entry without a correlation produces no headers
    assert _entry(b"1-1", dict(zip(bare[::2], bare[1::2], strict=True))).headers is None


def test_the_connector_hands_the_headers_to_batch_and_single_record_functions():
    record = FakeKafkaRecord(EVENT.to_bytes(), _headers=AD_REQUEST.kafka_headers())
    plain = FakeKafkaRecord(EVENT.to_bytes(), _offset=8)
    batch = json.loads(batch_body([record, plain]))
    assert batch[0]["headers"] == {"x-request-id": "req-ad-1", "traceparent": TRACE}
    assert "headers" not in batch[1]
    records = records_from_request(batch_body([record, plain]), {})
    assert correlation_ids(records) == ["req-ad-1"]
    single = {k.lower(): v for k, v in record_headers(record, "c", "application/json").items()}
    assert correlation_ids(records_from_request(EVENT.to_bytes(), single)) == ["req-ad-1"]


def test_headers_that_are_no_request_id_name_no_ad():
    record = FakeKafkaRecord(EVENT.to_bytes(), _headers=[("x-request-id", b"not valid!")])
    assert correlation_ids(records_from_request(batch_body([record]), {})) == []


def test_a_batch_line_of_request_ids_stays_within_the_watchdogs_64_kib_line():
    """of-watchdog stops reading a function's output at a line over 64 KiB, and the function
    then blocks on its next write: however long the ids, the batch line's list stays short."""
    records = [
        FakeKafkaRecord(
            EVENT.to_bytes(), _offset=i, _headers=[("x-request-id", f"{i:0128d}".encode())]
        )
        for i in range(2_000)
    ]
    ids = correlation_ids(records_from_request(batch_body(records), {}))
    assert 0 < len(ids) < 2_000
    assert len(json.dumps({"requestIds": ids})) < 48 * 1024
    assert ids == [f"{i:0128d}" for i in range(len(ids))]  # the first ones, in order


def test_the_click_token_carries_the_ad_request_id_and_old_tokens_still_verify():
    expires = int(NOW) + 60
    claims = ClickClaims(IMPRESSION, AD, CAMPAIGN, "u", "p", expires, request_id="req-ad-1")
    assert verify(KEY, sign(KEY, claims), now=NOW).request_id == "req-ad-1"
    old = ClickClaims(IMPRESSION, AD, CAMPAIGN, "u", "p", expires)
    assert verify(KEY, sign(KEY, old), now=NOW).request_id is None
    with pytest.raises(ValueError):
        sign(KEY, ClickClaims(IMPRESSION, AD, CAMPAIGN, "u", "p", expires, request_id="a b"))


def test_a_click_is_recorded_with_the_correlation_of_the_ad_it_belongs_to():
    recorder = Recorder()
    tracker = ClickTracker(KEY, Directory({(CAMPAIGN, AD): LANDING}), recorder, clock=lambda: NOW)
    claims = ClickClaims(IMPRESSION, AD, CAMPAIGN, "u", "p", int(NOW) + 60, "req-ad-1")
    result = tracker.follow(sign(KEY, claims))
    assert result.counted
    assert recorder.correlations == [Correlation("req-ad-1")]


def test_every_request_is_logged_and_counted_by_function_route_and_status(capsys):
    router = Router()

    @router.route("GET", "/items/{item_id}")
    def item(request, item_id):
        request.annotate(adRequestId="req-ad-1")
        return json_response(200, {"id": item_id}, request)

    handle = router.handler(service="unit-fn")
    before = _count("unit-fn", "/items/{item_id}", "200")
    headers = {"X-Request-Id": "req-9", "traceparent": TRACE}
    handle(
        SimpleNamespace(method="GET", path="/items/7", body=b"", headers=headers, query={}), None
    )
    handle(SimpleNamespace(method="GET", path="/nope", body=b"", headers={}, query={}), None)
    assert _count("unit-fn", "/items/{item_id}", "200") == before + 1
    assert _count("unit-fn", "unmatched", "404") >= 1
    lines = [json.loads(text) for text in capsys.readouterr().out.splitlines()]  # the JSON lines
    line = next(x for x in lines if x.get("requestId") == "req-9")
    assert line["function"] == "unit-fn"
    assert line["route"] == "/items/{item_id}"
    assert line["traceparent"].split("-")[1] == TRACE.split("-")[1]  # same trace, our span
    assert line["adRequestId"] == "req-ad-1"
    assert line["status"] == 200


def _count(function: str, route: str, code: str) -> float:
    value = REGISTRY.get_sample_value(
        "function_route_requests_total",
        {"function": function, "route": route, "method": "GET", "code": code},
    )
    return value or 0.0
