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
from typing import Any

from shared_layer.kernel.money import from_decimal
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.store.live_counters import ONE_SERVER, CounterKeys
from shared_layer.reporting.domain.reconciliation import CampaignFigures, Difference, differences
from shared_layer.reporting.store.reconciliation import LEDGER_KEEPS_S, read_day

__all__ = ["DayReconciliation", "reconcile_day"]


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
    records = read_day(
        redis_client, database, day, only=only, shards=shards, counter_keys=counter_keys
    )
    campaigns, own_day = records.campaigns, records.own_day
    ledger_kept = (today - day).days * 86_400 < LEDGER_KEEPS_S - 86_400
    ledger_ready = ledger_kept and records.ledger_ready
    live_compared = day == today and records.live_ready
    notes = []
    if not ledger_kept:
        notes.append("the budget ledger keeps a day's spend for 3 days: not compared")
    elif not ledger_ready:
        notes.append("the budget ledger is being rebuilt: its spend is not compared")
    if day != today:
        notes.append("live counters are compared for today only (analytics reads them then)")
    elif not records.live_ready:
        notes.append("the live counters are being rebuilt: analytics serves today from PostgreSQL")
    figures = []
    found = []
    # Exchange bids hold their price in the ledger until settled or released: the ledger's
    # spend less what is still held is what events recorded; the tally itself must balance.
    held = {}
    for campaign, tally in sorted(records.reservations.items()):
        held[campaign] = tally.open_micros
        closed = tally.settled + tally.released
        if tally.open_micros < 0 or closed > tally.reserved:
            values = {"reserved": tally.reserved_micros, "settled": tally.settled_reserved_micros,
                      "released": tally.released_micros}  # fmt: skip
            found.append(Difference(campaign, "spend", values))
        notes.append(
            f"{campaign} reservations: {tally.reserved} made, {tally.settled} settled"
            f" ({tally.settled_micros} micros), {tally.released} released,"
            f" {tally.reserved - closed} open ({tally.open_micros} micros held in the ledger)"
        )
    for campaign, (zone, own_spend) in sorted(own_day.items()):
        notes.append(f"{campaign} keeps its budget day in {zone}: ledger compared with its events")
        ledger_value = int(records.ledger[campaign] or 0) - held.get(campaign, 0)
        if ledger_ready and ledger_value != own_spend:
            values_ = {"ledger": ledger_value, f"events ({zone} day)": own_spend}
            found.append(Difference(campaign, "spend", values_))
    for campaign in campaigns:
        ledger = records.ledger[campaign]
        pg = records.metrics.get(campaign, (0, 0, None))
        log = records.logged.get(campaign, (0, 0, None))
        live_values = [int(v or 0) if live_compared else None for v in records.live[campaign]]
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
                    "ledger": int(ledger or 0) - held.get(campaign, 0)
                    if ledger_ready and campaign not in own_day
                    else None,
                    "daily_metrics": from_decimal(pg[2]),
                    "live": live_values[2],
                    "events": from_decimal(log[2]),
                },
            )
        )
    return DayReconciliation(day, figures, differences(figures) + found, notes)
