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

The keys are written by the ledger's own store (`store.budget_ledger.LedgerRebuild`, with the
lock, the ready keys and the outbox check), the spend is read by `store.recorded_spend`: this
module decides when, and money still moves only in `store.budget_ledger`.

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
from typing import Any

from shared_layer.bidding.store.budget_ledger import (
    DAILY_KEY_TTL_SECONDS,
    LEDGER_READY_PREFIX,
    LedgerRebuild,
)
from shared_layer.bidding.store.recorded_spend import campaign_spend
from shared_layer.kernel.background import Retried
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.log import get_logger
from shared_layer.kernel.storage.outbox import OUTBOX_PREFIX
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.domain.progress import PipelineProgress

__all__ = ["BudgetRecovery"]

_LOGGER = get_logger("budget-recovery")


class BudgetRecovery:
    """Rebuilds the ledger when it is not ready; at most one replica at a time does the work."""

    def __init__(
        self,
        client: Any,
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
        """`client`: the Redis client of the ledger, whose keys only `LedgerRebuild` touches."""
        self._ledger = LedgerRebuild(
            client,
            daily_key_ttl_seconds=daily_key_ttl_seconds,
            shards=shards,
            outbox_prefix=outbox_prefix,
            ready_prefix=ready_prefix,
        )
        self._db = database
        self._progress = progress
        self._clock = clock
        self._lock_ttl_s = lock_ttl_s
        self._poll_s = poll_s
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
        if not self._ledger.unready():
            return True
        lease = self._ledger.lease(self._lock_ttl_s)
        if not lease.take():
            return False
        try:
            deadline = time.monotonic() + timeout_s
            while not self._drained(self._ledger.unready()):
                if time.monotonic() > deadline:
                    _LOGGER.warning("budget ledger not rebuilt: the event pipeline did not drain")
                    return False
                lease.refresh()
                time.sleep(self._poll_s)
            campaigns = self._write_ledger(self._ledger.unready())
            _LOGGER.info("budget ledger rebuilt from PostgreSQL", extra={"campaigns": campaigns})
            return True
        finally:
            lease.release()

    def _drained(self, shards: list[int]) -> bool:
        return self._ledger.outboxes_empty(shards) and self._progress.drained()

    def _write_ledger(self, shards: list[int]) -> int:
        spend = campaign_spend(self._db, self._clock())
        by_shard: dict[int, list[str]] = {shard: [] for shard in shards}
        for campaign_id in spend:
            by_shard.get(self._ledger.shards.of(campaign_id), []).append(campaign_id)
        for shard, campaign_ids in by_shard.items():
            rows = [(campaign_id, *spend[campaign_id]) for campaign_id in campaign_ids]
            self._ledger.write(shard, rows, self._clock().isoformat())
        return sum(len(campaign_ids) for campaign_ids in by_shard.values())
