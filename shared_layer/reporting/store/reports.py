"""What a campaign report reads: the day cache and today's live counters in Redis (one MGET), the
campaign and its daily_metrics rows in PostgreSQL (one statement), and the campaign's pacing
inputs (the campaign cache or its row, and the budget ledger's spend).

Other features' records are read through their own stores (`campaigns.store`,
`bidding.store.budget_ledger`) or by their owners' key names (`pipeline.store.live_counters`).
Driver errors become `UpstreamUnavailable`.

Example::

    store = ReportStore(redis_client, database)
    raw = store.read_redis("3f2b...", closed_days, today)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from shared_layer.bidding.store.budget_ledger import RedisBudgetLedger
from shared_layer.campaigns.store.cache import CampaignCache
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.errors import UpstreamUnavailable
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.money import Micros
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.redis_connection import REDIS_ERRORS, read_many
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.store.live_counters import ONE_SERVER, CounterKeys
from shared_layer.reporting.domain.analytics import DayCounts, cache_key

__all__ = ["RedisRead", "ReportStore"]

_DB_ATTEMPTS: Final = 2  # a pooled connection may be stale after a PostgreSQL restart

# The campaign (one row even without metrics) and its rows for the days asked for.
_SQL: Final = """
SELECT c.id, m.date, m.impressions, m.clicks, m.spend
FROM campaigns c
LEFT JOIN daily_metrics m
  ON m.campaign_id = c.id AND m.date = ANY(CAST(:days AS date[]))
WHERE c.id = CAST(:campaign_id AS uuid)
"""


@dataclass(frozen=True)
class RedisRead:
    """The raw values of one MGET: a cache entry per closed day (None: not cached), and when the
    range has today its three live counters and whether their ready key is there."""

    cached: list[Any]
    live: list[Any] | None
    live_ready: bool


class ReportStore:
    """The reads (and the cache writes) of `service.reports`; see the module docstring."""

    def __init__(
        self,
        redis_client: Any,
        db: Database,
        *,
        clock: Clock = utc_now,
        shards: Shards = SINGLE,
        counter_keys: CounterKeys = ONE_SERVER,
    ) -> None:
        self._redis = redis_client
        self._db = db
        self._clock = clock
        self._shards = shards
        self._counter_keys = counter_keys
        self._campaigns = CampaignStore(db)
        self._pacing_reads: tuple[CampaignCache, RedisBudgetLedger] | None = None  # on first use

    def campaign(self, campaign_id: str) -> Campaign | None:
        """The campaign from the cache, else from PostgreSQL; None if it does not exist."""
        cache, _ledger = self._pacing()
        campaign = cache.read([campaign_id]).get(campaign_id)
        if campaign is None:
            record = self._campaigns.get(campaign_id)
            campaign = record.campaign if record is not None else None
        return campaign

    def spent_on(self, campaign_id: str, day: date) -> Micros:
        """The budget ledger's spend of the campaign on its `day`."""
        _cache, ledger = self._pacing()
        spent, _lifetime = ledger.spent(campaign_id, day)
        return spent

    def _pacing(self) -> tuple[CampaignCache, RedisBudgetLedger]:
        if self._pacing_reads is None:
            ledger = RedisBudgetLedger(self._redis, clock=self._clock, shards=self._shards)
            self._pacing_reads = (CampaignCache(self._redis), ledger)
        return self._pacing_reads

    def read_redis(
        self, campaign_id: str, closed: Sequence[date], today: date | None
    ) -> RedisRead | None:
        """One MGET (one per slot on a Redis Cluster); None when there is nothing to read."""
        keys = [cache_key(campaign_id, day) for day in closed]
        if today is not None:
            names = self._counter_keys
            keys += [
                names.stats(kind, campaign_id, today) for kind in ("impressions", "clicks", "spend")
            ]
            keys.append(names.ready(names.shard_of(campaign_id)))
        if not keys:
            return None
        try:
            values = read_many(self._redis, keys)
        except REDIS_ERRORS as exc:
            raise UpstreamUnavailable(f"redis unavailable for analytics: {exc}") from exc
        if today is None:
            return RedisRead(values, None, True)
        return RedisRead(
            values[: len(closed)], values[len(closed) : len(closed) + 3], values[-1] is not None
        )

    def read_days(self, campaign_id: str, days: Sequence[date]) -> dict[date, DayCounts] | None:
        """The rows for `days` ({} if none), or None when the campaign does not exist."""
        days_literal = "{" + ",".join(day.isoformat() for day in days) + "}"
        for attempt in range(_DB_ATTEMPTS):
            try:
                rows = self._db.run(_SQL, days=days_literal, campaign_id=campaign_id)
                break
            except UpstreamUnavailable:
                if attempt + 1 == _DB_ATTEMPTS:
                    raise
        if not rows:
            return None
        return {
            day: DayCounts(int(impressions or 0), int(clicks or 0), _spend_micros(spend))
            for _id, day, impressions, clicks, spend in rows
            if day is not None
        }

    def fill_cache(self, campaign_id: str, entries: dict[date, str], ttl_s: int) -> None:
        """Cache each day's entry for `ttl_s` (one pipelined write)."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            for day, entry in entries.items():
                pipe.set(cache_key(campaign_id, day), entry, ex=ttl_s)
            pipe.execute()
        except REDIS_ERRORS as exc:
            raise UpstreamUnavailable(f"could not fill the analytics cache: {exc}") from exc


def _spend_micros(spend: Decimal | None) -> int:
    """daily_metrics.spend (DECIMAL(18,6)) as exact micros."""
    if spend is None:
        return 0
    scaled = spend.scaleb(6)
    micros = int(scaled)
    if micros != scaled:
        raise ValueError(f"spend {spend} is not a whole number of micros")
    return micros
