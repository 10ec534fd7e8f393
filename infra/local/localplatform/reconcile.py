"""`make reconcile`: one day's numbers from every record, campaign by campaign, and every
difference (shared_layer.reporting.service.reconciliation). Exit code 1 when there is one.

    python -m localplatform --profile dev reconcile [--date 2026-12-03]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from datetime import UTC, date, datetime

from rich.console import Console
from rich.table import Table

from shared_layer.kernel.money import format_micros
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.redis_connection import connect, key_layout
from shared_layer.pipeline.store.live_counters import CounterKeys
from shared_layer.reporting.domain.reconciliation import METRICS
from shared_layer.reporting.service.reconciliation import DayReconciliation, reconcile_day

from . import secrets
from .profile import Profile

_SHORT = {"daily_metrics": "pg", "live": "live", "events": "log", "ledger": "ledger"}
_SOURCES = {
    "impressions": ("daily_metrics", "live", "events"),
    "clicks": ("daily_metrics", "live", "events"),
    "spend": ("ledger", "daily_metrics", "live", "events"),
}


def run(profile: Profile, argv: list[str]) -> int:
    options = argparse.ArgumentParser(prog="localplatform reconcile")
    options.add_argument("--date", type=date.fromisoformat, default=None, help="UTC day (today)")
    day = options.parse_args(argv).date
    report = check(profile, day)
    # A pipe or a CI log is not a terminal: give the table room instead of rich's 80 columns.
    print_report(report, Console(width=None if sys.stdout.isatty() else 160))
    return 1 if report.differences else 0


def check(
    profile: Profile, day: date | None = None, only: Collection[str] | None = None
) -> DayReconciliation:
    """Reconcile `day` (default today, UTC) on the profile's platform (host-side addresses),
    every campaign or those in `only`."""
    env = profile.host_env()
    today = datetime.now(UTC).date()
    database = Database.from_url(
        env["DATABASE_URL"], password=secrets.read(profile, "postgres-password"), size=1
    )
    url = env["REDIS_URL"]
    client = connect(url, timeout_s=10, retries=1)
    try:
        return reconcile_day(
            client,
            database,
            day or today,
            today=today,
            only=only,
            shards=key_layout(url),
            counter_keys=CounterKeys.for_url(url),
        )
    finally:
        database.close()
        client.close()


def print_report(report: DayReconciliation, console: Console) -> None:
    table = Table(title=f"Reconciliation of {report.day.isoformat()} (spend in currency units)")
    table.add_column("campaign", no_wrap=True)
    for metric in METRICS:
        for source in _SOURCES[metric]:
            table.add_column(f"{metric}\n{_SHORT[source]}", justify="right")
    wrong = {(d.campaign_id, d.metric) for d in report.differences}
    for figures in report.campaigns:
        cells = [figures.campaign_id]
        for metric in METRICS:
            style = "bold red" if (figures.campaign_id, metric) in wrong else ""
            for source in _SOURCES[metric]:
                value = figures.of(metric).get(source)
                text = (
                    "-"
                    if value is None
                    else (format_micros(value) if metric == "spend" else str(value))
                )
                cells.append(f"[{style}]{text}[/]" if style else text)
        table.add_row(*cells)
    console.print(table)
    console.print("pg: daily_metrics; live: live counters; log: events_log (x price for spend)")
    for note in report.notes:
        console.print(f"note: {note}")
    if not report.differences:
        console.print(f"[green]{len(report.campaigns)} campaigns: every record agrees[/]")
        return
    console.print(f"[bold red]{len(report.differences)} differences:[/]")
    for difference in report.differences:
        console.print(f"  {difference}")
