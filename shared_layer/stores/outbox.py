"""The event outbox in Redis: the stream an event joins in the same atomic step as what it records.

Why: bid charges a budget and click accepts a click in one Lua script each. If the event were
handed to a Kafka producer afterwards, a replica that died in between would lose a charged
impression for good. So the script itself appends the event to the Redis stream of its
campaign's shard, ``events::outbox::{shard<k>of<n>}`` (`outbox_stream`, `stores.shards`); the
charge and its record cannot be separated, and Redis (AOF on) keeps it.
`shared_layer.events.outbox_relay` drains each shard's stream to Kafka (a relay per shard).

Entries have three fields: ``topic``, ``key``, ``value`` (the event's JSON bytes), and with a
correlation (`core.correlation`) two more, ``rid`` and ``tp``, that the relay turns into the
Kafka record's headers; a script appends one with
``XADD <stream> * topic <t> key <k> value <v> [rid <r> tp <t>]`` (`outbox_fields`).
Redis Cluster: a script keeps its keys in one slot, so the stream a script appends to carries the
same hash tag as the campaign keys it writes (`stores.shards`); one server has one shard.

Example::

    record = impression_recorder(request, impression_id, at=now)   # the auction's record step
    ledger.charge(campaign, price, record(campaign, ad, price))      # charged and recorded
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from shared_layer.core.auction import Price
from shared_layer.core.correlation import Correlation
from shared_layer.core.events import AdEvent
from shared_layer.core.models import Ad, BidRequest, Campaign
from shared_layer.stores.shards import Shards

__all__ = [
    "OUTBOX_GROUP",
    "OUTBOX_PREFIX",
    "impression_recorder",
    "outbox_fields",
    "outbox_stream",
    "outbox_streams",
]

OUTBOX_PREFIX: Final = "events::outbox"
OUTBOX_GROUP: Final = "relay"


def outbox_stream(shards: Shards, shard: int, prefix: str = OUTBOX_PREFIX) -> str:
    """``events::outbox::{shard<k>of<n>}``: the outbox stream of shard `shard`."""
    return f"{prefix}::{shards.tag(shard)}"


def outbox_streams(shards: Shards, prefix: str = OUTBOX_PREFIX) -> list[str]:
    """Every shard's outbox stream, in shard order."""
    return [outbox_stream(shards, shard, prefix) for shard in shards.all()]


def outbox_fields(event: AdEvent, correlation: Correlation | None = None) -> list[bytes]:
    """The XADD field/value list of `event`: topic, key, value, and the correlation's ids."""
    fields = [b"topic", event.topic.encode(), b"key", event.key, b"value", event.to_bytes()]
    if correlation is not None:
        fields += [b"rid", correlation.request_id.encode(), b"tp", correlation.traceparent.encode()]
    return fields


def impression_recorder(
    request: BidRequest,
    impression_id: str,
    *,
    at: datetime,
    correlation: Correlation | None = None,
) -> Callable[[Campaign, Ad, Price], list[bytes]]:
    """The auction's `record` step for one bid request: the outbox fields of the impression a
    candidate would make (auction.decide appends them with the charge, only if it succeeds)."""

    def record(campaign: Campaign, ad: Ad, price: Price) -> list[bytes]:
        return outbox_fields(
            AdEvent.impression(
                impression_id=impression_id,
                campaign_id=campaign.id,
                ad_id=ad.id,
                user_id=request.user_id,
                placement_id=request.placement_id,
                bid_cpm_micros=price.bid_cpm_micros,
                price_micros=price.charge_micros,
                country=request.country_code,
                device_type=request.device_type,
                at=at,
            ),
            correlation,
        )

    return record
