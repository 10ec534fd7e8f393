"""The campaign cache and the bid replicas' snapshot against the test platform's Redis and PG.

Proves: writes go through to Redis (entry, active set, version, notification); a snapshot loads
from Redis, rebuilds a cold cache from PostgreSQL, sees a change within 1 s by notification and
also when the notification is lost (version poll), and never indexes a paused campaign.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis
from prometheus_client import REGISTRY

from shared_layer.campaigns.domain.requests import BulkRequest
from shared_layer.campaigns.service.admin import CampaignWriteThrough
from shared_layer.campaigns.service.snapshot import CampaignSnapshot
from shared_layer.campaigns.store.cache import (
    ACTIVE_SET_KEY,
    BUILT_KEY,
    CHANGES_CHANNEL,
    VERSION_KEY,
    CampaignCache,
    entry_key,
)
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.kernel.storage.postgres import Database

from .campaign_support import (
    campaign_fields,
    campaign_request,
    flushed_redis,
    new_id,
    wait_until,
)


@pytest.fixture(scope="module")
def store(db: Database) -> CampaignStore:
    return CampaignStore(db)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    yield from flushed_redis()


@pytest.fixture
def admin(store, client) -> CampaignWriteThrough:
    return CampaignWriteThrough(store, CampaignCache(client))


@pytest.fixture
def snapshot(store, client) -> Iterator[CampaignSnapshot]:
    made = CampaignSnapshot(client, store, poll_interval_s=0.25)
    yield made
    made.stop()


def reloads(reason: str) -> float:
    sample = REGISTRY.get_sample_value("campaign_snapshot_reloads_total", {"reason": reason})
    return sample or 0.0


def indexed(snapshot: CampaignSnapshot) -> set[str]:
    return {c.id for c in snapshot.index.campaigns}


def test_a_write_goes_through_to_the_entry_the_set_the_version_and_the_channel(admin, client):
    client.set(BUILT_KEY, "0")  # a warm cache
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANGES_CHANNEL)
    before = int(client.get(VERSION_KEY) or 0)
    record = admin.create(campaign_request(new_id()))
    cid = record.campaign.id
    assert json.loads(client.get(entry_key(cid)))["cpmMicros"] == 2_000_000
    assert 0 < client.ttl(entry_key(cid)) <= 300
    assert client.sismember(ACTIVE_SET_KEY, cid)
    assert int(client.get(VERSION_KEY)) == before + 1
    message = wait_until(lambda: pubsub.get_message(timeout=0.1), timeout_s=2) is not None
    assert message
    admin.set_status(cid, "paused")
    assert not client.sismember(ACTIVE_SET_KEY, cid)
    assert json.loads(client.get(entry_key(cid)))["status"] == "paused"
    admin.set_status(cid, "active")
    admin.delete(cid)
    assert not client.sismember(ACTIVE_SET_KEY, cid)
    assert json.loads(client.get(entry_key(cid)))["status"] == "ended"
    pubsub.close()


def test_a_writer_never_builds_a_partial_set_on_a_cold_cache(admin, client):
    admin.create(campaign_request(new_id()))
    assert not client.exists(ACTIVE_SET_KEY)  # marker missing: the set is left to a rebuild
    assert int(client.get(VERSION_KEY)) >= 1


def test_initial_load_from_redis(admin, store, snapshot, client):
    client.set(BUILT_KEY, "0")
    made = [admin.create(campaign_request(new_id())).campaign for _ in range(3)]
    snapshot.load()
    assert snapshot.ready()
    assert indexed(snapshot) == {c.id for c in made}
    assert snapshot.version == int(client.get(VERSION_KEY))


def test_a_cold_cache_is_rebuilt_from_postgresql(admin, store, snapshot, client):
    active = admin.create(campaign_request(new_id())).campaign
    paused = admin.create(campaign_request(new_id(), status="paused")).campaign
    client.flushdb()
    snapshot.load()
    ids = indexed(snapshot)
    assert active.id in ids and paused.id not in ids
    assert ids == {c.id for c in store.load_active() if c.ads}
    members = {m.decode() for m in client.smembers(ACTIVE_SET_KEY)}
    assert active.id in members and paused.id not in members and client.exists(BUILT_KEY)
    assert client.exists(entry_key(active.id))


def test_missing_entries_are_read_from_postgresql_and_written_back(admin, snapshot, client):
    client.set(BUILT_KEY, "0")
    made = admin.create(campaign_request(new_id())).campaign
    client.delete(entry_key(made.id))  # expired
    snapshot.load()
    assert made.id in indexed(snapshot)
    assert client.exists(entry_key(made.id))


def test_a_change_reaches_the_index_within_a_second_by_notification(admin, snapshot, client):
    client.set(BUILT_KEY, "0")
    snapshot.load()
    snapshot.start()
    incremental = reloads("change")
    started = time.monotonic()
    made = admin.create(campaign_request(new_id())).campaign
    appeared = wait_until(lambda: made.id in indexed(snapshot), timeout_s=1.0)
    admin.set_status(made.id, "paused")
    gone = wait_until(lambda: made.id not in indexed(snapshot), timeout_s=1.0)
    print(f"\nchange to index: create {appeared * 1000:.0f} ms, pause {gone * 1000:.0f} ms")
    assert reloads("change") >= incremental + 2  # applied by id, without a full read
    assert time.monotonic() - started < 2.5


def test_a_change_whose_notification_was_lost_arrives_by_the_version_poll(store, snapshot, client):
    client.set(BUILT_KEY, "0")
    silent = CampaignWriteThrough(store, CampaignCache(client, channel="campaigns::nowhere"))
    snapshot.load()
    snapshot.start()
    time.sleep(0.3)
    made = silent.create(campaign_request(new_id())).campaign
    appeared = wait_until(lambda: made.id in indexed(snapshot), timeout_s=1.0)
    silent.set_status(made.id, "paused")
    gone = wait_until(lambda: made.id not in indexed(snapshot), timeout_s=1.0)
    print(f"\nlost notification, version poll: {appeared * 1000:.0f} / {gone * 1000:.0f} ms")


def test_a_bulk_import_reaches_the_index(admin, snapshot, client):
    client.set(BUILT_KEY, "0")
    snapshot.load()
    snapshot.start()
    bulk = BulkRequest.model_validate({"campaigns": [campaign_fields(new_id()) for _ in range(50)]})
    made = admin.bulk_import(bulk)
    wait_until(lambda: {c.id for c in made} <= indexed(snapshot), timeout_s=1.0)


def test_paused_campaigns_never_enter_the_index_even_if_the_set_says_so(admin, snapshot, client):
    client.set(BUILT_KEY, "0")
    paused = admin.create(campaign_request(new_id(), status="paused")).campaign
    client.sadd(ACTIVE_SET_KEY, paused.id)  # a corrupted set
    snapshot.load()
    assert paused.id not in indexed(snapshot)
    client.delete(entry_key(paused.id))  # and the entry expired: PostgreSQL says paused
    snapshot.load()
    assert paused.id not in indexed(snapshot)


def test_the_index_survives_redis_being_unreachable(admin, store, client):
    client.set(BUILT_KEY, "0")
    made = admin.create(campaign_request(new_id())).campaign
    snapshot = CampaignSnapshot(client, store, poll_interval_s=0.05)
    snapshot.load()
    snapshot.start()
    try:
        pool = client.connection_pool
        real = pool.connection_kwargs["port"]
        pool.connection_kwargs["port"] = 1  # Redis "down": new connections fail
        pool.disconnect()
        time.sleep(0.5)
        assert made.id in indexed(snapshot) and snapshot.ready()
        pool.connection_kwargs["port"] = real  # Redis back (at its usual address)
        pool.reset()
        later = admin.create(campaign_request(new_id())).campaign
        wait_until(lambda: later.id in indexed(snapshot), timeout_s=8.0)
    finally:
        snapshot.stop()


@pytest.mark.parametrize("count", [300, 10_000])
def test_load_time(store, client, count):
    """Measured, printed: a snapshot load of N active campaigns from Redis and from PG, and the
    time a change then takes to reach the index."""
    admin = CampaignWriteThrough(store, CampaignCache(client))
    client.set(BUILT_KEY, "0")
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        items = [campaign_fields(new_id()) for _ in range(size)]
        admin.bulk_import(BulkRequest.model_validate({"campaigns": items}))
    snapshot = CampaignSnapshot(client, store)
    started = time.perf_counter()
    snapshot.load()
    from_redis = time.perf_counter() - started
    client.delete(BUILT_KEY)
    started = time.perf_counter()
    snapshot.load()
    from_pg = time.perf_counter() - started
    assert len(snapshot.index) >= count
    snapshot.start()
    try:
        made = admin.create(campaign_request(new_id())).campaign
        # A figure more than a limit: the 1 s requirement is asserted above on a quiet index;
        # at 10k the reload (MGET + index build) competes for 2 cores with the rest of the run.
        latency = wait_until(lambda: made.id in indexed(snapshot), timeout_s=3.0)
    finally:
        snapshot.stop()
    print(
        f"\nload {len(snapshot.index)} campaigns: Redis {from_redis:.3f}s, PG {from_pg:.3f}s;"
        f" a change reaches the index in {latency * 1000:.0f} ms"
    )


def test_a_write_whose_redis_step_failed_is_healed_by_the_full_reload(store, client):
    client.set(BUILT_KEY, "0")
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    broken = CampaignWriteThrough(store, CampaignCache(dead))
    snapshot = CampaignSnapshot(client, store, ttl_s=0.5, poll_interval_s=0.05)
    snapshot.load()
    snapshot.start()
    try:
        made = broken.create(campaign_request(new_id())).campaign  # PostgreSQL committed
        assert store.get(made.id) is not None  # the API answered success; Redis never saw it
        wait_until(lambda: made.id in indexed(snapshot), timeout_s=3.0)
        assert client.sismember(ACTIVE_SET_KEY, made.id)  # the set was repaired too
    finally:
        snapshot.stop()
