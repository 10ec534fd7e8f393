"""`make reconcile`: one day's numbers from every record, campaign by campaign, and every
difference (shared_layer.reporting.service.reconciliation). Exit code 1 when there is one.

    python -m localplatform --profile dev reconcile [--date 2026-12-03]

The same check against any platform's stores, given their addresses (the kind cluster's through
kubectl port-forward: infra/k8s/reconcile.sh, `make kind-reconcile`):

    python -m localplatform.reconcile --database-url URL --redis-url URL \
        --postgres-password-file FILE [--date 2026-12-03]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from datetime import UTC, date, datetime
from pathlib import Path

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
    options = _options("localplatform reconcile")
    day = options.parse_args(argv).date
    return _printed(check(profile, day))


def main(argv: list[str] | None = None) -> int:
    """The check against the stores at the given addresses; exit 1 on a difference."""
    options = _options("python -m localplatform.reconcile")
    options.add_argument("--database-url", required=True, help="postgresql://user@host:port/db")
    options.add_argument("--redis-url", required=True, help="redis://host:port/0")
    options.add_argument("--postgres-password-file", required=True, type=Path)
    args = options.parse_args(argv)
    password = args.postgres_password_file.read_text().strip()
    return _printed(check_stores(args.database_url, password, args.redis_url, args.date))


def _options(prog: str) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(prog=prog)
    options.add_argument("--date", type=date.fromisoformat, default=None, help="UTC day (today)")
    return options


def _printed(report: DayReconciliation) -> int:
    # A pipe or a CI log is not a terminal: give the table room instead of rich's 80 columns.
    print_report(report, Console(width=None if sys.stdout.isatty() else 160))
    return 1 if report.differences else 0


def check(
    profile: Profile, day: date | None = None, only: Collection[str] | None = None
) -> DayReconciliation:
    """Reconcile `day` (default today, UTC) on the profile's platform (host-side addresses),
    every campaign or those in `only`."""
    env = profile.host_env()
    password = secrets.read(profile, "postgres-password")
    return check_stores(env["DATABASE_URL"], password, env["REDIS_URL"], day, only)


def check_stores(
    database_url: str,
    postgres_password: str,
    redis_url: str,
    day: date | None = None,
    only: Collection[str] | None = None,
) -> DayReconciliation:
    """Reconcile `day` (default today, UTC) on the stores at these addresses."""
    today = datetime.now(UTC).date()
    database = Database.from_url(database_url, password=postgres_password, size=1)
    client = connect(redis_url, timeout_s=10, retries=1)
    try:
        return reconcile_day(
            client,
            database,
            day or today,
            today=today,
            only=only,
            shards=key_layout(redis_url),
            counter_keys=CounterKeys.for_url(redis_url),
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


if __name__ == "__main__":
    sys.exit(main())
