"""`reconcile_day` on the test platform's PostgreSQL and Redis for a campaign in another time zone.

Its daily budget (the ledger's daily key) runs on its own day, while daily_metrics and the live
counters keep UTC days: reconcile compares that ledger key with the campaign's impressions in
events_log between its own midnights, and reports a difference there, not a false one against
the UTC day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
import redis

from shared_layer.bidding.store.budget_ledger import daily_spent_key, ledger_ready_key
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.shards import SINGLE
from shared_layer.pipeline.store.daily_metrics import DailyMetrics
from shared_layer.reporting.service.reconciliation import reconcile_day

from .campaign_support import campaign_request, new_id, redis_client
from .test_daily_metrics_handler import impression

RECONCILE_TEST_DB = 11
ZONE = "America/New_York"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis_client(RECONCILE_TEST_DB)
    connection.flushdb()
    connection.set(ledger_ready_key(SINGLE, 0), "test")
    yield connection
    connection.close()


@pytest.fixture
def new_york(db: Database) -> Campaign:
    made = campaign_request(new_id(), timeZone=ZONE).to_campaign(status="paused")
    return CampaignStore(db).create(made).campaign


def test_a_campaign_in_another_zone_has_its_ledger_compared_over_its_own_day(
    client: redis.Redis, db: Database, new_york: Campaign
) -> None:
    today = datetime.now(UTC).date()
    midnight = datetime.combine(today, time(0), tzinfo=UTC)
    # 03:00 UTC is still yesterday in New York; 12:00 UTC is today there too.
    late_yesterday = impression(new_york, 1_500, at=midnight + timedelta(hours=3))
    today_there = impression(new_york, 4_000, at=midnight + timedelta(hours=12))
    DailyMetrics(db, retention_days=30).count([late_yesterday, today_there], today=today)
    client.set(daily_spent_key(new_york.id, today), 4_000)  # its own day: one impression

    report = reconcile_day(client, db, today, today=today, only=[new_york.id])
    assert report.differences == []  # against the UTC day (5,500) it would differ
    (figures,) = report.campaigns
    assert figures.spend["ledger"] is None and figures.spend["daily_metrics"] == 5_500
    assert any(ZONE in note for note in report.notes)

    client.set(daily_spent_key(new_york.id, today), 4_001)  # one micro off
    (difference,) = reconcile_day(client, db, today, today=today, only=[new_york.id]).differences
    assert difference.values == {"ledger": 4_001, f"events ({ZONE} day)": 4_000}
