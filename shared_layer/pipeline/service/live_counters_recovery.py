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

The reads and writes are the stores': the snapshot `store.daily_metrics.read_snapshot`, the lock
and the script `store.live_counters.LiveCounters`; this module decides when.

Example::

    recovery = LiveCountersRecovery(database, counters)
    recovery.ensure()            # starts a background rebuild if the counters are not ready
"""

from __future__ import annotations

from shared_layer.kernel.background import Retried
from shared_layer.kernel.clock import Clock, utc_day, utc_now
from shared_layer.kernel.log import get_logger
from shared_layer.kernel.storage.postgres import Database
from shared_layer.pipeline.store.daily_metrics import read_snapshot
from shared_layer.pipeline.store.live_counters import LiveCounters

__all__ = ["LiveCountersRecovery"]
_LOGGER = get_logger("live-counters-recovery")


class LiveCountersRecovery:
    """Rebuilds today's counters when they are not ready; one replica at a time does it."""

    def __init__(
        self,
        database: Database,
        counters: LiveCounters,
        *,
        clock: Clock = utc_now,
        lock_ttl_s: int = 60,
    ) -> None:
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
        lease = self._counters.lease(self._lock_ttl_s)
        if not lease.take():
            return False
        try:
            return all([self._rebuild_shard(shard) for shard in lost])
        finally:
            lease.release()

    def _rebuild_shard(self, shard: int) -> bool:
        lost_at = self._counters.lost_at(shard)
        since_loss = self._counters.seconds_since(lost_at) if lost_at else 0
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
