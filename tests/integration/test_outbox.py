"""The event outbox against the real Redis and Kafka: a charge and its impression are one step,
and every recorded event reaches Kafka, also when a relay dies or Kafka cannot be reached.

Each test uses its own outbox stream and Kafka topic, so the platform's relays (in the bid and
click replicas) and the aggregation functions never see these events.

Proven: a successful charge appends exactly one event to the outbox in the same script, a
refused one appends nothing; the relay delivers every entry to Kafka and then empties the
stream; entries read by a relay that died before Kafka confirmed them are taken over by another
relay and delivered; while Kafka is unreachable nothing is acknowledged or lost, and once it
answers every entry is delivered; after a fatal producer error the relay starts a new producer
and delivers what the old one held.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from shared_layer.bidding.store.budget_ledger import RedisBudgetLedger, ledger_ready_key
from shared_layer.kernel.models import Ad, Campaign
from shared_layer.kernel.storage.outbox import OUTBOX_GROUP, outbox_fields, outbox_stream
from shared_layer.kernel.storage.shards import SINGLE
from shared_layer.pipeline.domain.events import AdEvent, parse_event
from shared_layer.pipeline.metrics import OUTBOX_PRODUCER_RESTARTS
from shared_layer.pipeline.store.relay import OutboxRelay, kafka_producer
from tests.support import CountingReads, event_for, free_port, wait_for

BROKERS = os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


@pytest.fixture
def stream(client: redis.Redis) -> Iterator[str]:
    name = f"test::outbox::{uuid.uuid4().hex[:8]}"
    yield name
    client.delete(name)


@pytest.fixture
def topic() -> str:
    name = f"outbox-test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": BROKERS})
    for future in admin.create_topics([NewTopic(name, 3, 1)]).values():
        future.result(timeout=15)
    return name


def record(client: redis.Redis, stream: str, fields: list[bytes]) -> None:
    client.xadd(stream, dict(zip(fields[::2], fields[1::2], strict=True)))


def record_events(client: redis.Redis, stream: str, topic: str, count: int) -> list[str]:
    """Append `count` events for `topic` to the outbox `stream`; returns their event ids."""
    ids = []
    for n in range(count):
        event_id, fields = event_for(topic, n)
        record(client, stream, fields)
        ids.append(event_id)
    return ids


def consume_ids(topic: str, expected: int, timeout_s: float = 30.0) -> list[str]:
    """Event ids on `topic`, read from the beginning until `expected` arrived or time is up."""
    consumer = Consumer(
        {
            "bootstrap.servers": BROKERS,
            "group.id": f"outbox-test-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    ids: list[str] = []
    deadline = datetime.now(UTC).timestamp() + timeout_s
    try:
        while len(ids) < expected and datetime.now(UTC).timestamp() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            ids.append(parse_event(message.value()).event_id)
        # A little longer, to see duplicates that would arrive after the expected count.
        end = datetime.now(UTC).timestamp() + 1.0
        while datetime.now(UTC).timestamp() < end:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                ids.append(parse_event(message.value()).event_id)
    finally:
        consumer.close()
    return ids


def relay(
    client: redis.Redis, stream: str, brokers: str = BROKERS, producer_config=None, **options
) -> OutboxRelay:
    config = producer_config or {}
    return OutboxRelay(client, lambda: kafka_producer(brokers, **config), stream=stream, **options)


def campaign(daily_budget_micros: int) -> Campaign:
    campaign_id = str(uuid.uuid4())
    return Campaign(
        id=campaign_id,
        advertiser_id=str(uuid.uuid4()),
        name="outbox",
        status="active",
        cpm_micros=2_500_000,
        daily_budget_micros=daily_budget_micros,
        ads=(
            Ad(
                id=str(uuid.uuid4()),
                campaign_id=campaign_id,
                title="t",
                image_url="https://cdn.example.com/a.png",
                redirect_url="https://example.com/",
            ),
        ),
    )


def test_a_charge_and_its_impression_are_recorded_in_one_step(client):
    """Budget 2 impressions, 3 charges: 2 succeed with exactly 2 outbox events, 1 records none."""
    outbox, ready_prefix = (f"test::{name}::{uuid.uuid4().hex[:8]}" for name in ("outbox", "ready"))
    stream, ready = outbox_stream(SINGLE, 0, outbox), ledger_ready_key(SINGLE, 0, ready_prefix)
    client.set(ready, "1")
    ledger = RedisBudgetLedger(
        client,
        clock=lambda: datetime(2031, 5, 5, tzinfo=UTC),
        outbox_prefix=outbox,
        ready_prefix=ready_prefix,
    )
    target = campaign(daily_budget_micros=5_000)
    events = []
    try:
        for n in range(3):
            event = AdEvent.impression(
                impression_id=str(uuid.uuid4()),
                campaign_id=target.id,
                ad_id=target.ads[0].id,
                user_id=f"u-{n}",
                placement_id="p",
                bid_cpm_micros=target.cpm_micros,
                price_micros=2_500,
            )
            result = ledger.charge(target, 2_500, outbox_fields(event))
            if result.charged:
                events.append(event)
        entries = client.xrange(stream)
        assert len(events) == 2
        assert [parse_event(fields[b"value"]) for _, fields in entries] == events
        assert {fields[b"topic"] for _, fields in entries} == {b"impressions"}
        assert {fields[b"key"] for _, fields in entries} == {target.id.encode()}
        assert ledger.spent(target.id, datetime(2031, 5, 5, tzinfo=UTC).date()) == (5_000, 5_000)
    finally:
        client.delete(stream, ready)


def test_the_relay_delivers_every_entry_then_empties_the_stream(client, stream, topic):
    expected = record_events(client, stream, topic, 300)
    worker = relay(client, stream)
    assert worker.drain(timeout_s=30)
    assert sorted(consume_ids(topic, len(expected))) == sorted(expected)
    assert client.xlen(stream) == 0
    assert client.xpending(stream, OUTBOX_GROUP)["pending"] == 0


def test_entries_of_a_relay_that_died_are_taken_over_and_delivered(client, stream, topic):
    expected = record_events(client, stream, topic, 50)
    # A relay reads them and dies before Kafka confirmed anything: they stay pending under it.
    client.xgroup_create(stream, OUTBOX_GROUP, id="0", mkstream=True)
    client.xreadgroup(OUTBOX_GROUP, "dead-replica", {stream: ">"}, count=100)
    assert client.xpending(stream, OUTBOX_GROUP)["pending"] == 50

    survivor = relay(client, stream, claim_idle_s=0.5, claim_every_s=0.1)
    assert survivor.run_once() == 0  # not idle long enough yet: still the dead relay's
    assert wait_for(lambda: survivor.run_once() or client.xlen(stream) == 0, timeout_s=10)
    assert survivor.drain(timeout_s=30)
    assert sorted(consume_ids(topic, len(expected))) == sorted(expected)
    assert client.xlen(stream) == 0


def test_nothing_is_lost_while_kafka_cannot_be_reached(client, stream, topic):
    expected = record_events(client, stream, topic, 40)
    # Nothing listens on this port: every delivery times out.
    unreachable = relay(
        client,
        stream,
        brokers=f"127.0.0.1:{free_port()}",
        producer_config={"message.timeout.ms": 500},
        claim_idle_s=60,
    )
    for _ in range(30):
        unreachable.run_once()
    assert not unreachable.drain(timeout_s=2)  # still waiting for Kafka
    unreachable.stop(timeout_s=0)  # its replica goes away
    unreachable.stop(timeout_s=0)  # and atexit stops it again: harmless
    assert client.xlen(stream) == 40  # nothing acknowledged, nothing dropped
    # Kafka is back (another relay, which reaches it, takes the entries over once they idle).
    healthy = relay(client, stream, claim_idle_s=0.3, claim_every_s=0.1)
    assert wait_for(lambda: (healthy.run_once(), client.xlen(stream) == 0)[1], timeout_s=30)
    assert sorted(consume_ids(topic, len(expected))) == sorted(expected)


class FailsFatally(Producer):
    """A real producer that, once `failing` is set, refuses every message with the fatal error
    librdkafka's idempotent producer raises when it can no longer guarantee order."""

    failing = False

    def produce(self, *args, **kwargs):
        if self.failing:
            raise KafkaException(KafkaError(KafkaError._FATAL, "injected", fatal=True))
        return super().produce(*args, **kwargs)


