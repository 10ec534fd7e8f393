"""The bid function's in-process view of the active campaigns, kept fresh within a second.

Why in process: a bid must decide in microseconds; reading campaigns from Redis per request
would cost more than the whole decision. So each bid replica holds every active campaign and an
`AuctionIndex` over them, and replaces both when campaigns change.

How it stays fresh (three mechanisms, each covering the others' failures):

1. Change notifications: the campaigns function publishes the campaign id on
   ``campaigns::changes`` after every write; ~30 ms after the first message (debounced, so a
   burst costs one rebuild) the snapshot reads just those ids (membership and entry, one MULTI)
   and rebuilds the index. If the notifications do not account for every version step since
   the last load (one was lost, or a bulk import sent `*`), it reloads everything instead.
   Typical change-to-index latency: tens of milliseconds.
2. A version poll: ``campaigns::version`` is read every `poll_interval_s` (0.25 s); a value that
   differs from the loaded one means a message was missed (pub/sub is fire-and-forget), and the
   snapshot reloads. Worst case for a lost message: poll interval + reload time, well under 1 s.
3. A full reload from PostgreSQL every `ttl_s` (the specification's 5 minutes), which also rewrites
the
   Redis set and entries: whatever went wrong in Redis (a write whose Redis step failed, an
   evicted key) heals within one TTL.

A reload reads ``campaigns::all`` (SMEMBERS) and the entries (one MGET); entries whose bytes did
not change since the last reload are not parsed again, so a change among 10k campaigns costs one
parse plus the index build. Entries missing from Redis are read from PostgreSQL (`store.get_many`)
and written back. When the set itself is missing (cold or flushed Redis) it is rebuilt from
`store.load_active()` (see campaign_cache for why that is safe against concurrent writers).

Only active campaigns (with ads) are ever in the index: paused and ended ones are dropped by
`auction.build_index` whatever the cache says. The index is swapped as one reference, so a
request sees either the old or the new index, never a half-built one. When Redis or PostgreSQL
is down, the last index keeps serving while the refresher reconnects with backoff.

The placement floors (`floors`, placement id -> `PlacementFloor`) are read from PostgreSQL
(`floor_source`) on every load and reload that is not an incremental change: a floor change
bumps the version and notifies `*` (campaigns.service.admin), which is such a reload. If
PostgreSQL cannot be read then, the last floors stay in force and the next reload tries again.

Give it a Redis client whose socket timeout allows a full load (a few seconds), not the budget
ledger's short-timeout client.

Example::

    snapshot = CampaignSnapshot(redis.Redis.from_url(url, socket_timeout=5), CampaignStore(db))
    snapshot.load()          # blocking, in the handler's build()
    snapshot.start()         # background refresher (daemon thread)
    decision = decide(snapshot.index, request, ledger)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, Protocol

from shared_layer.bidding.domain.auction import AuctionIndex, build_index
from shared_layer.campaigns.metrics import (
    SNAPSHOT_CAMPAIGNS,
    SNAPSHOT_REFRESH_FAILURES,
    SNAPSHOT_RELOAD_SECONDS,
    SNAPSHOT_RELOADS,
    SNAPSHOT_VERSION,
)
from shared_layer.campaigns.store.cache import (
    BULK_MESSAGE,
    CHANGES_CHANNEL,
    CampaignCache,
    CampaignSource,
    entry_json,
    parse_entry,
)
from shared_layer.kernel.background import Backoff, Loop
from shared_layer.kernel.errors import AdServerError
from shared_layer.kernel.log import get_logger
from shared_layer.kernel.models import Campaign, PlacementFloor
from shared_layer.kernel.storage.redis_connection import REDIS_ERRORS

__all__ = ["CampaignSnapshot", "FloorSource"]


class FloorSource(Protocol):
    """Where the placement floors come from (campaigns.store.floors.PlacementFloorStore)."""

    def floors(self) -> list[PlacementFloor]: ...


_LOG = get_logger("campaign-snapshot")
_DEBOUNCE_S: Final = 0.03
_MAX_BACKOFF_S: Final = 5.0
# More notified ids than this in one debounce window: one full read is cheaper.
_MAX_INCREMENTAL: Final = 200


class CampaignSnapshot:
    """Active campaigns and their auction index, refreshed from Redis (PostgreSQL on a miss)."""

    def __init__(
        self,
        redis_client: Any,
        store: CampaignSource,
        *,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = 300.0,
        poll_interval_s: float = 0.25,
        floor_source: FloorSource | None = None,
    ) -> None:
        self._redis = redis_client
        self._floor_source = floor_source
        self._floors: Mapping[str, PlacementFloor] = MappingProxyType({})
        self._cache = CampaignCache(redis_client)
        self._store = store
        self._clock = clock
        self._ttl_s = ttl_s
        self._poll_interval_s = poll_interval_s
        self._index: AuctionIndex = build_index(())
        self._version = -1
        self._ready = False
        self._parsed: dict[str, tuple[bytes, Campaign]] = {}
        self._last_full = clock()
        self._reload_lock = threading.Lock()
        # The refresher's own state (its thread alone touches it).
        self._pubsub: Any = None
        self._notified: list[str] = []  # notified ids not applied yet
        self._changed_at: float | None = None
        self._next_poll = 0.0
        self._refresher = Loop(
            self._refresh,
            name="campaign-snapshot",
            logger=_LOG,
            failure="campaign snapshot refresh failed; keeping the last index",
            backoff=Backoff(0.1, _MAX_BACKOFF_S),
            expected=(AdServerError, *REDIS_ERRORS, OSError),
            on_failure=self._refresh_failed,
        )

    @property
    def index(self) -> AuctionIndex:
        """The current auction index (immutable; replaced as a whole on every reload)."""
        return self._index

    @property
    def floors(self) -> Mapping[str, PlacementFloor]:
        """Placement id -> its floor and clearing rule (placements without one are absent)."""
        return self._floors

    @property
    def version(self) -> int:
        """The ``campaigns::version`` this snapshot reflects (-1 before the first load)."""
        return self._version

    def ready(self) -> bool:
        """True once a load succeeded (the index may legitimately be empty)."""
        return self._ready

    def load(self) -> None:
        """Load the snapshot now (blocking), from Redis (from PostgreSQL if Redis is cold).

        Raises UpstreamUnavailable if neither can be read.
        """
        self._reload(full=False, reason="load")
        self._last_full = self._clock()

    def start(self) -> None:
        """Start the background refresher (a daemon thread); harmless if already started."""
        self._refresher.start()

    def stop(self) -> None:
        """Stop the refresher and wait for it (at most about one poll interval)."""
        self._refresher.stop(timeout_s=self._poll_interval_s + 5.0)
        self._unsubscribe()

    # --- loading ---

    def _reload(self, *, full: bool, reason: str) -> None:
        """Load from Redis; `full`: from PostgreSQL (rebuilding the Redis set and entries)."""
        started = time.perf_counter()
        with self._reload_lock:
            ids = None
            if not full:
                version = self._cache.version()
                ids = self._cache.active_ids()
            if ids is None:
                campaigns, version = self._cache.rebuild(self._store)
                # The bytes the rebuild wrote: the next reload from Redis parses nothing again.
                parsed = {c.id: (entry_json(c).encode(), c) for c in campaigns}
                reason = reason if full else "rebuild"
            else:
                parsed = self._read(sorted(ids))
            index = build_index(c for _, c in parsed.values())
            self._load_floors()
            self._parsed = parsed
            self._index = index  # the one reference swap readers see
            self._version = version
            self._ready = True
            if full:
                self._last_full = self._clock()
        SNAPSHOT_CAMPAIGNS.set(len(index))
        SNAPSHOT_VERSION.set(version)
        SNAPSHOT_RELOADS.labels(reason).inc()
        SNAPSHOT_RELOAD_SECONDS.observe(time.perf_counter() - started)

    def _read(self, ids: list[str]) -> dict[str, tuple[bytes, Campaign]]:
        """The campaigns of these ids: from Redis, reusing unchanged parses, PostgreSQL on miss."""
        previous = self._parsed
        parsed: dict[str, tuple[bytes, Campaign]] = {}
        missing: list[str] = []
        for campaign_id, data in zip(ids, self._cache.read_raw(ids), strict=True):
            known = previous.get(campaign_id)
            if data is not None and known is not None and known[0] == data:
                parsed[campaign_id] = known
                continue
            campaign = None if data is None else parse_entry(data)
            if data is None or campaign is None or campaign.id != campaign_id:
                missing.append(campaign_id)
                continue
            parsed[campaign_id] = (data, campaign)
        if missing:
            fetched = self._store.get_many(missing)
            self._cache.fill(fetched)
            for campaign in fetched:
                parsed[campaign.id] = (entry_json(campaign).encode(), campaign)
        return parsed

    def _load_floors(self) -> None:
        if self._floor_source is None:
            return
        try:
            floors = self._floor_source.floors()
        except AdServerError as exc:
            _LOG.warning("placement floors not reloaded (%s); keeping the last ones", exc)
            return
        self._floors = MappingProxyType({f.placement_id: f for f in floors})

    # --- refreshing ---

    def _apply_changes(self, messages: list[str]) -> bool:
        """Apply notified changes by id (no full read); False if a full reload is needed.

        Every write bumps the version once and publishes once, so the notifications cover
        every change since the loaded version exactly when their number equals the version's
        increase. Anything else (a lost or early message, a bulk `*`) asks for a full reload.
        """
        started = time.perf_counter()
        ids = sorted(set(messages))
        if BULK_MESSAGE in ids or len(ids) > _MAX_INCREMENTAL:
            return False
        with self._reload_lock:
            if not self._ready:
                return False
            version, built, states = self._cache.read_changes(ids)
            if not built or version - self._version != len(messages):
                return False
            parsed = dict(self._parsed)
            missing: list[str] = []
            for campaign_id, (member, data) in zip(ids, states, strict=True):
                campaign = parse_entry(data) if member else None
                if not member:
                    parsed.pop(campaign_id, None)
                elif data is None or campaign is None or campaign.id != campaign_id:
                    missing.append(campaign_id)
                else:
                    parsed[campaign_id] = (data, campaign)
            if missing:
                fetched = {c.id: c for c in self._store.get_many(missing)}
                self._cache.fill(fetched.values())
                for campaign_id in missing:
                    found = fetched.get(campaign_id)
                    if found is None:
                        parsed.pop(campaign_id, None)
                    else:
                        parsed[campaign_id] = (entry_json(found).encode(), found)
            index = build_index(c for _, c in parsed.values())
            self._parsed = parsed
            self._index = index
            self._version = version
        SNAPSHOT_CAMPAIGNS.set(len(index))
        SNAPSHOT_VERSION.set(version)
        SNAPSHOT_RELOADS.labels("change").inc()
        SNAPSHOT_RELOAD_SECONDS.observe(time.perf_counter() - started)
        return True

    def _refresh(self) -> float:
        """One turn of the refresher: wait in the subscription for notifications (at most until
        the next poll or reload is due), then do what is due. Returns 0: it waited already."""
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(CHANGES_CHANNEL)
            # Messages may have been lost while unsubscribed: check the version now.
            self._notified, self._changed_at, self._next_poll = [], None, 0.0
        now = self._clock()
        changed_at = self._changed_at
        wait = min(
            max(0.0, self._next_poll - now),
            max(0.0, changed_at + _DEBOUNCE_S - now) if changed_at else self._ttl_s,
            max(0.0, self._last_full + self._ttl_s - now),
        )
        message = self._pubsub.get_message(timeout=wait)
        while message is not None:
            if message.get("type") == "message":
                self._notified.append(_text(message.get("data")))
                self._changed_at = self._changed_at or self._clock()
            message = self._pubsub.get_message(timeout=0.0)
        now = self._clock()
        changed_at = self._changed_at
        if now - self._last_full >= self._ttl_s:
            self._notified, self._changed_at = [], None
            self._reload(full=True, reason="ttl")
        elif changed_at is not None and now - changed_at >= _DEBOUNCE_S:
            pending, self._notified, self._changed_at = self._notified, [], None
            if not self._apply_changes(pending):
                self._reload(full=False, reason="notification")
            self._next_poll = now + self._poll_interval_s
        elif changed_at is None and now >= self._next_poll:
            self._next_poll = now + self._poll_interval_s
            if self._cache.version() != self._version:
                self._reload(full=False, reason="version")
        return 0.0

    def _refresh_failed(self, _exc: Exception) -> None:
        SNAPSHOT_REFRESH_FAILURES.inc()
        self._unsubscribe()  # subscribe again next turn, checking the version then

    def _unsubscribe(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        _close(pubsub)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _close(pubsub: Any) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except (*REDIS_ERRORS, OSError):
            pass
