"""Rebuilding the budget ledger in Redis from PostgreSQL after Redis lost its data.

Why: Redis is the hot ledger (budget.py), PostgreSQL the record computed from impression events
(daily_metrics, campaigns.lifetime_spent). If Redis comes back empty (restarted without its
AOF, flushed, replaced, a cluster master lost with its replica), every campaign would look
unspent and bid would overspend. The charge script therefore refuses while the ready key of the
campaign's shard (``budget::ledger::ready::{shard<k>of<n>}``, `kernel.storage.shards`) is missing,
and this module rebuilds:

1. one replica takes the rebuild lock (``budget::ledger::rebuild-lock``, refreshed while it
   works; a replica that dies lets it expire and another takes over);
2. it waits until every impression already recorded has been counted in PostgreSQL: every
   shard's event outbox in Redis is empty and the Kafka connector's group has committed every
   impression (lag 0 on the `impressions` topic). Nothing new can be charged meanwhile (in the
   shards that are not ready), so this converges;
3. per shard that is not ready, it writes each of the shard's campaigns' lifetime spend and
   today's spend from PostgreSQL into the ledger keys and sets the shard's ready key, in one
   MULTI/EXEC (all keys of a shard share a hash slot, so this holds on a Redis Cluster too).
   Shards that stayed ready (a cluster that lost one master's data) are left alone. "Today" is
   the campaign's day (bidding.domain.pacing.campaign_day): daily_metrics' UTC day for UTC
   campaigns, the sum of the impressions in events_log since the campaign's local midnight for the
   others. That spend is also the whole of the pacing state (the curve is a function of time), so
   pacing resumes where it was.

Spend that Redis had charged but whose events were lost with it (still in the outbox when
Redis died) is lost to both records alike: the rebuilt ledger can only be at or below what was
really delivered, so budgets are never overspent because of a rebuild.

Example::

    recovery = BudgetRecovery(client, database, KafkaPipelineProgress(brokers, group),
                              shards=key_layout(url))
    recovery.ensure()            # starts a background rebuild if the ledger is not ready
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

import redis
from aws_lambda_powertools import Logger

from shared_layer.bidding.domain.pacing import day_in_zone
from shared_layer.bidding.store.budget_ledger import (
    DAILY_KEY_TTL_SECONDS,
    LEDGER_READY_PREFIX,
    daily_spent_key,
    ledger_ready_key,
    lifetime_spent_key,
)
from shared_layer.kernel.background import Retried
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.money import MICROS_PER_UNIT, Micros
from shared_layer.kernel.storage.outbox import OUTBOX_PREFIX, outbox_streams
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.store.progress import PipelineProgress

__all__ = [
    "REBUILD_LOCK_KEY",
    "BudgetRecovery",
    "campaign_spend",
    "spend_between",
    "spend_snapshot",
]

REBUILD_LOCK_KEY: Final = "budget::ledger::rebuild-lock"
_LOGGER = Logger(service="budget-recovery")

_SPEND_BY_CAMPAIGN: Final = """
SELECT c.id::text, c.lifetime_spent, m.spend, c.time_zone
FROM campaigns c
LEFT JOIN daily_metrics m ON m.campaign_id = c.id AND m.date = CAST(:today AS date)
"""
# Spend of campaigns in other time zones on their own day: their impressions in events_log
# between the local midnights (UTC timestamps), the partitions of those UTC days only.
_SPEND_IN_LOCAL_DAY: Final = """
SELECT b.id::text, COALESCE(SUM(e.price), 0)
FROM unnest(CAST(:ids AS uuid[]), CAST(CAST(:starts AS text[]) AS timestamp[]),
            CAST(CAST(:ends AS text[]) AS timestamp[])) AS b(id, since, until)
LEFT JOIN events_log e ON e.campaign_id = b.id AND e.event_type = 'impression'
  AND e.timestamp >= b.since AND e.timestamp < b.until
  AND e.day BETWEEN CAST(b.since AS date) AND CAST(b.until AS date)
