"""The Redis side on a real Redis Cluster: 3 masters and 3 replicas (components/redis_cluster.py).

The same adapters as on one server, through redis-py's RedisCluster with 16 shards
(``redis+cluster://...?shards=16``): every script and transaction must stay in one hash slot,
or the cluster refuses it (CROSSSLOT). Proven here on the cluster:

- charges from 4 processes (and this one) never overspend, and every charge has its outbox entry;
- a relay per shard delivers every shard's outbox to Kafka and empties it;
- clicks count once; the campaign cache writes, reads and rebuilds; the ledger is rebuilt per
  shard from PostgreSQL;
- failover: one master is killed (SIGKILL) during charges; its replica takes over by the
  cluster's own failure detection; afterwards no acknowledged charge is missing, the ledger
  equals the outbox entry by entry, and no budget is overspent;
- the live counters after one master lost its data: only that master's shards are not ready,
  and the rebuild makes every campaign's counters PostgreSQL's again (reconcile: no difference).
  (test_live_counters.py and test_live_counters_recovery.py run whole on this cluster too.)

Outbox streams carry a prefix per test where a test counts them, so tests do not see each other.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from datetime import date as D
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from localplatform.components.redis_cluster import RedisClusterNode, cluster_ok
from localplatform.profile import PROFILES
from shared_layer.bidding.service.budget_recovery import BudgetRecovery
from shared_layer.bidding.store.budget_ledger import (
    RedisBudgetLedger,
    daily_spent_key,
    ledger_ready_key,
    lifetime_spent_key,
)
from shared_layer.campaigns.service.admin import CampaignWriteThrough
from shared_layer.campaigns.service.snapshot import CampaignSnapshot
from shared_layer.campaigns.store.cache import CampaignCache
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.clicks.store.click_ledger import RedisClickRecorder, seen_key
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.storage.outbox import outbox_fields, outbox_streams
from shared_layer.kernel.storage.redis_connection import connect, key_layout
from shared_layer.pipeline.domain.events import AdEvent, parse_event
from shared_layer.pipeline.service.live_counters_recovery import LiveCountersRecovery
from shared_layer.pipeline.store.daily_metrics import DailyMetrics
from shared_layer.pipeline.store.live_counters import CounterKeys, LiveCounters
from shared_layer.pipeline.store.relay import start_relay
from shared_layer.reporting.domain.analytics import DateRange, DayCounts, cache_key
from shared_layer.reporting.service.reconciliation import reconcile_day
from shared_layer.reporting.service.reports import CampaignReports
from tests.support import wait_for

from .budget_ledger_support import (
    FixedClock,
    LoadTally,
    charge_from_processes,
    charge_until_refused,
)
from .campaign_support import campaign, campaign_request, new_id
from .redis_layouts import live_numbers
from .test_budget_ledger import expected_impressions, few_impression_campaigns
from .test_budget_recovery import NOW, Pipeline, stored_campaign
from .test_campaign_snapshot import indexed, reloads
from .test_daily_metrics_handler import impression as daily_impression
from .test_outbox import consume_ids
from .test_reports import NOW as REPORT_NOW
from .test_reports import TODAY, Clock, make_campaign, set_live_counters

PROFILE = PROFILES["test"]
URL = PROFILE.redis_cluster_url(shards=16)
SHARDS = key_layout(URL)
NOON = datetime(2031, 7, 7, 12, 0, tzinfo=UTC)
BROKERS = os.environ.get("KAFKA_BROKERS", PROFILE.host_env()["KAFKA_BROKERS"])


def make_topic() -> str:
    name = f"cluster-outbox-test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": BROKERS})
    for future in admin.create_topics([NewTopic(name, 3, 1)]).values():
        future.result(timeout=15)
    return name


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A cluster client without retries (as the ledger has it), every shard's ledger ready."""
    assert wait_for(cluster_ok, timeout_s=30), "the test platform's Redis Cluster is not up"
    client = connect(URL, timeout_s=5, connect_timeout_s=1, retries=0)
    assert len(client.get_primaries()) == 3 and len(client.get_replicas()) == 3
    ready_everywhere(client)
    yield client
    client.close()


def ready_everywhere(client: Any, prefix: str | None = None) -> None:
    for shard in SHARDS.all():
        key = (
            ledger_ready_key(SHARDS, shard)
            if prefix is None
            else ledger_ready_key(SHARDS, shard, prefix)
        )
        client.set(key, "test")


def prefixes() -> tuple[str, str]:
    run = uuid.uuid4().hex[:8]
    return f"test::outbox::{run}", f"test::ready::{run}"


