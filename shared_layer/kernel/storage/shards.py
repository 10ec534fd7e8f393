"""Where Redis keys live: campaigns spread over N shards, each shard one Redis Cluster hash tag.

Why: a Lua script on a Redis Cluster may only touch keys of ONE hash slot. A budget charge
touches the campaign's two spend keys, the event outbox stream and the ledger's ready key, and a
click touches its dedupe key and the outbox. One outbox stream for everything would put every
charge in one slot (one master would take all the load). So campaigns are hashed to `count`
shards; shard k's keys carry the tag ``{shard<k>of<count>}``: the campaign's budget keys, that
shard's outbox stream (drained by a relay of its own) and that shard's ready key. Redis hashes
only the tag, so all of them are in one slot, and the shards spread over the cluster's masters.

The count is in the tag on purpose: a deployment that changes it gets all-new key names, so no
campaign can find a ready key of the old layout next to empty spend keys (which would look
unspent); every shard's ledger is rebuilt from PostgreSQL (`bidding.service.budget_recovery`) first.

A campaign's shard is CRC16 of its id (Redis Cluster's own key hash) modulo `count`: stable
across processes and languages, and evenly spread for UUIDs.

Example::

    shards = Shards(16)
    shards.of("c-1")          # 7
    shards.tag(7)             # "{shard7of16}"
    shards.campaign("c-1")    # "{shard7of16}::c-1"
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from redis.crc import key_slot

__all__ = ["SINGLE", "Shards"]


@dataclass(frozen=True)
class Shards:
    """`count` shards (1 on one Redis server); see the module docstring."""

    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("at least one shard")

    def of(self, campaign_id: str) -> int:
        """The shard of a campaign (0 .. count - 1)."""
        return 0 if self.count == 1 else _slot(campaign_id) % self.count

    def tag(self, shard: int) -> str:
        """``{shard<k>of<count>}``: the hash tag of every key of shard `shard`."""
        if not 0 <= shard < self.count:
            raise ValueError(f"shard {shard} is not one of {self.count}")
        return f"{{shard{shard}of{self.count}}}"

    def campaign(self, campaign_id: str) -> str:
        """``{shard<k>of<count>}::<campaignId>``: the tagged campaign part of its keys."""
        return f"{{shard{self.of(campaign_id)}of{self.count}}}::{campaign_id}"

    def all(self) -> range:
        return range(self.count)


@lru_cache(maxsize=1 << 16)
def _slot(campaign_id: str) -> int:
    """The campaign id's CRC16 slot, remembered: every charge names 3-4 keys of its campaign."""
    return key_slot(campaign_id.encode())


SINGLE = Shards(1)
"""The layout of one Redis server: every campaign in shard 0."""
