"""Every multi-key Lua script names keys of ONE Redis Cluster hash slot, as a cluster requires.

The adapters run against a double of redis-py's client that records the KEYS each script call
gets; redis-py's own `key_slot` (CRC16 of the hash tag, as Redis Cluster computes it) must give
one slot per call. A key added to a script without its shard's tag fails here before it fails on
a cluster with CROSSSLOT. Also: shards spread campaigns, and REDIS_URL chooses the layout.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from shared_layer.bidding.store.budget_ledger import RedisBudgetLedger
from shared_layer.campaigns.store.cache import CampaignCache
from shared_layer.clicks.store.click_ledger import RedisClickRecorder
from shared_layer.kernel.storage.outbox import outbox_fields, outbox_streams
from shared_layer.kernel.storage.redis_connection import connect, is_cluster, key_layout
from shared_layer.kernel.storage.shards import Shards
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.store.live_counters import CounterKeys, DaySnapshot, plan, rebuild_plan

from .auction_fixtures import make_campaign

NOON = datetime(2031, 5, 5, 12, tzinfo=UTC)
LAYOUTS = [Shards(1), Shards(3), Shards(16)]
CAMPAIGNS = [make_campaign(f"c-{n}") for n in range(200)]


class RecordingRedis:
    """The part of redis-py's client the scripts use: `register_script`, recording KEYS."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.calls: list[list[str]] = []

    def register_script(self, _text: str) -> Any:
        def run(keys: list[str], args: list[Any]) -> Any:
            self.calls.append(list(keys))
            return self.reply

        return run


def slots(keys: list[str]) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


def impression(campaign_id: str, n: int) -> AdEvent:
    return AdEvent.impression(
        impression_id=f"imp-{campaign_id}-{n}",
        campaign_id=campaign_id,
        ad_id=f"ad-{campaign_id}-0",
        user_id="u",
        placement_id="p",
        bid_cpm_micros=2_500_000,
        price_micros=2_500,
        at=NOON,
    )


@pytest.mark.parametrize("shards", LAYOUTS, ids=lambda s: f"{s.count}-shards")
def test_a_charge_touches_one_slot_its_shards_outbox_included(shards: Shards) -> None:
    client = RecordingRedis(reply=[0, 2_500, 2_500])
    ledger = RedisBudgetLedger(client, lambda: NOON, shards=shards)
    for c in CAMPAIGNS:
        ledger.charge(c, 2_500, outbox_fields(impression(c.id, 0)))
    assert len(client.calls) == len(CAMPAIGNS)
    for c, keys in zip(CAMPAIGNS, client.calls, strict=True):
        assert len(keys) == 4 and len(slots(keys)) == 1, keys
        assert keys[2] == outbox_streams(shards)[shards.of(c.id)]  # the campaign's shard's stream


@pytest.mark.parametrize("shards", LAYOUTS, ids=lambda s: f"{s.count}-shards")
def test_a_click_record_touches_one_slot_in_the_shard_of_its_campaign(shards: Shards) -> None:
    client = RecordingRedis(reply=1)
    recorder = RedisClickRecorder(client, shards=shards)
    for c in CAMPAIGNS:
        recorder.record(impression(c.id, 1), ttl_s=60)
    for c, keys in zip(CAMPAIGNS, client.calls, strict=True):
        assert len(slots(keys)) == 1, keys
        assert keys[1] == outbox_streams(shards)[shards.of(c.id)]


def test_the_campaign_cache_write_touches_one_slot_for_any_number_of_campaigns() -> None:
    client = RecordingRedis(reply=1)
    CampaignCache(client).publish(CAMPAIGNS)
    (keys,) = client.calls
    assert len(keys) == 3 + len(CAMPAIGNS) and len(slots(keys)) == 1


def test_campaigns_spread_over_every_shard() -> None:
    shards = Shards(16)
    per_shard = Counter(shards.of(c.id) for c in CAMPAIGNS)
    assert set(per_shard) == set(shards.all())
    # The shards' streams are distinct keys, most of them in different slots.
    streams = outbox_streams(shards)
    assert len(set(streams)) == 16 and len(slots(streams)) == 16