def outbox_events(client: Any, prefix: str) -> list[AdEvent]:
    return [
        parse_event(fields[b"value"])
        for stream in outbox_streams(SHARDS, prefix)
        for _, fields in client.xrange(stream)
    ]


def unique(campaigns: list[Campaign]) -> list[Campaign]:
    """The same budgets under ids no other test (or earlier run) used."""
    renamed = []
    for c in campaigns:
        new = f"{c.id}-{uuid.uuid4().hex[:8]}"
        ads = tuple(ad.model_copy(update={"campaign_id": new}) for ad in c.ads)
        renamed.append(c.model_copy(update={"id": new, "ads": ads}))
    return renamed


def test_charges_from_four_processes_never_overspend_on_the_cluster(cluster: Any) -> None:
    campaigns = unique(few_impression_campaigns(40)[0])
    assert len({SHARDS.of(c.id) for c in campaigns}) > 8  # spread over the masters
    ledger = RedisBudgetLedger(cluster, FixedClock(NOON), shards=SHARDS)
    charged, ambiguous = charge_from_processes(URL, ledger, campaigns, NOON)
    assert not ambiguous
    for c in campaigns:
        price = c.cpm_micros // 1_000
        daily = int(cluster.get(daily_spent_key(c.id, NOON.date(), SHARDS)) or 0)
        assert daily <= c.daily_budget_micros, c.id
        assert charged[c.id] * price == daily == int(cluster.get(lifetime_spent_key(c.id, SHARDS)))
        assert charged[c.id] == expected_impressions(c, 0), c.id  # nothing left unsold


def every_shard_twice() -> list[Campaign]:
    campaigns: list[Campaign] = []
    while (
        min(Counter(SHARDS.of(c.id) for c in campaigns).values() or [0]) < 2
        or len({SHARDS.of(c.id) for c in campaigns}) < SHARDS.count
    ):
        campaigns.append(campaign(new_id()))
    return campaigns


