"""Rebuilding today's live counters in Redis from PostgreSQL after Redis lost its data.

Why: analytics reads today from the live counters. If Redis comes back empty (restarted without
its AOF, flushed, replaced), the counters would show only what was counted since. The ready key
(``stats::live::ready``) goes with them, so analytics reads today from PostgreSQL meanwhile
(`source: "postgres"`), and live-counters calls `ensure` whenever a batch finds it missing:

1. one replica takes the rebuild lock (``stats::live::rebuild-lock``; a replica that dies lets
   it expire and another takes over);
2. it reads, in ONE PostgreSQL snapshot (REPEATABLE READ), today's daily_metrics per campaign
   and the events of today logged since shortly before the loss (lost-at minus the dedupe
   window; a BRIN index on events_log.created_at, migration 0008, finds them);
3. one Lua script (pipeline/store/live_counters_rebuild.lua) makes the counters PostgreSQL's numbers
   plus what live-counters counted meanwhile and PostgreSQL did not yet have, marks those
   recent events seen, and sets the ready key.

Race-free against batches counted meanwhile, without pausing the pipeline: live-counters keeps
counting while not ready and keeps each id it counted (``live::seen::{id}`` = '1'); an event
both in the snapshot and counted live is found by its id and taken off once; an event counted
after the script finds its id marked and is not counted again; an event logged after the
snapshot is counted live as usual. What this assumes: an event counted live since the loss and
also in the snapshot was logged by daily-metrics at most the dedupe window before the loss
(both functions get the same batches from the connector, within seconds of each other).

Example::

    recovery = LiveCountersRecovery(redis_client, database, counters)
    recovery.ensure()            # starts a background rebuild if the counters are not ready
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Final

import redis
from aws_lambda_powertools import Logger

from shared_layer.kernel.background import Retried
from shared_layer.kernel.clock import Clock, utc_day, utc_now
from shared_layer.kernel.money import from_decimal
from shared_layer.kernel.storage.postgres import Database
from shared_layer.pipeline.store.live_counters import DaySnapshot, LiveCounters

__all__ = ["REBUILD_LOCK_KEY", "LiveCountersRecovery", "read_snapshot"]

REBUILD_LOCK_KEY: Final = "stats::live::rebuild-lock"
_LOGGER = Logger(service="live-counters-recovery")

_TOTALS: Final = """
SELECT CAST(campaign_id AS text), impressions, clicks, spend
FROM daily_metrics WHERE date = CAST(:day AS date)
"""
# created_at is UTC wall time (sessions run in UTC), LOCALTIMESTAMP too.
_RECENT: Final = """
SELECT CAST(event_id AS text), CAST(campaign_id AS text), event_type, price
FROM events_log
WHERE day = CAST(:day AS date)
  AND created_at >= LOCALTIMESTAMP - make_interval(secs => CAST(:seconds AS double precision))
"""


def read_snapshot(database: Database, day: date, *, lost_at: str, recent_s: float) -> DaySnapshot:
    """What PostgreSQL holds for `day`, in one transaction; `recent_s`: how far back the
    recent events reach (by arrival)."""
    with database.transaction(read_only=True) as conn:
        totals = conn.run(_TOTALS, day=day.isoformat()) or []
        recent = conn.run(_RECENT, day=day.isoformat(), seconds=recent_s) or []
    return DaySnapshot(
        day=day,
        totals={row[0]: (int(row[1]), int(row[2]), from_decimal(row[3])) for row in totals},
        recent=tuple((r[0], r[1], r[2] == "click", from_decimal(r[3])) for r in recent),
        lost_at=lost_at,
    )


class LiveCountersRecovery:
    """Rebuilds today's counters when they are not ready; one replica at a time does it."""

    def __init__(
        self,
        client: redis.Redis,
        database: Database,
        counters: LiveCounters,
        *,
        clock: Clock = utc_now,
        lock_ttl_s: int = 60,
    ) -> None:
        self._redis = client
        self._db = database
        self._counters = counters
        self._clock = clock
        self._lock_ttl_s = lock_ttl_s
        self._background = Retried(
            self.rebuild,
            name="live-counters-recovery",
            logger=_LOGGER,
            failure="live counters rebuild failed; retrying",
            first_pause_s=0.2,
            longest_pause_s=5.0,
        )

    def ensure(self) -> None:
        """Start a background rebuild unless one runs in this process (cheap to call often)."""
        self._background.ensure()

    def rebuild(self) -> bool:
        """Rebuild now if needed. True once the counters are ready; False if another replica
        holds the lock or Redis lost its data again during the rebuild (call again).

        On a Redis Cluster only the shards whose ready key is gone (those of the master that
        lost its data) are rebuilt, each from a snapshot read under its own lost-at time.
        """
        lost = self._counters.lost_shards()
        if not lost:
            return True
        token = uuid.uuid4().hex
        if not self._redis.set(REBUILD_LOCK_KEY, token, nx=True, ex=self._lock_ttl_s):
            return False
        try:
            return all([self._rebuild_shard(shard) for shard in lost])
        finally:
            if self._redis.get(REBUILD_LOCK_KEY) == token.encode():
                self._redis.delete(REBUILD_LOCK_KEY)

    def _rebuild_shard(self, shard: int) -> bool:
        lost_at = self._counters.lost_at(shard)
        now_s = int(self._redis.time()[0]) if lost_at else 0
        since_loss = max(now_s - int(lost_at), 0) if lost_at else 0
        snapshot = read_snapshot(
            self._db,
            utc_day(self._clock),
            lost_at=lost_at,
            recent_s=since_loss + self._counters.dedupe_s,
        )
        overlap = self._counters.rebuild(
            snapshot, ready_value=self._clock().isoformat(), shard=shard
        )
        if overlap is None:
            return False
        _LOGGER.info(
            "live counters rebuilt from PostgreSQL",
            extra={
                "shard": shard,
                "campaigns": len(snapshot.totals),
                "recentEvents": len(snapshot.recent),
                "countedMeanwhile": overlap,
            },
        )
        return True
