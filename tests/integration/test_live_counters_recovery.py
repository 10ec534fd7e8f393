"""Today's live numbers exact after a re-sent event and after Redis lost its data, on the test
platform's real Redis and PostgreSQL.

Proven: an event the outbox relay produced again at a new offset counts once; after a loss the
count script goes on counting and says the counters are not ready; the rebuild makes today's
counters PostgreSQL's plus what was counted live and PostgreSQL did not have, whatever the
interleaving of events logged, counted live and delivered again around it (threads racing the
rebuild); analytics serves today from PostgreSQL (`source` "postgres") until the rebuild and
from the live counters ("live") after it, with the same numbers; reconcile finds no difference.

Every test runs twice: on one Redis server, and on the test platform's 3-master Redis Cluster
(16 shards, each with its own ready key: the rebuild goes shard by shard). Redis database
RECOVERY_TEST_DB is this module's own on the one server (FLUSHDB there is the "loss"; on the
cluster, FLUSHDB on every master), with topics of its own; PostgreSQL rows belong to campaigns
made here.
"""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import redis

from shared_layer.kernel.models import Campaign
from shared_layer.kernel.storage.postgres import Database
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.service.live_counters_recovery import LiveCountersRecovery
from shared_layer.pipeline.store.daily_metrics import DailyMetrics
from shared_layer.pipeline.store.live_counters import LiveCounters
from shared_layer.reporting.domain.analytics import DateRange
from shared_layer.reporting.service.reconciliation import reconcile_day
from shared_layer.reporting.service.reports import CampaignReports

from .redis_layouts import (
    LAYOUTS,
    keys_of,
    layout_client,
    ledger_shards,
    live_numbers,
    mark_ready,
)
from .test_daily_metrics import click
from .test_daily_metrics_handler import impression, paused_campaign  # noqa: F401 (a fixture)

RECOVERY_TEST_DB = 10


@pytest.fixture(scope="module", params=LAYOUTS)
def client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    connection = layout_client(request.param, RECOVERY_TEST_DB, timeout_s=10)
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture
def lost(client: redis.Redis) -> redis.Redis:
    """This module's Redis database right after it lost its data."""
    client.flushdb()
    return client


@pytest.fixture
def counters(lost: redis.Redis) -> LiveCounters:
    return LiveCounters(lost, keep_days=3, dedupe_s=600, keys=keys_of(lost))


@pytest.fixture
def recovery(lost: redis.Redis, db: Database, counters: LiveCounters) -> LiveCountersRecovery:
    return LiveCountersRecovery(db, counters)


@pytest.fixture
def campaign(paused_campaign: Campaign) -> Campaign:  # noqa: F811 (the fixture)
    return paused_campaign


@pytest.fixture(scope="module")
def metrics(db: Database) -> DailyMetrics:
    return DailyMetrics(db, retention_days=30)


def today() -> date:
    return datetime.now(UTC).date()


class Partition:
    """One Kafka partition of a topic of this test: each delivery gets the next offset."""

    def __init__(self, counters: LiveCounters, number: int) -> None:
        self.topic = f"it-recovery-{uuid.uuid4().hex[:8]}"
        self.number = number
        self._counters = counters
        self._offsets = itertools.count()

    def deliver(self, *events: AdEvent):
        batch = [(next(self._offsets), e) for e in events]
        return self._counters.count(self.topic, self.number, batch, last_offset=batch[-1][0])


def live(client: redis.Redis, c: Campaign) -> tuple[int, int, int]:
    return live_numbers(client, c.id, today())


def in_postgres(db: Database, c: Campaign) -> tuple[int, int, int]:
    rows = db.run(
        "SELECT impressions, clicks, spend FROM daily_metrics WHERE campaign_id = "
        "CAST(:c AS uuid) AND date = CAST(:d AS date)",
        c=c.id,
        d=today().isoformat(),
    )
    if not rows:
        return (0, 0, 0)
    impressions, clicks, spend = rows[0]
    return (int(impressions), int(clicks), int(spend * 1_000_000))