def test_a_relay_per_shard_delivers_every_shard_and_empties_it(cluster: Any) -> None:
    outbox, ready = prefixes()
    ready_everywhere(cluster, ready)
    topic = make_topic()
    ledger = RedisBudgetLedger(
        cluster, FixedClock(NOON), shards=SHARDS, outbox_prefix=outbox, ready_prefix=ready
    )
    campaigns = every_shard_twice()
    for c in campaigns:
        for _ in range(3):
            assert WithEvents(ledger, topic).charge(c, c.cpm_micros // 1_000).charged
    recorded = {e.event_id for e in outbox_events(cluster, outbox)}
    assert len(recorded) == 3 * len(campaigns)
    relays = start_relay(URL, BROKERS, outbox_prefix=outbox)
    try:
        assert len(relays.relays) == SHARDS.count  # one per shard's stream
        emptied = wait_for(
            lambda: all(cluster.xlen(s) == 0 for s in outbox_streams(SHARDS, outbox)), 60
        )
        assert emptied, "the relays did not empty every shard's outbox"
    finally:
        relays.stop()
    assert sorted(consume_ids(topic, len(recorded))) == sorted(recorded)


def test_a_click_counts_once_in_its_campaigns_shard(cluster: Any) -> None:
    outbox, _ = prefixes()
    recorder = RedisClickRecorder(cluster, shards=SHARDS, outbox_prefix=outbox)
    made = campaign(new_id())
    click = AdEvent.click(
        impression_id=str(uuid.uuid4()),
        campaign_id=made.id,
        ad_id=made.ads[0].id,
        user_id="u",
        placement_id="p",
    )
    assert [recorder.record(click, ttl_s=60) for _ in range(3)] == [True, False, False]
    assert cluster.exists(seen_key(click.impression_id, made.id, SHARDS)) == 1
    assert [e.event_id for e in outbox_events(cluster, outbox)] == [click.event_id]


def test_the_campaign_cache_writes_reads_and_rebuilds_on_the_cluster(cluster: Any, db) -> None:
    store = CampaignStore(db)
    made = [store.create(campaign(new_id())).campaign for _ in range(3)]
    cache = CampaignCache(cluster)
    version = cache.publish(made)
    assert cache.version() == version
    assert all(cache.read([c.id])[c.id] == c for c in made)
    changed_version, _, states = cache.read_changes([c.id for c in made])
    assert changed_version == version and all(entry is not None for _, entry in states)
    active, rebuilt_at = cache.rebuild(store)
    assert {c.id for c in made} <= {c.id for c in active}
    assert {c.id for c in made} <= (cache.active_ids() or set())
    assert rebuilt_at == cache.version()


def test_the_ledger_is_rebuilt_shard_by_shard_on_the_cluster(cluster: Any, db) -> None:
    outbox, ready = prefixes()
    stored = [
        stored_campaign(db, lifetime_spent=Decimal("15"), spent_today=Decimal("9.9"))
        for _ in range(6)
    ]
    pipeline = Pipeline()
    pipeline.count_everything()
    options = {"shards": SHARDS, "outbox_prefix": outbox, "ready_prefix": ready}
    recovery = BudgetRecovery(cluster, db, pipeline.progress, clock=FixedClock(NOW), **options)
    ledger = RedisBudgetLedger(cluster, FixedClock(NOW), **options)
    assert not ledger.ready()
    assert recovery.rebuild(timeout_s=30) is True
    assert ledger.ready()
    for c in stored:
        assert ledger.spent(c.id, NOW.date()) == (9_900_000, 15_000_000)


def master_of(client: Any, campaign_id: str) -> RedisClusterNode:
    node = client.get_node_from_key(daily_spent_key(campaign_id, NOON.date(), SHARDS))
    return RedisClusterNode(PROFILE, PROFILE.ports.redis_cluster.index(int(node.port)))


def test_a_master_killed_during_charges_loses_no_charge_and_never_overspends(
    cluster: Any,
) -> None:
    outbox, ready = prefixes()
    ready_everywhere(cluster, ready)
    client = connect(URL, timeout_s=0.5, connect_timeout_s=0.5, retries=0)
    ledger = RedisBudgetLedger(
        client, FixedClock(NOON), shards=SHARDS, outbox_prefix=outbox, ready_prefix=ready
    )
    # Budgets for 150-300 impressions each: the load outlasts the failover.
    campaigns = [
        campaign(new_id(), cpmBid=1, dailyBudget=Decimal("0.150") + Decimal(n % 4) / 20)
        for n in range(24)
    ]
    victim = master_of(cluster, campaigns[0].id)
    assert victim.pid() is not None
    on_victim = [c for c in campaigns if master_of(cluster, c.id).port == victim.port]
    tally = LoadTally()
    give_up_at = time.monotonic() + 120
    try:
        with ThreadPoolExecutor(8) as pool:
            runs = [
                pool.submit(
                    charge_until_refused, WithEvents(ledger), campaigns, tally, n, None, give_up_at
                )
                for n in range(8)
            ]
            assert wait_for(lambda: sum(tally.snapshot()[0].values()) > 400, timeout_s=30)
            os.kill(victim.pid() or 0, signal.SIGKILL)
            promoted = wait_for(lambda: _served_elsewhere(campaigns[0].id, victim.port), 30, 0.2)
            assert promoted, "no replica took over the killed master's slots within 30 s"
            for run in runs:
                run.result()
    finally:
        _restart(victim)
    charged, ambiguous = tally.snapshot()
    assert sum(ambiguous[c.id] for c in on_victim) > 0  # the kill did land during charges
    events = Counter(e.campaign_id for e in outbox_events(client, outbox))
    for c in campaigns:
        price = c.cpm_micros // 1_000
        daily = int(client.get(daily_spent_key(c.id, NOON.date(), SHARDS)) or 0)
        assert daily <= c.daily_budget_micros, c.id  # never overspent
        assert daily == events[c.id] * price, c.id  # every charge has its event, and only those
        # No acknowledged charge lost; a charge whose reply was lost may or may not be there.
        assert charged[c.id] <= events[c.id] <= charged[c.id] + ambiguous[c.id], c.id
        assert daily == c.daily_budget_micros // price * price, c.id  # sold out, not stuck
    client.close()


class WithEvents:
    """The ledger as bid uses it: each charge records its impression in the outbox."""

    def __init__(self, ledger: RedisBudgetLedger, topic: str | None = None) -> None:
        self._ledger = ledger
        self._topic = topic  # instead of impressions: a topic of the test's own

    def charge(self, c: Campaign, price: int) -> Any:
        event = AdEvent.impression(
            impression_id=str(uuid.uuid4()),
            campaign_id=c.id,
            ad_id=c.ads[0].id,
            user_id="u",
            placement_id="p",
            bid_cpm_micros=c.cpm_micros,
            price_micros=price,
        )
        fields = outbox_fields(event)
        if self._topic is not None:
            fields[1] = self._topic.encode()
        return self._ledger.charge(c, price, fields)


def _served_elsewhere(campaign_id: str, dead_port: int) -> bool:
    try:
        probe = connect(URL, timeout_s=0.5, connect_timeout_s=0.5, retries=0)
        try:
            node = probe.get_node_from_key(daily_spent_key(campaign_id, NOON.date(), SHARDS))
            return int(node.port) != dead_port and bool(probe.ping(target_nodes=node))
        finally:
            probe.close()
    except Exception:
        return False


def _restart(node: RedisClusterNode) -> None:
    """Start the killed node again: it rejoins as a replica, and the cluster is whole again."""
    node.start()
    node.wait_healthy()
    assert wait_for(lambda: cluster_ok(node.port), timeout_s=30)


def test_a_report_reads_cached_days_and_live_counters_across_slots(cluster: Any, db) -> None:
    store = CampaignStore(db)
    campaign_id = make_campaign(store, db, {D(2025, 3, 1): (1000, 25, "2.500000")})
    names = CounterKeys.for_url(URL)
    set_live_counters(cluster, campaign_id, TODAY, DayCounts(40, 1, 100_000), names)
    reports = CampaignReports(
        cluster,
        db,
        clock=Clock(REPORT_NOW),
        cache_ttl_s=3600,
        cache_grace_s=600,
        shards=SHARDS,
        counter_keys=names,
    )
    days = DateRange(D(2025, 3, 1), TODAY)
    for _ in range(2):  # from PostgreSQL and cached, then from the cache
        data = reports.read(campaign_id, days)
        assert data.counts[D(2025, 3, 1)] == DayCounts(1000, 25, 2_500_000)
        assert data.counts[TODAY] == DayCounts(40, 1, 100_000) and data.missing == ()
    assert cluster.exists(cache_key(campaign_id, D(2025, 3, 1)))


def test_a_bid_replicas_snapshot_follows_changes_by_notification_on_the_cluster(
    cluster: Any, db
) -> None:
    store = CampaignStore(db)
    admin = CampaignWriteThrough(store, CampaignCache(cluster))
    snapshot = CampaignSnapshot(cluster, store, poll_interval_s=1.0)
    try:
        snapshot.load()
        snapshot.start()
        incremental = reloads("change")
        made = admin.create(campaign_request(new_id())).campaign
        assert wait_for(lambda: made.id in indexed(snapshot), timeout_s=10)
        admin.set_status(made.id, "paused")
        assert wait_for(lambda: made.id not in indexed(snapshot), timeout_s=10)
        assert reloads("change") >= incremental + 2  # applied by id, as notified
    finally:
        snapshot.stop()


def test_a_master_that_lost_its_data_has_only_its_shards_live_counters_rebuilt(
    cluster: Any, db
) -> None:
    names = CounterKeys.for_url(URL)
    counters = LiveCounters(cluster, keep_days=3, keys=names)
    metrics = DailyMetrics(db, retention_days=30)
    today = datetime.now(UTC).date()
    for shard in names.all():
        cluster.set(names.ready(shard), "test")
    made = [campaign_request(new_id()).to_campaign(status="paused") for _ in range(12)]
    campaigns = [CampaignStore(db).create(c).campaign for c in made]
    before = [daily_impression(c, 100 + n) for n, c in enumerate(campaigns)]
    metrics.count(before, today=today)
    topic = f"cluster-live-test-{uuid.uuid4().hex[:8]}"
    counters.count(topic, 0, list(enumerate(before)), last_offset=len(before) - 1)

    # The master of the first campaign's shard comes back empty (its replica follows it).
    victim = cluster.get_node_from_key(names.ready(names.shard_of(campaigns[0].id)))
    cluster.flushdb(target_nodes=victim)
    try:
        on_victim = {
            k for k in names.all() if cluster.get_node_from_key(names.ready(k)).name == victim.name
        }
        assert set(counters.lost_shards()) == on_victim and 0 < len(on_victim) < names.shards.count
        after = [daily_impression(c, 7) for c in campaigns]  # counted live during the loss
        applied = counters.count(topic, 0, list(enumerate(after, 100)), last_offset=111)
        assert not applied.ready and applied.counted == len(after)
        metrics.count(after, today=today)

        assert LiveCountersRecovery(db, counters).rebuild()
        assert counters.lost_shards() == []
        for c, first in zip(campaigns, before, strict=True):
            assert live_numbers(cluster, c.id, today) == (2, 0, first.price_micros + 7), c.id
        report = reconcile_day(
            cluster,
            db,
            today,
            today=today,
            only=[c.id for c in campaigns],
            shards=SHARDS,
            counter_keys=names,
        )
        assert report.differences == [] and len(report.campaigns) == len(campaigns)
    finally:
        ready_everywhere(cluster)  # the ledger's ready keys of the flushed shards, for the rest
