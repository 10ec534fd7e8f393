"""Clicks in Redis: the once-per-impression record (where an ad sends its clicks is the campaigns'
to say: `campaigns.store.ad_urls`).

- `RedisClickRecorder`: ONE Lua script (click_record.lua) checks
  ``click::seen::{shard<k>of<n>}::<impressionId>``, appends the click event to the outbox stream of
  the same shard (`kernel.storage.outbox`; the shard of the click's campaign,
  `kernel.storage.shards`, so both keys share one Redis Cluster slot) and sets the key with a TTL.
  Check, append and mark are one atomic step, so concurrent repeats count once and nothing is
  half-written (the append comes before the mark: if it fails, nothing was written at all).

Example::

    recorder = RedisClickRecorder(redis_client, shards=key_layout(url))
    recorder.record(click_event(claims, at=now), ttl_s=dedupe_ttl_s(claims, now))
"""

from __future__ import annotations

from typing import Any, Final

from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import UpstreamFailed, UpstreamUnavailable
from shared_layer.kernel.storage.lua import script
from shared_layer.kernel.storage.outbox import OUTBOX_PREFIX, outbox_fields, outbox_stream
from shared_layer.kernel.storage.redis_connection import REDIS_ERRORS, UNREACHABLE_ERRORS
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.domain.events import AdEvent

__all__ = ["RECORD_SCRIPT", "RedisClickRecorder", "seen_key"]

# KEYS[1] the seen key, KEYS[2] the shard's outbox stream; see the file for ARGV.
RECORD_SCRIPT: Final = script(__file__, "click_record.lua")


def seen_key(impression_id: str, campaign_id: str, shards: Shards = SINGLE) -> str:
    """``click::seen::{shard<k>of<n>}::<impressionId>``: set once the click is counted; in the
    shard of the impression's campaign (an impression belongs to one campaign for good)."""
    return f"click::seen::{shards.tag(shards.of(campaign_id))}::{impression_id}"


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
