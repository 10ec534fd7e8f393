"""The spend PostgreSQL records, read for the budget ledger: a rebuild and the reconciliation.

PostgreSQL's record is computed from impression events (daily_metrics, campaigns.lifetime_spent,
events_log); the ledger in Redis must agree with it. `campaign_spend` is what a rebuild writes:
each campaign's lifetime spend and its spend on its own day (daily_metrics' UTC day for UTC
campaigns, the sum of its impressions in events_log since its local midnight for the others).

Example::

    spend = campaign_spend(database, now)    # {campaign id: (its day, spent that day, lifetime)}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from shared_layer.bidding.domain.pacing import day_in_zone
from shared_layer.kernel.money import MICROS_PER_UNIT, Micros
from shared_layer.kernel.storage.postgres import Database

__all__ = ["campaign_spend", "spend_between", "spend_snapshot"]

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
        between = {campaign_id: (start, end) for campaign_id, (_, start, end) in local.items()}
        for campaign_id, spent in spend_between(database.run, between).items():
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