GROUP BY b.id
"""


class BudgetRecovery:
    """Rebuilds the ledger when it is not ready; at most one replica at a time does the work."""

    def __init__(
        self,
        client: redis.Redis,
        database: Database,
        progress: PipelineProgress,
        *,
        clock: Clock = utc_now,
        lock_ttl_s: int = 30,
        poll_s: float = 0.5,
        daily_key_ttl_seconds: int = DAILY_KEY_TTL_SECONDS,
        shards: Shards = SINGLE,
        outbox_prefix: str = OUTBOX_PREFIX,
        ready_prefix: str = LEDGER_READY_PREFIX,
    ) -> None:
        self._redis = client
        self._shards = shards
        self._streams = outbox_streams(shards, outbox_prefix)
        self._ready_keys = [ledger_ready_key(shards, k, ready_prefix) for k in shards.all()]
        self._db = database
        self._progress = progress
        self._clock = clock
        self._lock_ttl_s = lock_ttl_s
        self._poll_s = poll_s
        self._ttl = daily_key_ttl_seconds
        self._background = Retried(
            self.rebuild,
            name="budget-recovery",
            logger=_LOGGER,
            failure="budget ledger rebuild failed; retrying",
        )

    def ensure(self) -> None:
        """Start a background rebuild unless one runs in this process (cheap to call often)."""
        self._background.ensure()

    def rebuild(self, timeout_s: float = 600.0) -> bool:
        """Rebuild now if needed. True once the ledger is ready; False if another replica holds
        the lock or the pipeline did not drain within `timeout_s`."""
        if not self._unready():
            return True
        token = uuid.uuid4().hex
        if not self._redis.set(REBUILD_LOCK_KEY, token, nx=True, ex=self._lock_ttl_s):
            return False
        try:
            deadline = time.monotonic() + timeout_s
            while not self._drained(self._unready()):
                if time.monotonic() > deadline:
                    _LOGGER.warning("budget ledger not rebuilt: the event pipeline did not drain")
                    return False
                self._redis.set(REBUILD_LOCK_KEY, token, xx=True, ex=self._lock_ttl_s)
                time.sleep(self._poll_s)
            campaigns = self._write_ledger(self._unready())
            _LOGGER.info("budget ledger rebuilt from PostgreSQL", extra={"campaigns": campaigns})
            return True
        finally:
            if self._redis.get(REBUILD_LOCK_KEY) == token.encode():
                self._redis.delete(REBUILD_LOCK_KEY)

    def _unready(self) -> list[int]:
        """The shards whose ready key is missing (one EXISTS each: different slots)."""
        return [k for k in self._shards.all() if not self._redis.exists(self._ready_keys[k])]

    def _drained(self, shards: list[int]) -> bool:
        outboxes_empty = all(self._redis.xlen(self._streams[k]) == 0 for k in shards)
        return outboxes_empty and self._progress.drained()

    def _write_ledger(self, shards: list[int]) -> int:
        spend = campaign_spend(self._db, self._clock())
        by_shard: dict[int, list[str]] = {shard: [] for shard in shards}
        for campaign_id in spend:
            by_shard.get(self._shards.of(campaign_id), []).append(campaign_id)
        for shard, campaign_ids in by_shard.items():
            pipe = self._redis.pipeline(transaction=True)
            for campaign_id in campaign_ids:
                day, daily, lifetime = spend[campaign_id]
                pipe.set(lifetime_spent_key(campaign_id, self._shards), lifetime)
                daily_key = daily_spent_key(campaign_id, day, self._shards)
                if daily:
                    pipe.set(daily_key, daily, ex=self._ttl)
                else:
                    pipe.delete(daily_key)
            pipe.set(self._ready_keys[shard], self._clock().isoformat())
            pipe.execute()
        return sum(len(campaign_ids) for campaign_ids in by_shard.values())


def _micros(amount: Decimal | None) -> Micros:
    """PostgreSQL's DECIMAL(18, 6) spend as exact micros (None: nothing spent)."""
    if amount is None:
        return 0
    return int(Decimal(amount) * MICROS_PER_UNIT)


def campaign_spend(database: Database, now: datetime) -> dict[str, tuple[date, Micros, Micros]]:
    """campaign id -> (its current day, spent on that day, lifetime spend) from PostgreSQL."""
    today = now.astimezone(UTC).date()
    rows = database.run(_SPEND_BY_CAMPAIGN, today=today.isoformat())
    spend: dict[str, tuple[date, Micros, Micros]] = {}
    local: dict[str, tuple[date, datetime, datetime]] = {}
    for campaign_id, lifetime, spent_today, zone in rows:
        if zone == "UTC":
            spend[campaign_id] = (today, _micros(spent_today), _micros(lifetime))
        else:
            bounds = day_in_zone(zone, now)
            local[campaign_id] = (bounds.day, bounds.start, bounds.end)
            spend[campaign_id] = (bounds.day, 0, _micros(lifetime))
    if local:
        bounds = {campaign_id: (start, end) for campaign_id, (_, start, end) in local.items()}
        for campaign_id, spent in spend_between(database.run, bounds).items():
            day, _, lifetime = spend[campaign_id]
            spend[campaign_id] = (day, spent, lifetime)
    return spend


def spend_between(
    run: Callable[..., Any], bounds: Mapping[str, tuple[datetime, datetime]]
) -> dict[str, Micros]:
    """campaign id -> the price of its impressions in events_log between its two instants
    (a campaign's own day, for one in another time zone); `run`: a Database's or a
    transaction's `run`."""
    ids = list(bounds)
    rows = run(
        _SPEND_IN_LOCAL_DAY,
        ids=ids,
        starts=[_naive_utc(bounds[i][0]) for i in ids],
        ends=[_naive_utc(bounds[i][1]) for i in ids],
    )
    return {campaign_id: _micros(spent) for campaign_id, spent in rows or []}


def _naive_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


def spend_snapshot(database: Database, day: date) -> dict[str, tuple[Micros, Micros]]:
    """campaign id -> (spent on `day`, lifetime spend) from PostgreSQL (for checks and tests)."""
    rows: list[Any] = database.run(_SPEND_BY_CAMPAIGN, today=day.isoformat())
    return {row[0]: (_micros(row[2]), _micros(row[1])) for row in rows}