def test_an_event_produced_again_at_a_new_offset_counts_once(lost, counters, campaign):
    mark_ready(lost)
    partition = Partition(counters, 0)
    first, other = impression(campaign, 1_250), impression(campaign, 10)
    assert partition.deliver(first).counted == 1
    again = partition.deliver(first, other)  # the relay died before XDEL: a new offset
    assert (again.counted, again.already_counted, again.resent) == (1, 1, 1)
    assert live(lost, campaign) == (2, 0, 1_260)
    names = keys_of(lost)
    seen = f"{names.seen_prefix(names.shard_of(campaign.id))}{first.event_id}"
    assert 0 < lost.ttl(seen) <= 600


def test_after_a_loss_counting_goes_on_and_the_rebuild_adds_what_postgres_had(
    lost, counters, recovery, metrics, db, campaign
):
    partition = Partition(counters, 0)
    logged_before = [impression(campaign, 100) for _ in range(3)]  # counted before the loss
    both = impression(campaign, 20)  # logged, and counted live after the loss
    live_only = impression(campaign, 3)  # counted live, not logged yet
    late = impression(campaign, 4_000)  # logged, delivered to live-counters after the rebuild
    metrics.count([*logged_before, both, late, click(both)], today=today())

    applied = partition.deliver(both, live_only)
    assert not applied.ready and applied.counted == 2
    assert recovery.rebuild()
    assert counters.ready() and counters.lost_shards() == []
    # PostgreSQL's 5 impressions and 1 click, plus the one PostgreSQL did not have yet.
    assert live(lost, campaign) == (6, 1, 300 + 20 + 4_000 + 3)
    assert partition.deliver(late, click(both)).counted == 0  # in the snapshot already
    metrics.count([live_only], today=today())
    assert live(lost, campaign) == in_postgres(db, campaign)


def test_the_rebuild_races_batches_counted_meanwhile_and_every_event_counts_once(
    lost, counters, recovery, metrics, db, campaign
):
    rng = random.Random(13)
    events = [impression(campaign, rng.randint(1, 5_000)) for _ in range(240)]
    events += [click(e) for e in rng.sample(events, 60)]
    rng.shuffle(events)
    shares = [events[n::4] for n in range(4)]
    rebuilt = threading.Event()

    def pipeline(share: list[AdEvent], number: int) -> None:
        """Both steps of the pipeline for each event, in either order, some delivered twice."""
        partition = Partition(counters, number)
        for n, event in enumerate(share):
            if n == len(share) // 3:
                rebuilt.wait(30)  # the rest of the share lands after or during the rebuild
            first_live = rng.random() < 0.5
            if first_live:
                partition.deliver(event)
            metrics.count([event], today=today())
            partition.deliver(event)  # a redelivery (new offset) or the first delivery
            if not first_live and rng.random() < 0.3:
                partition.deliver(event)

    threads = [threading.Thread(target=pipeline, args=(s, n)) for n, s in enumerate(shares)]
    for t in threads:
        t.start()
    try:
        while not recovery.rebuild():
            pass
    finally:
        rebuilt.set()
        for t in threads:
            t.join(60)
    impressions = [e for e in events if e.event_type == "impression"]
    expected = (len(impressions), 60, sum(e.price_micros for e in impressions))
    assert in_postgres(db, campaign) == expected
    assert live(lost, campaign) == expected
    report = reconcile_day(
        lost, db, today(), today=today(), shards=ledger_shards(lost), counter_keys=keys_of(lost)
    )
    mine = [d for d in report.differences if d.campaign_id == campaign.id]
    assert mine == []
    assert any(f.campaign_id == campaign.id for f in report.campaigns)


def test_analytics_reads_today_from_postgres_until_the_rebuild_then_live(
    lost, counters, recovery, metrics, db, campaign
):
    reports = CampaignReports(lost, db, shards=ledger_shards(lost), counter_keys=keys_of(lost))
    shown = [impression(campaign, 500) for _ in range(4)]
    metrics.count(shown, today=today())
    Partition(counters, 0).deliver(shown[0])  # counted after the loss: not ready
    date_range = DateRange(today(), today())

    before = reports.read(campaign.id, date_range)
    assert before.source == "postgres"
    assert before.counts[today()].impressions == 4  # not the 1 the counters hold
    assert recovery.rebuild()
    after = reports.read(campaign.id, date_range)
    assert after.source == "live"
    assert after.counts == before.counts
