"""Clicks in Redis and PostgreSQL: the registered URL of an ad, and the once-per-impression record.

- `RegisteredAdUrls`: where an ad sends its clicks. The campaign cache entry in Redis
  (``campaign::{campaignId}``), else PostgreSQL's ``ads`` row. PostgreSQL also answers for ads
  that were removed from their campaign, and for paused or ended campaigns: an ad that was shown
  may still be clicked, and that click must land and count.
- `RedisClickRecorder`: ONE Lua script (click_record.lua) checks
  ``click::seen::{shard<k>of<n>}::<impressionId>``, appends the click event to the outbox stream of
  the same shard (`kernel.storage.outbox`; the shard of the click's campaign,
  `kernel.storage.shards`, so both keys share one Redis Cluster slot) and sets the key with a TTL.
  Check, append and mark are one atomic step, so concurrent repeats count once and nothing is
  half-written (the append comes before the mark: if it fails, nothing was written at all).

Example::

    urls = RegisteredAdUrls(CampaignCache(redis_client), database)
    recorder = RedisClickRecorder(redis_client, shards=key_layout(url))
    recorder.record(click_event(claims, at=now), ttl_s=dedupe_ttl_s(claims, now))
"""

from __future__ import annotations

from typing import Any, Final

from shared_layer.campaigns.domain.requests import is_uuid
from shared_layer.campaigns.store.cache import CampaignCache
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import AdServerError, UpstreamFailed, UpstreamUnavailable
from shared_layer.kernel.storage.lua import script
from shared_layer.kernel.storage.outbox import OUTBOX_PREFIX, outbox_fields, outbox_stream
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.redis_connection import REDIS_ERRORS, UNREACHABLE_ERRORS
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.domain.events import AdEvent

__all__ = ["RECORD_SCRIPT", "RedisClickRecorder", "RegisteredAdUrls", "seen_key"]

# KEYS[1] the seen key, KEYS[2] the shard's outbox stream; see the file for ARGV.
RECORD_SCRIPT: Final = script(__file__, "click_record.lua")


def seen_key(impression_id: str, campaign_id: str, shards: Shards = SINGLE) -> str:
    """``click::seen::{shard<k>of<n>}::<impressionId>``: set once the click is counted; in the
    shard of the impression's campaign (an impression belongs to one campaign for good)."""
    return f"click::seen::{shards.tag(shards.of(campaign_id))}::{impression_id}"


class RegisteredAdUrls:
    """The campaign cache first (one Redis read), PostgreSQL's ads table otherwise."""

    def __init__(self, cache: CampaignCache, db: Database) -> None:
        self._cache = cache
        self._db = db

    def redirect_url(self, campaign_id: str, ad_id: str) -> str | None:
        try:
            campaign = self._cache.read([campaign_id])[campaign_id]
        except AdServerError:  # the cache is down: PostgreSQL still knows
            campaign = None
        if campaign is not None:
            for ad in campaign.ads:
                if ad.id == ad_id:
                    return ad.redirect_url
        return self._from_database(campaign_id, ad_id)

    def _from_database(self, campaign_id: str, ad_id: str) -> str | None:
        # Any status, removed ads included: what was shown may still be clicked.
        if not (is_uuid(campaign_id) and is_uuid(ad_id)):
            return None
        rows = self._db.run(
            "SELECT redirect_url FROM ads "
            "WHERE id = CAST(:ad AS uuid) AND campaign_id = CAST(:campaign AS uuid)",
            ad=ad_id,
            campaign=campaign_id,
        )
        return str(rows[0][0]) if rows else None


class RedisClickRecorder:
    """`RECORD_SCRIPT` by EVALSHA; `outbox_prefix` names the outbox streams (tests give their
    own), `shards` is the deployment's key layout."""

    def __init__(
        self, client: Any, *, shards: Shards = SINGLE, outbox_prefix: str = OUTBOX_PREFIX
    ) -> None:
        self._shards = shards
        self._prefix = outbox_prefix
        self._script = client.register_script(RECORD_SCRIPT)

    def record(self, event: AdEvent, ttl_s: int, correlation: Correlation | None = None) -> bool:
        shard = self._shards.of(event.campaign_id)
        keys = [
            seen_key(event.impression_id, event.campaign_id, self._shards),
            outbox_stream(self._shards, shard, self._prefix),
        ]
        try:
            return bool(self._script(keys=keys, args=[ttl_s, *outbox_fields(event, correlation)]))
        except UNREACHABLE_ERRORS as exc:
            raise UpstreamUnavailable("click store unavailable: could not record in Redis") from exc
        except REDIS_ERRORS as exc:
            raise UpstreamFailed("click store error: Redis refused to record the click") from exc
