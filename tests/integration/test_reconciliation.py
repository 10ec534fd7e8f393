"""`reconcile_day` on the test platform's PostgreSQL and Redis: a campaign in another time zone,
and an exchange campaign whose reservations are compared with its settlements and releases.

Its daily budget (the ledger's daily key) runs on its own day, while daily_metrics and the live
counters keep UTC days: reconcile compares that ledger key with the campaign's impressions in
events_log between its own midnights, and reports a difference there, not a false one against
the UTC day.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import msgspec
import pytest
import redis

from shared_layer.bidding.store.budget_ledger import (
    RedisBudgetLedger,
    daily_spent_key,
    ledger_ready_key,
)
from shared_layer.bidding.store.reservations import Hold, RedisReservations, tally_key
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.storage.outbox import outbox_fields, outbox_stream
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.shards import SINGLE
from shared_layer.pipeline.domain.events import parse_event
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


@pytest.fixture
def exchange_campaign(db: Database) -> Campaign:
    made = campaign_request(new_id()).to_campaign(status="paused")
    return CampaignStore(db).create(made).campaign


def test_reservations_held_by_exchange_bids_are_reconciled_with_settlements_and_releases(
    client: redis.Redis, db: Database, exchange_campaign: Campaign
) -> None:
    now = datetime.now(UTC)
    today = now.date()
    ledger = RedisBudgetLedger(client, lambda: now)
    reservations = RedisReservations(client)
    price = exchange_campaign.cpm_micros // 1000
    bids = []
    for _ in range(3):
        bid_id = str(uuid.uuid4())
        event = impression(exchange_campaign, price, at=now)
        record = outbox_fields(
            msgspec.structs.replace(event, event_id=bid_id, impression_id=bid_id)
        )
        hold = Hold(bid_id, window_s=300)
        assert ledger.reserve(exchange_campaign, price, record, user_id=None, hold=hold).charged
        bids.append(bid_id)
    assert reservations.settle(exchange_campaign.id, bids[0], 1_234) == "settled"
    assert reservations.release(exchange_campaign.id, bids[1]) == "released"
    [(_, [(_, fields)])] = client.xread({outbox_stream(SINGLE, 0): 0})
    DailyMetrics(db, retention_days=30).count([parse_event(fields[b"value"])], today=today)

    report = reconcile_day(client, db, today, today=today, only=[exchange_campaign.id])
    assert report.differences == []  # the ledger holds 1,234 settled plus one open reservation
    (figures,) = report.campaigns
    assert figures.spend["ledger"] == figures.spend["events"] == 1_234
    assert any("3 made, 1 settled (1234 micros), 1 released, 1 open" in n for n in report.notes)

    tally = tally_key(exchange_campaign.id, today)
    client.hincrby(tally, "releasedMicros", price)  # a release the ledger never saw
    found = reconcile_day(client, db, today, today=today, only=[exchange_campaign.id]).differences
    assert found and all(d.metric == "spend" for d in found), found
    client.hincrby(tally, "released", 5)  # more closed than were ever made
    found = reconcile_day(client, db, today, today=today, only=[exchange_campaign.id]).differences
    assert any(set(d.values) == {"reserved", "settled", "released"} for d in found), found
