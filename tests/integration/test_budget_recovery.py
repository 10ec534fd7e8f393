"""After Redis loses its data, nothing is charged until the ledger is rebuilt from PostgreSQL
once the event pipeline has drained; then the budgets hold exactly (never an overspend).

Real PostgreSQL (the platform's, with this module's own campaign rows), a redis-server of this
module (so that losing its data disturbs nobody), and real Kafka: the pipeline's progress is a
consumer group on a topic of this module, committed by hand as the connector would.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from shared_layer.bidding.service.budget_recovery import BudgetRecovery
from shared_layer.bidding.store.budget_ledger import (
    REBUILD_LOCK_KEY,
    LedgerNotReady,
    RedisBudgetLedger,
    ledger_ready_key,
)
from shared_layer.kernel.storage.outbox import outbox_stream
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.shards import SINGLE
from shared_layer.pipeline.store.progress import KafkaPipelineProgress

from .budget_ledger_support import FixedClock, RedisServer, ledger_client
from .campaign_support import campaign, new_id

BROKERS = os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092")
NOW = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
PRICE = 2_000  # CPM 2.00


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = ledger_client(redis_server.port)
    connection.flushall()
    yield connection
    connection.close()


class Pipeline:
    """A topic with a backlog and the consumer group that has (or has not) counted it."""

    def __init__(self) -> None:
        self.topic = f"recovery-{uuid.uuid4().hex[:8]}"
        self.group = f"recovery-group-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": BROKERS})
        for future in admin.create_topics([NewTopic(self.topic, 2, 1)]).values():
            future.result(timeout=15)
        producer = Producer({"bootstrap.servers": BROKERS})
        for n in range(6):
            producer.produce(self.topic, key=str(n).encode(), value=b"{}", partition=n % 2)
        assert producer.flush(15) == 0
        self.progress = KafkaPipelineProgress(BROKERS, self.group, topics=[self.topic])

    def count_everything(self) -> None:
        """Commit the end of every partition for the group, as the connector does when done."""
        consumer = Consumer({"bootstrap.servers": BROKERS, "group.id": self.group})
        try:
            offsets = [
                TopicPartition(self.topic, p, consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=10)[1])
                for p in (0, 1)
            ]  # fmt: skip
            consumer.commit(offsets=offsets, asynchronous=False)
        finally:
            consumer.close()


def stored_campaign(db: Database, *, lifetime_spent: Decimal, spent_today: Decimal):
    """A campaign row (CPM 2.00, daily 10.00, lifetime 20.00) with spend PostgreSQL counted."""
    made = campaign(new_id(), cpmBid=2, dailyBudget=10, lifetimeBudget=20)
    db.run(
        "INSERT INTO campaigns (id, name, advertiser_id, status, cpm_bid, daily_budget, "
        "lifetime_budget, lifetime_spent) VALUES (CAST(:id AS uuid), 'recovery', "
        "CAST(:adv AS uuid), 'active', 2, 10, 20, :lifetime)",
        id=made.id,
        adv=made.advertiser_id,
        lifetime=lifetime_spent,
    )
    db.run(
        "INSERT INTO daily_metrics (campaign_id, date, impressions, clicks, spend) "
        "VALUES (CAST(:id AS uuid), CAST(:day AS date), 1, 0, :spend)",
        id=made.id,
        day=NOW.date().isoformat(),
        spend=spent_today,
    )
    return made


def charges_until_refused(ledger: RedisBudgetLedger, target) -> int:
    count = 0
    while ledger.charge(target, PRICE).charged:
        count += 1
        assert count < 10_000
    return count


def test_nothing_is_charged_until_the_ledger_is_rebuilt_then_budgets_hold(client, db):
    target = stored_campaign(db, lifetime_spent=Decimal("15.000000"), spent_today=Decimal("9.9"))
    ledger = RedisBudgetLedger(client, FixedClock(NOW))
    pipeline = Pipeline()
    recovery = BudgetRecovery(client, db, pipeline.progress, clock=FixedClock(NOW), poll_s=0.1)

    # Redis came back empty: no ready key, so every charge is refused and nothing is written.
    assert not ledger.ready()
    with pytest.raises(LedgerNotReady):
        ledger.charge(target, PRICE, [b"topic", b"impressions", b"key", b"k", b"value", b"{}"])
    assert client.dbsize() == 0

    # Events are still in Kafka, not yet counted: no rebuild, still nothing charged.
    assert recovery.rebuild(timeout_s=1.0) is False
    assert not ledger.ready() and not client.exists(REBUILD_LOCK_KEY)
    with pytest.raises(LedgerNotReady):
        ledger.charge(target, PRICE)

    pipeline.count_everything()
    assert recovery.rebuild(timeout_s=30) is True
    assert ledger.ready()
    assert ledger.spent(target.id, NOW.date()) == (9_900_000, 15_000_000)
    # 10.00 a day with 9.90 spent: 0.10 left buys exactly 50 impressions at 0.002.
    assert charges_until_refused(ledger, target) == 50
    assert ledger.spent(target.id, NOW.date()) == (10_000_000, 15_100_000)


def test_the_rebuild_waits_for_the_outbox_to_be_relayed(client, db):
    stored_campaign(db, lifetime_spent=Decimal("1"), spent_today=Decimal("1"))
    pipeline = Pipeline()
    pipeline.count_everything()
    client.xadd(outbox_stream(SINGLE, 0), {"topic": "impressions", "key": "k", "value": "{}"})
    recovery = BudgetRecovery(client, db, pipeline.progress, clock=FixedClock(NOW), poll_s=0.1)
    assert recovery.rebuild(timeout_s=0.5) is False
    client.delete(outbox_stream(SINGLE, 0))  # relayed to Kafka and counted
    assert recovery.rebuild(timeout_s=5) is True


def test_one_replica_rebuilds_at_a_time(client, db):
    pipeline = Pipeline()
    pipeline.count_everything()
    client.set(REBUILD_LOCK_KEY, "another replica", ex=30)
    recovery = BudgetRecovery(client, db, pipeline.progress, clock=FixedClock(NOW))
    assert recovery.rebuild(timeout_s=1) is False
    assert not client.exists(ledger_ready_key(SINGLE, 0))
    client.delete(REBUILD_LOCK_KEY)  # that replica died and its lock expired
    assert recovery.rebuild(timeout_s=5) is True
    assert client.exists(ledger_ready_key(SINGLE, 0))


def test_a_campaign_in_another_time_zone_gets_the_spend_of_its_own_day_back(client, db):
    """New York's day of 3 March 2031 began at 05:00 UTC: the impressions of its day are summed
    from events_log, the one of the evening before is not (pacing resumes from this spend)."""
    target = campaign(new_id(), cpmBid=2, dailyBudget=10, timeZone="America/New_York")
    db.run(
        "INSERT INTO campaigns (id, name, advertiser_id, status, cpm_bid, daily_budget, "
        "lifetime_spent, time_zone, pacing) VALUES (CAST(:id AS uuid), 'recovery', "
        "CAST(:adv AS uuid), 'active', 2, 10, 4.5, 'America/New_York', 'even')",
        id=target.id,
        adv=target.advertiser_id,
    )
    db.run("SELECT events_log_create_partition(CAST('2031-03-03' AS date))")
    for hour in (4, 6, 11):  # 23:00 on 2 March, 01:00 and 06:00 on 3 March in New York
        moment = f"2031-03-03 {hour:02d}:00:00"
        db.run(
            "INSERT INTO events_log (event_id, event_type, campaign_id, ad_id, user_id, "
            "placement_id, timestamp, day, price) VALUES (CAST(:event AS uuid), 'impression', "
            "CAST(:campaign AS uuid), CAST(:ad AS uuid), 'u', 'p', CAST(:at AS timestamp), "
            "CAST(CAST(:at AS timestamp) AS date), 1.5)",
            event=new_id(),
            campaign=target.id,
            ad=new_id(),
            at=moment,
        )
    pipeline = Pipeline()
    pipeline.count_everything()
    recovery = BudgetRecovery(client, db, pipeline.progress, clock=FixedClock(NOW), poll_s=0.1)
    assert recovery.rebuild(timeout_s=30) is True
    ledger = RedisBudgetLedger(client, FixedClock(NOW))
    assert ledger.spent(target.id, NOW.date()) == (3_000_000, 4_500_000)
