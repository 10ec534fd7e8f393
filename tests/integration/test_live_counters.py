"""The live counters against the test platform's real Redis: exact, and safe under redelivery.

Proven: a batch adds its impressions, clicks and spend (micros) to the specification's stats keys,
which expire a few days after their day, and moves the partition's watermark; the same batch again,
or one that overlaps it, adds only what is new; batches of several partitions for one campaign
at once, and the same batch delivered by two callers at once, add up exactly; spend beyond
Lua's exact integers is still exact; records set aside still move the watermark. The function
in process: connector batches and single records, 400 without Kafka places, 503 without Redis.

Every test runs twice: on one Redis server, and on the test platform's 3-master Redis Cluster
(16 shards: a batch is one script per shard, each in one hash slot, with its own watermark).
Everything here uses Redis database LIVE_COUNTERS_TEST_DB (one server) and topic and campaign
names of its own, so the deployed functions' counters and watermarks are never touched.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from types import ModuleType

import pytest
import redis

from localplatform.profile import PROFILES
from shared_layer.composition.counting import LiveCountersSettings
from shared_layer.kernel.http import Handler
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.service.live_counters_recovery import LiveCountersRecovery
from shared_layer.pipeline.store.live_counters import LiveCounters
from tests.support import FakeKafkaRecord, free_port
from tests.support import click_on as click

from .campaign_support import database
from .redis_layouts import LAYOUTS, keys_of, layout_client, live_numbers, watermark
from .test_daily_metrics_handler import load_function, platform_settings, post

LIVE_COUNTERS_TEST_DB = 8
PROFILE = PROFILES[os.environ.get("ADS_PROFILE", "test")]


@pytest.fixture(scope="module", params=LAYOUTS)
def client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    connection = layout_client(request.param, LIVE_COUNTERS_TEST_DB)
    yield connection
    connection.close()


@pytest.fixture
def counters(client: redis.Redis) -> LiveCounters:
    return LiveCounters(client, keep_days=3, keys=keys_of(client))


@pytest.fixture
def topic() -> str:
    return f"it-live-{uuid.uuid4().hex[:10]}"


def now() -> datetime:
    return datetime.now(UTC)


def impression(campaign: str, price: int, at: datetime | None = None) -> AdEvent:
    return AdEvent.impression(
        impression_id=str(uuid.uuid4()),
        campaign_id=campaign,
        ad_id=str(uuid.uuid4()),
        user_id="user-1",
        placement_id="placement-001",
        bid_cpm_micros=price * 1_000,
        price_micros=price,
        at=at,
    )


def numbers(client: redis.Redis, campaign: str, day: date | None = None) -> tuple[int, int, int]:
    return live_numbers(client, campaign, day or now().date())


def with_offsets(events: list[AdEvent], first: int = 0) -> list[tuple[int, AdEvent]]:
    return [(first + i, e) for i, e in enumerate(events)]


def test_a_batch_is_counted_into_the_seed_keys_and_moves_the_watermark(client, counters, topic):
    campaign = str(uuid.uuid4())
    events = [impression(campaign, p) for p in (2_500, 1, 999_999)]
    events += [click(events[0]), click(events[1])]
    applied = counters.count(topic, 3, with_offsets(events, 100), last_offset=104)
    assert (applied.counted, applied.already_counted, applied.watermark_before) == (5, 0, -1)
    assert numbers(client, campaign) == (3, 2, 2_500 + 1 + 999_999)
    assert watermark(client, topic, 3, campaign) == 104
    expires = datetime.combine(now().date() + timedelta(days=3), datetime.min.time(), UTC)
    names = keys_of(client)
    for kind in ("impressions", "clicks", "spend"):
        assert client.expiretime(names.stats(kind, campaign, now().date())) == int(
            expires.timestamp()
        )
    offset = names.offset(topic, 3, names.shard_of(campaign))
    assert client.ttl(offset) == -1  # watermarks never expire


def test_a_batch_delivered_again_whole_or_in_part_adds_only_what_is_new(client, counters, topic):
    campaign = str(uuid.uuid4())
    first = with_offsets([impression(campaign, 1_000) for _ in range(10)], 0)
    counters.count(topic, 0, first, last_offset=9)
    again = counters.count(topic, 0, first, last_offset=9)
    assert (again.counted, again.already_counted, again.watermark_before) == (0, 10, 9)
    assert numbers(client, campaign) == (10, 0, 10_000)

    overlap = first[6:] + with_offsets([impression(campaign, 7) for _ in range(5)], 10)
    applied = counters.count(topic, 0, overlap, last_offset=14)
    assert (applied.counted, applied.already_counted) == (5, 4)
    assert numbers(client, campaign) == (15, 0, 10_035)
    assert watermark(client, topic, 0, campaign) == 14


def test_partitions_at_once_and_one_batch_from_two_callers_add_up_exactly(client, topic):
    campaign = str(uuid.uuid4())
    per_partition = {
        p: with_offsets([impression(campaign, 1_000 + p) for _ in range(200)]) for p in range(6)
    }
    errors: list[BaseException] = []

    def deliver(partition: int) -> None:
        try:
            counters = LiveCounters(client, keep_days=3, keys=keys_of(client))
            events = per_partition[partition]
            for start in range(0, len(events), 25):
                chunk = events[start : start + 25]
                counters.count(topic, partition, chunk, last_offset=chunk[-1][0])
        except BaseException as exc:
            errors.append(exc)

    # Every partition by two callers at once (a retry racing the original), six partitions.
    threads = [threading.Thread(target=deliver, args=(p,)) for p in range(6) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    spend = sum(200 * (1_000 + p) for p in range(6))
    assert numbers(client, campaign) == (1_200, 0, spend)


def test_spend_beyond_exact_lua_numbers_is_still_exact(client, counters, topic):
    campaign = str(uuid.uuid4())
    price = 10**15 - 1  # the largest amounts an event may carry, odd
    events = with_offsets([impression(campaign, price) for _ in range(25)])
    applied = counters.count(topic, 0, events, last_offset=24)
    assert applied.counted == 25
    assert numbers(client, campaign) == (25, 0, 25 * price)  # > 2**53, exact
    assert counters.count(topic, 0, events, last_offset=24).counted == 0
    assert numbers(client, campaign) == (25, 0, 25 * price)


def test_records_set_aside_still_move_the_watermark(client, counters, topic):
    campaign = str(uuid.uuid4())
    applied = counters.count(topic, 1, [], last_offset=77)
    assert (applied.counted, applied.already_counted) == (0, 0)
    late = with_offsets([impression(campaign, 5)], 70)
    if keys_of(client).shards is None:
        assert watermark(client, topic, 1, campaign) == 77
        assert counters.count(topic, 1, late, last_offset=70).already_counted == 1
    else:
        # On a cluster a watermark guards one shard's events: a batch with none of them leaves
        # it alone (nothing of that shard was counted to guard), and the seen ids still hold.
        assert watermark(client, topic, 1, campaign) is None
        assert counters.count(topic, 1, late, last_offset=70).counted == 1
        assert counters.count(topic, 1, late, last_offset=70).already_counted == 1
        assert watermark(client, topic, 1, campaign) == 70


def test_each_day_has_its_own_counters(client, counters, topic):
    campaign = str(uuid.uuid4())
    yesterday = now() - timedelta(days=1)
    events = with_offsets([impression(campaign, 10, at=yesterday), impression(campaign, 20)])
    counters.count(topic, 0, events, last_offset=1)
    assert numbers(client, campaign, yesterday.date()) == (1, 0, 10)
    assert numbers(client, campaign) == (1, 0, 20)


# The function in process


@pytest.fixture(scope="module")
def function() -> ModuleType:
    return load_function("live-counters")


@pytest.fixture(scope="module")
def handler(function: ModuleType, client: redis.Redis) -> Handler:
    """The function's handler over the counters of this layout's Redis."""
    keep_days = platform_settings(LiveCountersSettings).keep_days
    counters = LiveCounters(client, keep_days=keep_days, keys=keys_of(client))
    return function.serve_counters(counters, LiveCountersRecovery(database(), counters))


def test_the_function_counts_connector_batches_once(handler, client, topic):
    from kafka_connector.payloads import batch_body, batch_headers

    campaign = str(uuid.uuid4())
    events = [impression(campaign, 3) for _ in range(8)]
    old = impression(campaign, 3, at=now() - timedelta(days=10))  # PostgreSQL's business
    messages = [
        FakeKafkaRecord(e.to_bytes(), b"campaign", 40 + i, 2, topic) for i, e in enumerate(events)
    ]
    messages += [
        FakeKafkaRecord(b"garbage", b"campaign", 48, 2, topic),
        FakeKafkaRecord(old.to_bytes(), b"campaign", 49, 2, topic),
    ]
    body, headers = batch_body(messages), batch_headers(messages, "ads-kafka-connector")
    assert post(handler, body, headers) == (
        200,
        {"received": 10, "counted": 8, "alreadyCounted": 0, "rejected": 2},
    )
    assert post(handler, body, headers)[1]["alreadyCounted"] == 8
    assert numbers(client, campaign) == (8, 0, 24)
    # The batch's last record (garbage) moves the watermark of the shard it counted events in.
    assert watermark(client, topic, 2, campaign) == 49


def test_the_function_takes_one_record_per_call_with_its_kafka_place(handler, client, topic):
    from kafka_connector.payloads import record_headers

    campaign = str(uuid.uuid4())
    event = impression(campaign, 11)
    headers = record_headers(
        FakeKafkaRecord(event.to_bytes(), b"campaign", 5, 0, topic), "c", "application/json"
    )
    assert post(handler, event.to_bytes(), headers)[1]["counted"] == 1
    assert post(handler, event.to_bytes(), headers)[1]["alreadyCounted"] == 1
    assert numbers(client, campaign) == (1, 0, 11)
    status, answer = post(handler, event.to_bytes(), {"Content-Type": "application/json"})
    assert status == 400 and "X-Kafka" in answer["message"]
    assert numbers(client, campaign) == (1, 0, 11)


def test_redis_out_of_reach_is_a_503_so_the_connector_tries_again(function, topic):
    nowhere = LiveCounters(
        redis.Redis(port=free_port(), socket_connect_timeout=1, retry=None), keep_days=3
    )
    handle = function.serve_counters(nowhere, LiveCountersRecovery(database(), nowhere))
    event = impression(str(uuid.uuid4()), 1)
    from kafka_connector.payloads import record_headers

    headers = record_headers(
        FakeKafkaRecord(event.to_bytes(), b"campaign", 1, 0, topic), "c", "application/json"
    )
    started = time.monotonic()
    status, answer = post(handle, event.to_bytes(), headers)
    assert status == 503 and answer["error"] == "UPSTREAM_UNAVAILABLE"
    assert time.monotonic() - started < 10
    assert json.dumps(answer)  # the product's error body, nothing else
