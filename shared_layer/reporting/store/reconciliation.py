"""What a day's reconciliation reads: one PostgreSQL transaction and one Redis MGET.

The transaction (REPEATABLE READ) sees daily_metrics and events_log at one instant; the MGET reads
the budget ledger's and the live counters' keys of every campaign with anything that day, and
both ready keys. The audit reads other features' records by their owners' key names
(`bidding.store.budget_ledger`, `pipeline.store.live_counters`) and never writes.

Example::

    records = read_day(redis_client, database, date(2026, 12, 3))
    records.ledger["3f2b..."]      # the ledger's spend that day (None: no key)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from shared_layer.bidding.domain.pacing import day_bounds
from shared_layer.bidding.store.budget_ledger import (
    DAILY_KEY_TTL_SECONDS,
    daily_spent_key,
    ledger_ready_key,
)
from shared_layer.bidding.store.recorded_spend import spend_between
from shared_layer.bidding.store.reservations import RedisReservations, Tally
from shared_layer.kernel.money import Micros
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.redis_connection import read_many
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.store.live_counters import ONE_SERVER, STAT_KINDS, CounterKeys

__all__ = ["LEDGER_KEEPS_S", "DayRecords", "read_day"]

LEDGER_KEEPS_S: Final = DAILY_KEY_TTL_SECONDS  # how long the ledger keeps a day's spend

_METRICS: Final = """
SELECT CAST(campaign_id AS text), impressions, clicks, spend
FROM daily_metrics WHERE date = CAST(:day AS date)
"""
_EVENTS: Final = """
SELECT CAST(campaign_id AS text),
       count(*) FILTER (WHERE event_type = 'impression'),
       count(*) FILTER (WHERE event_type = 'click'),
       COALESCE(sum(price), 0)
FROM events_log WHERE day = CAST(:day AS date)
GROUP BY campaign_id
"""
# A campaign in another time zone keeps its daily budget on its own day: its ledger is compared
# with its impressions in events_log between that day's local midnights (UTC timestamps).
_ZONES: Final = """
SELECT CAST(id AS text), time_zone FROM campaigns
WHERE id = ANY(CAST(:ids AS uuid[])) AND time_zone <> 'UTC'
"""


@dataclass(frozen=True)
class DayRecords:
    """Every record of one day, raw: rows as PostgreSQL returns them, Redis values as stored."""

    campaigns: list[str]
    metrics: dict[str, tuple[Any, ...]]  # campaign -> (impressions, clicks, spend) of daily_metrics
    logged: dict[str, tuple[Any, ...]]  # campaign -> (impressions, clicks, spend) of events_log
    own_day: dict[str, tuple[str, Micros]]  # campaign in another zone -> (zone, its day's spend)
    live_ready: bool
    ledger_ready: bool
    ledger: dict[str, Any]  # campaign -> the ledger's daily spend key
    live: dict[str, list[Any]]  # campaign -> the live counters, in STAT_KINDS order
    # campaign -> its exchange bids' reservation tally of the day (bidding.store.reservations)
    reservations: dict[str, Tally] = field(default_factory=dict)


def read_day(
    redis_client: Any,
    database: Database,
    day: date,
    *,
    only: Collection[str] | None = None,
    shards: Shards = SINGLE,
    counter_keys: CounterKeys = ONE_SERVER,
) -> DayRecords:
    """The day's records of every campaign (of those in `only`, if given)."""
    with database.transaction(read_only=True) as conn:
        metrics = {r[0]: r[1:] for r in conn.run(_METRICS, day=day.isoformat()) or []}
        logged = {r[0]: r[1:] for r in conn.run(_EVENTS, day=day.isoformat()) or []}
        campaigns = sorted(c for c in set(metrics) | set(logged) if only is None or c in set(only))
        zones = dict(conn.run(_ZONES, ids=campaigns) or [])
        bounds = {c: day_bounds(zone, day) for c, zone in zones.items()}
        spent = spend_between(conn.run, {c: (b.start, b.end) for c, b in bounds.items()})
        own_day = {c: (zone, spent.get(c, 0)) for c, zone in zones.items()}
    ready_keys = [ledger_ready_key(shards, k) for k in shards.all()]
    live_ready_keys = [counter_keys.ready(k) for k in counter_keys.all()]
    keys = [*live_ready_keys, *ready_keys]
    for campaign in campaigns:
        keys.append(daily_spent_key(campaign, day, shards))
        keys += [counter_keys.stats(kind, campaign, day) for kind in STAT_KINDS]
    values = read_many(redis_client, keys)  # one MGET per slot on a Redis Cluster
    first = len(live_ready_keys) + len(ready_keys)
    per_campaign = {c: values[first + 4 * n : first + 4 + 4 * n] for n, c in enumerate(campaigns)}
    return DayRecords(
        campaigns=campaigns,
        metrics=metrics,
        logged=logged,
        own_day=own_day,
        live_ready=all(v is not None for v in values[: len(live_ready_keys)]),
        ledger_ready=all(v is not None for v in values[len(live_ready_keys) : first]),
        ledger={c: v[0] for c, v in per_campaign.items()},
        live={c: list(v[1:]) for c, v in per_campaign.items()},
        reservations=_reservations(redis_client, campaigns, day, shards),
    )


def _reservations(
    redis_client: Any, campaigns: list[str], day: date, shards: Shards
) -> dict[str, Tally]:
    """Each campaign's reservation tally of `day` (only campaigns that reserved anything)."""
    store = RedisReservations(redis_client, shards=shards)
    tallies = {c: store.tally(c, day) for c in campaigns}
    return {c: t for c, t in tallies.items() if t.reserved}
