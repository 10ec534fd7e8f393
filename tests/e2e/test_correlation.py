"""One served ad's correlation id, end to end through the gateway, the pipeline and the logs.

A publisher's request id (``X-Request-Id``) and W3C ``traceparent`` go to serve; the same id
must then be found in the JSON log lines of serve, bid, click, daily-metrics and live-counters
(read through the gateway's /system/logs, as `faas-cli logs` does), and on the impression's and
the click's Kafka records as headers. That is what lets an operator follow one ad from the
request that showed it to the numbers it became.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from confluent_kafka import Consumer, TopicPartition

from shared_layer.pipeline.domain.events import CLICKS_TOPIC, IMPRESSIONS_TOPIC
from tests.e2e.test_bid_support import GATEWAY
from tests.e2e.test_click_api import BROKERS, create_campaign, follow
from tests.support import wait_for

SERVE = f"{GATEWAY}/function/serve"
TRACE_ID = uuid.uuid4().hex
TRACEPARENT = f"00-{TRACE_ID}-{uuid.uuid4().hex[:16]}-01"
FUNCTIONS = ("serve", "bid", "click", "daily-metrics", "live-counters")


class TopicTail:
    """The records written to a topic after this object was made."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._consumer = Consumer(
            {"bootstrap.servers": BROKERS, "group.id": f"trace-{uuid.uuid4().hex[:8]}"}
        )
        partitions = self._consumer.list_topics(topic, timeout=15).topics[topic].partitions
        self._start = {p: self._high(p) for p in partitions}

    def _high(self, partition: int) -> int:
        return self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), 10)[1]

    def record_with(self, needle: str, timeout_s: float = 30.0):
        """The first new record whose value contains `needle`."""
        self._consumer.assign([TopicPartition(self.topic, p, o) for p, o in self._start.items()])
        found = []

        def scan() -> bool:
            for message in self._consumer.consume(500, timeout=0.5):
                if not message.error() and needle.encode() in (message.value() or b""):
                    found.append(message)
            return bool(found)

        assert wait_for(scan, timeout_s), f"no record with {needle} on {self.topic}"
        return found[0]

    def close(self) -> None:
        self._consumer.close()


def log_lines(platform, function: str) -> list[dict]:
    since = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"name": function, "since": since, "follow": "false"}
    r = platform.system("GET", "/system/logs", params=params)
    assert r.status_code == 200, r.text
    lines = []
    for row in r.text.splitlines():
        text = json.loads(row).get("text", "")
        if text.startswith("{"):
            lines.append(json.loads(text))
    return lines


def logged(platform, function: str, request_id: str) -> list[dict]:
    return [line for line in log_lines(platform, function) if request_id in json.dumps(line)]


@pytest.fixture(scope="module")
def topics():
    tails = {topic: TopicTail(topic) for topic in (IMPRESSIONS_TOPIC, CLICKS_TOPIC)}
    yield tails
    for tail in tails.values():
        tail.close()


def test_one_ads_request_id_follows_it_from_serve_to_the_aggregates_and_the_click(platform, topics):
    landing = f"https://advertiser.example/trace/{uuid.uuid4().hex[:8]}"
    _, placement = create_campaign(landing, "trace")
    request_id = f"trace-{uuid.uuid4().hex}"
    ad = serve_with(request_id, placement)
    assert follow(ad["clickTrackingUrl"]).status_code == 302

    impression = topics[IMPRESSIONS_TOPIC].record_with(ad["impressionId"])
    click = topics[CLICKS_TOPIC].record_with(ad["impressionId"])
    for record in (impression, click):
        headers = dict(record.headers() or [])
        assert headers.get("x-request-id") == request_id.encode(), headers
    assert dict(impression.headers())["traceparent"].decode().split("-")[1] == TRACE_ID

    for function in FUNCTIONS:  # the aggregates log once the connector delivered the batch
        assert wait_for(lambda f=function: logged(platform, f, request_id), 60), (
            f"{function} logged no line with the ad's request id {request_id}"
        )
    serve_line = logged(platform, "serve", request_id)[0]
    assert serve_line["requestId"] == request_id
    assert serve_line["traceId"] == TRACE_ID
    assert serve_line["route"] == "/" and serve_line["status"] == 200
    assert logged(platform, "bid", request_id)[0]["traceId"] == TRACE_ID
    assert logged(platform, "click", request_id)[0]["adRequestId"] == request_id


def serve_with(request_id: str, placement: str) -> dict:
    headers = {"X-Request-Id": request_id, "traceparent": TRACEPARENT}
    params = {"userId": f"tracer-{uuid.uuid4().hex[:6]}", "placementId": placement}
    r = requests.get(SERVE, params=params, headers=headers, timeout=10)
    assert r.status_code == 200, (r.status_code, r.headers, r.text)
    assert r.headers.get("X-Request-Id") == request_id
    return r.json()
