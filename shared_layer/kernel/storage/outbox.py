"""The event outbox in Redis: the stream an event joins in the same atomic step as what it records.

Why: bid charges a budget and click accepts a click in one Lua script each. If the event were
handed to a Kafka producer afterwards, a replica that died in between would lose a charged
impression for good. So the script itself appends the event to the Redis stream of its
campaign's shard, ``events::outbox::{shard<k>of<n>}`` (`outbox_stream`, `kernel.storage.shards`);
the charge and its record cannot be separated, and Redis (AOF on) keeps it.
`shared_layer.pipeline.store.relay` drains each shard's stream to Kafka (a relay per shard).

Entries have three fields: ``topic``, ``key``, ``value`` (the event's JSON bytes), and with a
correlation (`kernel.correlation`) two more, ``rid`` and ``tp``, that the relay turns into the
Kafka record's headers; a script appends one with
``XADD <stream> * topic <t> key <k> value <v> [rid <r> tp <t>]`` (`outbox_fields`).
Redis Cluster: a script keeps its keys in one slot, so the stream a script appends to carries the
same hash tag as the campaign keys it writes (`kernel.storage.shards`); one server has one shard.

Example::

    fields = outbox_fields(event, correlation)        # XADD's field/value list
    stream = outbox_stream(shards, shards.of(campaign_id))
"""

from __future__ import annotations

from typing import Final, Protocol

from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.storage.shards import Shards

__all__ = [
    "OUTBOX_GROUP",
    "OUTBOX_PREFIX",
    "OutboxEvent",
    "outbox_fields",
    "outbox_stream",
    "outbox_streams",
]

OUTBOX_PREFIX: Final = "events::outbox"
OUTBOX_GROUP: Final = "relay"


class OutboxEvent(Protocol):
    """What the outbox needs of an event (`pipeline.domain.events.AdEvent` is one)."""

    @property
    def topic(self) -> str: ...

    @property
    def key(self) -> bytes: ...

    def to_bytes(self) -> bytes: ...


def outbox_stream(shards: Shards, shard: int, prefix: str = OUTBOX_PREFIX) -> str:
    """``events::outbox::{shard<k>of<n>}``: the outbox stream of shard `shard`."""
    return f"{prefix}::{shards.tag(shard)}"


def outbox_streams(shards: Shards, prefix: str = OUTBOX_PREFIX) -> list[str]:
    """Every shard's outbox stream, in shard order."""
    return [outbox_stream(shards, shard, prefix) for shard in shards.all()]


def outbox_fields(event: OutboxEvent, correlation: Correlation | None = None) -> list[bytes]:
    """The XADD field/value list of `event`: topic, key, value, and the correlation's ids."""
    fields = [b"topic", event.topic.encode(), b"key", event.key, b"value", event.to_bytes()]
    if correlation is not None:
        fields += [b"rid", correlation.request_id.encode(), b"tp", correlation.traceparent.encode()]
    return fields
