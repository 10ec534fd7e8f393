"""The two Redis layouts the Redis tests run on: one server and a 3-master Redis Cluster.

A test module parametrizes its client fixture with `LAYOUTS` and builds the client with
`layout_client`; `keys_of(client)` then gives the key names the counters use on it (the
specification's names on one server, the shard-tagged names on the cluster), so one test body checks
both.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from redis.cluster import RedisCluster

from localplatform.components.redis_cluster import cluster_ok
from localplatform.profile import PROFILES
from shared_layer.kernel.storage.redis_connection import connect, key_layout, read_many
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.store.live_counters import STAT_KINDS, CounterKeys
from tests.support import wait_for

from .campaign_support import redis_client

LAYOUTS = ["one-server", "cluster"]
CLUSTER_URL = PROFILES["test"].redis_cluster_url(shards=16)
CLUSTER_KEYS = CounterKeys.for_url(CLUSTER_URL)


def layout_client(layout: str, db: int, timeout_s: float = 5) -> Any:
    """A client of `layout`: database `db` of the one server, or the test platform's cluster
    (which has one database: the tests' own topic and campaign names keep them apart)."""
    if layout == "one-server":
        return redis_client(db, timeout_s=timeout_s)
    assert wait_for(cluster_ok, timeout_s=30), "the test platform's Redis Cluster is not up"
    return connect(CLUSTER_URL, timeout_s=timeout_s, connect_timeout_s=1, retries=3)


def keys_of(client: Any) -> CounterKeys:
    return CLUSTER_KEYS if isinstance(client, RedisCluster) else CounterKeys()


def ledger_shards(client: Any) -> Shards:
    """The budget ledger's layout on `client` (for reports and reconcile)."""
    return key_layout(CLUSTER_URL) if isinstance(client, RedisCluster) else SINGLE


def live_numbers(client: Any, campaign_id: str, day: date) -> tuple[int, int, int]:
    """(impressions, clicks, spend micros) in the live counters of `campaign_id` and `day`."""
    names = keys_of(client)
    values = read_many(client, [names.stats(kind, campaign_id, day) for kind in STAT_KINDS])
    return tuple(int(v or 0) for v in values)  # type: ignore[return-value]


def watermark(client: Any, topic: str, partition: int, campaign_id: str) -> int | None:
    """The watermark that guards `campaign_id`'s events of one partition (per shard on the
    cluster)."""
    names = keys_of(client)
    value = client.get(names.offset(topic, partition, names.shard_of(campaign_id)))
    return None if value is None else int(value)


def mark_ready(client: Any) -> None:
    """Every shard's live counters whole (no loss to rebuild from)."""
    names = keys_of(client)
    for shard in names.all():
        client.set(names.ready(shard), "test")