def test_a_producer_that_delivers_nothing_while_its_messages_time_out_is_replaced(
    client, stream, topic
):
    """After a broker restart librdkafka can stay stuck: messages time out for minutes with the
    broker back. The relay then replaces the producer, as after a fatal error."""
    expected = record_events(client, stream, topic, 12)
    stuck = Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{free_port()}",  # nothing answers there
            "enable.idempotence": True,
            "message.timeout.ms": 300,
        }
    )
    producers = iter([stuck, kafka_producer(BROKERS)])
    worker = OutboxRelay(
        client, lambda: next(producers), stream=stream, retry_after_s=0.1, stuck_after_s=1.0
    )
    restarts_before = OUTBOX_PRODUCER_RESTARTS._value.get()

    def replaced() -> bool:
        worker.run_once()
        return OUTBOX_PRODUCER_RESTARTS._value.get() == restarts_before + 1

    assert wait_for(replaced, timeout_s=15, interval_s=0.05)
    assert worker.drain(timeout_s=30)
    assert client.xlen(stream) == 0
    assert sorted(consume_ids(topic, len(expected))) == sorted(expected)


def test_after_a_fatal_producer_error_a_new_producer_delivers_every_entry(client, stream, topic):
    expected = record_events(client, stream, topic, 30)
    # The first producer never reaches Kafka (its messages stay in flight), then turns fatal.
    doomed = FailsFatally(
        {
            "bootstrap.servers": f"127.0.0.1:{free_port()}",
            "enable.idempotence": True,
            "message.timeout.ms": 300_000,
        }
    )
    producers = iter([doomed, kafka_producer(BROKERS)])
    worker = OutboxRelay(client, lambda: next(producers), stream=stream, batch_size=20)
    restarts_before = OUTBOX_PRODUCER_RESTARTS._value.get()
    worker.run_once()  # 20 entries in flight in the producer that cannot deliver them
    doomed.failing = True
    worker.run_once()  # the other 10 meet the fatal error: the relay replaces its producer
    assert OUTBOX_PRODUCER_RESTARTS._value.get() == restarts_before + 1
    assert worker.drain(timeout_s=30)
    assert client.xlen(stream) == 0
    assert sorted(consume_ids(topic, len(expected))) == sorted(expected)


def test_a_busy_relay_reads_many_events_per_pass(client, stream, topic):
    """Events recorded every 5 ms are read together, at most one pass per 50 ms, rather than
    one Redis round trip per event; all of them still reach Kafka, and the stream empties."""
    counting = CountingReads(client)
    worker = relay(counting, stream)
    worker.start()
    try:
        started = time.monotonic()
        expected = []
        for n in range(200):
            event_id, fields = event_for(topic, n)
            record(client, stream, fields)
            expected.append(event_id)
            time.sleep(0.005)
        assert wait_for(lambda: client.xlen(stream) == 0, timeout_s=30, interval_s=0.05)
        elapsed = time.monotonic() - started
    finally:
        worker.stop()
    passes_allowed = elapsed / 0.05 + 5  # one per read_every_s, and a few at start and end
    assert counting.reads <= passes_allowed, (counting.reads, elapsed)
    assert counting.reads < len(expected) / 2
    assert sorted(consume_ids(topic, len(expected))) == sorted(expected)
