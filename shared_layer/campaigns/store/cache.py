"""The Redis side of campaigns: the specification's cache keys, a change version and change
notifications.

Keys (spec: docs/specification.md, "Redis keys"; plus ours)::

    {campaigns}::campaign::<id>  spec's campaign::{campaignId}: the Campaign as JSON
                                 (models.Campaign by alias), TTL 300 s
    {campaigns}::all             spec's campaigns::all: SET of the ids of ACTIVE campaigns
    {campaigns}::version         ours: INCR on every change; bid replicas poll it
    {campaigns}::all::built      ours: present once the set was rebuilt from PostgreSQL
    campaigns::changes           ours: pub/sub channel; a message is a campaign id, or `*` (bulk)

Why ``{campaigns}`` (a literal Redis Cluster hash tag): the write script, the MULTI reads and the
WATCHed rebuild touch the set, the version, the marker and entries together, and on a Redis
Cluster one script or transaction may only touch one hash slot. The whole cache is a few MB even
at 10k campaigns, read once per snapshot reload, so one slot (one master) carries it easily.

Why `campaigns::all::built`: Redis deletes an empty set, so "no active campaign" and "the cache
was flushed" look alike. After a flush, a writer that added its one id to a new set would make
every bid replica believe only that campaign is active. So writers touch `campaigns::all` only
while the marker exists (`WRITE_SCRIPT`, atomic), and the first reader that finds it missing
rebuilds the set from PostgreSQL (`rebuild`), guarded by `campaigns::version`: if any change was
written while it read PostgreSQL, the rebuild is not stored and is tried again.

The write path (`campaigns.service.admin.CampaignWriteThrough`): PostgreSQL commits first, then ONE
Redis round trip (a Lua script) sets the entries, updates the set, increments the version and
publishes. If Redis is down at that moment the write still succeeded (PostgreSQL is the record); bid
replicas catch up by their version poll and the 300 s full reload, and the cache entries expire. The
API then reports success with the change stored; see functions/campaigns/README.md.

Example::

    cache = CampaignCache(redis.Redis.from_url(url))
    cache.publish([campaign])          # after the PostgreSQL commit
    cache.read(["c-1", "c-2"])         # {"c-1": Campaign | None, ...}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, Protocol

from pydantic import ValidationError
from redis import exceptions as redis_errors

from shared_layer.kernel.errors import (
    UpstreamFailed,
    UpstreamUnavailable,
)
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.storage.lua import script
from shared_layer.kernel.storage.redis_connection import REDIS_ERRORS, UNREACHABLE_ERRORS

__all__ = [
    "ACTIVE_SET_KEY",
    "BUILT_KEY",
    "BULK_MESSAGE",
    "CACHE_TAG",
    "CHANGES_CHANNEL",
    "ENTRY_TTL_S",
    "VERSION_KEY",
    "WRITE_SCRIPT",
    "CampaignCache",
    "CampaignSource",
    "entry_json",
    "entry_key",
    "parse_entry",
]

CACHE_TAG: Final = "{campaigns}"
ACTIVE_SET_KEY: Final = f"{CACHE_TAG}::all"
VERSION_KEY: Final = f"{CACHE_TAG}::version"
BUILT_KEY: Final = f"{CACHE_TAG}::all::built"
CHANGES_CHANNEL: Final = "campaigns::changes"
BULK_MESSAGE: Final = "*"
ENTRY_TTL_S: Final = 300


def entry_key(campaign_id: str) -> str:
    """``{campaigns}::campaign::<campaignId>``: the specification's ``campaign::{campaignId}``,
    tagged."""
    return f"{CACHE_TAG}::campaign::{campaign_id}"


class CampaignSource(Protocol):
    """What the cache and the snapshot need from PostgreSQL (campaign_store.CampaignStore)."""

    def get_many(self, campaign_ids: Sequence[str]) -> list[Campaign]: ...

    def load_active(self) -> list[Campaign]: ...


# campaign_cache_write.lua beside this file: its KEYS and ARGV are described there.
WRITE_SCRIPT: Final = script(__file__, "campaign_cache_write.lua")
# Entries per script call in a bulk write: keeps each call short for other Redis clients.
_WRITE_CHUNK: Final = 500


class CampaignCache:
    """Reads and writes the campaign keys; every Redis error becomes one of ours."""

    def __init__(
        self,
        redis_client: Any,
        *,
        entry_ttl_s: int = ENTRY_TTL_S,
        channel: str = CHANGES_CHANNEL,
    ) -> None:
        self._redis = redis_client
        self._ttl = entry_ttl_s
        self._channel = channel
        self._write = redis_client.register_script(WRITE_SCRIPT)

    # --- writes (the campaigns function, after PostgreSQL committed) ---

    def publish(self, campaigns: Sequence[Campaign], *, bulk: bool = False) -> int:
        """Store the campaigns' new state, update the active set, bump the version, notify.

        One script call (atomic) for up to 500 campaigns; a bulk import sends `*` once, with the
        last chunk. Returns the new version.
        """
        if not campaigns:
            return self.version()
        chunks = [campaigns[i : i + _WRITE_CHUNK] for i in range(0, len(campaigns), _WRITE_CHUNK)]
        version = 0
        for chunk in chunks:
            keys = [ACTIVE_SET_KEY, VERSION_KEY, BUILT_KEY, *(entry_key(c.id) for c in chunk)]
            message = BULK_MESSAGE if bulk or len(chunks) > 1 else chunk[0].id
            args: list[Any] = [self._channel, message, self._ttl]
            for campaign in chunk:
                args += [
                    entry_json(campaign),
                    "1" if campaign.status == "active" else "0",
                    campaign.id,
                ]
            version = int(self._call(lambda k=keys, a=args: self._write(keys=k, args=a), "write"))
        return version

    def announce(self) -> int:
        """Bump the version and notify `*` without changing an entry: every bid replica reloads
        its snapshot (the placement floors change this way). Returns the new version."""

        def write() -> int:
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(VERSION_KEY)
            pipe.publish(self._channel, BULK_MESSAGE)
            return int(pipe.execute()[0])

        return int(self._call(write, "write"))

    # --- reads (the bid function's snapshot) ---

    def version(self) -> int:
        """The change counter (0 when it does not exist: nothing was ever written, or flushed)."""
        raw = self._call(lambda: self._redis.get(VERSION_KEY), "read")
        return int(raw or 0)

    def active_ids(self) -> set[str] | None:
        """The ids in campaigns::all, or None when the set must be rebuilt (marker missing).

        Read in one MULTI so that the marker and the set belong together.
        """

        def read() -> list[Any]:
            pipe = self._redis.pipeline(transaction=True)
            pipe.exists(BUILT_KEY)
            pipe.smembers(ACTIVE_SET_KEY)
            return pipe.execute()

        built, members = self._call(read, "read")
        if not built:
            return None
        return {_text(member) for member in members}

    def read_changes(
        self, campaign_ids: Sequence[str]
    ) -> tuple[int, bool, list[tuple[bool, bytes | None]]]:
        """(version, set built?, [(in the active set?, entry JSON or None)]) in ONE MULTI.

        For applying a few notified changes without reading every entry: the version says
        whether the notifications seen account for every change since the last load.
        """

        def read() -> list[Any]:
            pipe = self._redis.pipeline(transaction=True)
            pipe.get(VERSION_KEY)
            pipe.exists(BUILT_KEY)
            for campaign_id in campaign_ids:
                pipe.sismember(ACTIVE_SET_KEY, campaign_id)
            for campaign_id in campaign_ids:  # GETs: a cluster pipeline refuses MGET
                pipe.get(entry_key(campaign_id))
            return pipe.execute()

        version, built, *rest = self._call(read, "read")
        members, entries = rest[: len(campaign_ids)], rest[len(campaign_ids) :]
        states = [(bool(m), e) for m, e in zip(members, entries, strict=True)]
        return int(version or 0), bool(built), states

    def read_raw(self, campaign_ids: Sequence[str]) -> list[bytes | None]:
        """The JSON entries of these ids, in order (None where missing or expired)."""
        if not campaign_ids:
            return []
        keys = [entry_key(i) for i in campaign_ids]
        return self._call(lambda: self._redis.mget(keys), "read")

    def read(self, campaign_ids: Sequence[str]) -> dict[str, Campaign | None]:
        """The cached campaigns by id; None where missing, expired or unreadable."""
        raw = self.read_raw(campaign_ids)
        return {i: parse_entry(data) for i, data in zip(campaign_ids, raw, strict=True)}

    def fill(self, campaigns: Iterable[Campaign]) -> None:
        """Put campaigns read from PostgreSQL back into the cache, never over a newer entry.

        SET NX: a writer's entry (written after its commit) always wins over a fill that read
        PostgreSQL before that commit.
        """
        items = list(campaigns)
        if not items:
            return

        def write() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for campaign in items:
                pipe.set(entry_key(campaign.id), entry_json(campaign), ex=self._ttl, nx=True)
            pipe.execute()

        self._call(write, "write")

    def rebuild(self, source: CampaignSource, *, attempts: int = 3) -> tuple[list[Campaign], int]:
        """Rebuild campaigns::all and the active entries from PostgreSQL: (campaigns, version).

        Stored (set, entries, marker in one MULTI) only if no change was written meanwhile:
        the version is read before PostgreSQL and checked again under WATCH; a writer bumps it
        after its commit, so a rebuild that might miss a commit is not stored and PostgreSQL is
        read again. If every attempt raced with writers, the campaigns read last are returned
        unstored (the next reader tries again). Also what heals the set after a write whose
        Redis step failed: the snapshot calls this on its periodic full reload.
        """
        active: list[Campaign] = []
        version = 0
        for _ in range(max(1, attempts)):
            version = self.version()
            active = [c for c in source.load_active() if c.status == "active"]
            if self._store_rebuilt(active, version):
                break
        return active, version

    def _store_rebuilt(self, active: list[Campaign], version: int) -> bool:
        def attempt() -> bool:
            with self._redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(VERSION_KEY)
                    if int(pipe.get(VERSION_KEY) or 0) != version:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.delete(ACTIVE_SET_KEY)
                    ids = [c.id for c in active]
                    for start in range(0, len(ids), 1000):
                        pipe.sadd(ACTIVE_SET_KEY, *ids[start : start + 1000])
                    for campaign in active:
                        pipe.set(entry_key(campaign.id), entry_json(campaign), ex=self._ttl)
                    pipe.set(BUILT_KEY, str(version))
                    pipe.execute()
                    return True
                except redis_errors.WatchError:
                    return False

        return bool(self._call(attempt, "write"))

    def _call(self, operation: Any, action: str) -> Any:
        try:
            return operation()
        except UNREACHABLE_ERRORS as exc:
            raise UpstreamUnavailable(f"campaign cache unavailable: could not {action}") from exc
        except REDIS_ERRORS as exc:
            raise UpstreamFailed(f"campaign cache error: Redis refused to {action}") from exc


def parse_entry(data: bytes | str | None) -> Campaign | None:
    """A cache entry as a Campaign; None if missing or not a valid campaign (treated as a miss)."""
    if data is None:
        return None
    try:
        return Campaign.model_validate_json(data)
    except ValidationError:
        return None


def entry_json(campaign: Campaign) -> str:
    """The JSON a cache entry holds for a campaign (models.Campaign by alias)."""
    return campaign.model_dump_json(by_alias=True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