def test_the_layout_is_in_the_key_names_so_a_new_shard_count_finds_no_old_ready_key() -> None:
    assert Shards(16).tag(3) == "{shard3of16}" and Shards(8).tag(3) == "{shard3of8}"
    assert set(outbox_streams(Shards(8))).isdisjoint(outbox_streams(Shards(16)))


@pytest.mark.parametrize(
    ("url", "cluster", "count"),
    [
        ("redis://127.0.0.1:6379/0", False, 1),
        ("redis+cluster://127.0.0.1:7001,127.0.0.1:7002", True, 16),
        ("redis+cluster://127.0.0.1:7001?shards=6", True, 6),
        ("rediss+cluster://user:secret@10.0.0.1:6380", True, 16),
    ],
)
def test_redis_url_chooses_the_client_and_the_shards(url: str, cluster: bool, count: int) -> None:
    assert is_cluster(url) is cluster
    assert key_layout(url) == Shards(count)


def test_a_cluster_url_without_nodes_or_with_zero_shards_is_refused() -> None:
    with pytest.raises(ValueError, match="host:port"):
        connect("redis+cluster://")
    with pytest.raises(ValueError, match="shards=0"):
        key_layout("redis+cluster://127.0.0.1:7001?shards=0")


def test_a_single_server_url_keeps_its_database_and_drops_the_shards_option() -> None:
    client = connect("redis://127.0.0.1:6390/2?shards=1", timeout_s=0.1)
    assert not isinstance(client, RedisCluster)
    assert client.connection_pool.connection_kwargs["db"] == 2
    assert "shards" not in client.connection_pool.connection_kwargs


def test_live_counting_on_a_cluster_is_one_script_per_shard_each_in_one_slot() -> None:
    keys = CounterKeys(Shards(16))
    events = [(n, impression(c.id, n)) for n, c in enumerate(CAMPAIGNS)]
    calls = plan("impressions", 2, events, last_offset=len(events) - 1, keep_days=3, keys=keys)
    touched = {keys.shard_of(c.id) for c in CAMPAIGNS}
    assert len(calls) == len(touched) == 16
    for call in calls:
        seen_prefix = str(call.args[-2])
        # The seen keys are named inside the script: their prefix must carry the same tag.
        assert len(slots([*call.keys, f"{seen_prefix}some-event-id"])) == 1, call.keys[:4]
        assert call.args[0] == len(events) - 1  # every shard's watermark moves to the batch end
    assert sum(call.records for call in calls) == len(events)


def test_the_live_rebuild_on_a_cluster_is_one_slot_per_shard() -> None:
    keys = CounterKeys(Shards(16))
    ids = [c.id for c in CAMPAIGNS]
    snapshot = DaySnapshot(
        day=NOON.date(),
        totals={cid: (3, 1, 7_500) for cid in ids},
        recent=tuple((f"e-{cid}", cid, False, 2_500) for cid in ids),
        lost_at="",
    )
    rebuilt = 0
    for shard in keys.all():
        call = rebuild_plan(
            snapshot, ready_value="now", keep_days=3, dedupe_s=600, keys=keys, shard=shard
        )
        assert len(slots([*call.keys, f"{call.args[-2]}e-1"])) == 1
        rebuilt += (len(call.keys) - 2) // 3
    assert rebuilt == len(ids)  # each campaign in exactly one shard's rebuild


def test_on_one_server_the_live_counters_keep_the_seed_key_names() -> None:
    keys = CounterKeys.for_url("redis://127.0.0.1:6379/0")
    event = impression("c-1", 0)
    (call,) = plan("clicks", 0, [(5, event)], last_offset=5, keep_days=3, keys=keys)
    assert call.keys[:3] == (
        "kafka::offset::clicks::0",
        "stats::live::ready",
        "stats::live::lost-at",
    )
    assert f"stats::impressions::c-1::{event.day.isoformat()}" in call.keys[3:]
    assert CounterKeys.for_url("redis+cluster://127.0.0.1:7001?shards=4").shards == Shards(4)
