"""Reconciling one day: the figures of every campaign from the ledger, daily_metrics, the live
counters and events_log (reporting.domain.reconciliation compares them), for `make reconcile` and
tests.

Reads, per call: one SQL transaction (REPEATABLE READ: daily_metrics and events_log seen at
one instant) and one Redis MGET (ledger and live counters of every campaign with anything that
day, plus both ready keys). The two stores are read one after the other, so on a platform under
load they can differ by what arrived in between: reconcile a quiet pipeline (the fault tests
wait until Kafka's every offset is committed).

Example::

    report = reconcile_day(redis_client, database, date(2026, 12, 3), today=date(2026, 12, 3))
    report.differences      # [] when every record agrees
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from shared_layer.bidding.domain.pacing import day_bounds
from shared_layer.bidding.service.budget_recovery import spend_between
from shared_layer.bidding.store.budget_ledger import (
    DAILY_KEY_TTL_SECONDS,
    daily_spent_key,
    ledger_ready_key,
)
from shared_layer.kernel.money import from_decimal
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.redis_connection import read_many
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.store.live_counters import ONE_SERVER, STAT_KINDS, CounterKeys
from shared_layer.reporting.domain.reconciliation import CampaignFigures, Difference, differences

__all__ = ["DayReconciliation", "reconcile_day"]

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
class DayReconciliation:
    """Every campaign's figures for `day`, what disagrees, and which sources were left out."""

    day: date
    campaigns: list[CampaignFigures]
    differences: list[Difference]
    notes: list[str] = field(default_factory=list)


def reconcile_day(
    redis_client: Any,
    database: Database,
    day: date,
    *,
    today: date,
    only: Collection[str] | None = None,
    shards: Shards = SINGLE,
    counter_keys: CounterKeys = ONE_SERVER,
) -> DayReconciliation:
    """The day's figures from every source (of the campaigns in `only`, if given); see the
    module docstring."""
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
    ledger_kept = (today - day).days * 86_400 < DAILY_KEY_TTL_SECONDS - 86_400
    live_ready = all(v is not None for v in values[: len(live_ready_keys)])
    ledger_ready = ledger_kept and all(v is not None for v in values[len(live_ready_keys) : first])
    live_compared = day == today and live_ready
    notes = []
    if not ledger_kept:
        notes.append("the budget ledger keeps a day's spend for 3 days: not compared")
    elif not ledger_ready:
        notes.append("the budget ledger is being rebuilt: its spend is not compared")
    if day != today:
        notes.append("live counters are compared for today only (analytics reads them then)")
    elif not live_ready:
        notes.append("the live counters are being rebuilt: analytics serves today from PostgreSQL")
    figures = []
    found = []
    for campaign, (zone, own_spend) in sorted(own_day.items()):
        notes.append(f"{campaign} keeps its budget day in {zone}: ledger compared with its events")
        ledger_value = values[first + 4 * campaigns.index(campaign)]
        if ledger_ready and int(ledger_value or 0) != own_spend:
            values_ = {"ledger": int(ledger_value or 0), f"events ({zone} day)": own_spend}
            found.append(Difference(campaign, "spend", values_))
    for n, campaign in enumerate(campaigns):
        ledger, *live = values[first + 4 * n : first + 4 + 4 * n]
        pg = metrics.get(campaign, (0, 0, None))
        log = logged.get(campaign, (0, 0, None))
        live_values = [int(v or 0) if live_compared else None for v in live]
        figures.append(
            CampaignFigures(
                campaign,
                impressions={
                    "daily_metrics": int(pg[0]),
                    "live": live_values[0],
                    "events": int(log[0]),
                },
                clicks={"daily_metrics": int(pg[1]), "live": live_values[1], "events": int(log[1])},
                spend={
                    "ledger": int(ledger or 0)
                    if ledger_ready and campaign not in own_day
                    else None,
                    "daily_metrics": from_decimal(pg[2]),
                    "live": live_values[2],
                    "events": from_decimal(log[2]),
                },
            )
        )
    return DayReconciliation(day, figures, differences(figures) + found, notes)
