"""The hourly report against the test platform's PostgreSQL: exact against events_log.

Events over the last 3 UTC days for 20 campaigns, 5 placements, 4 countries and 2 devices are
counted by the pipeline's statement (`DailyMetrics.count`), one batch twice (a redelivery).
Then every groupBy combination, by hour and by day, in UTC and in America/New_York, equals a
direct SQL count over events_log; the CSV holds the JSON's rows.

The pipeline keeps events of its retention window only (30 days), so the days here are recent
ones: the New York case checks the offset, not a daylight-saving change.
"""

from __future__ import annotations

import csv
import io
import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.storage.postgres import Database
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.store.daily_metrics import DailyMetrics
from shared_layer.reporting.domain.hourly_report import (
    DIMENSIONS,
    parse_report_query,
    report_csv,
    report_json,
)
from shared_layer.reporting.store.hourly_report import HourlyReportStore
from tests.support import click_on

from .campaign_support import campaign_request, new_id

PLACEMENTS = [f"report-{uuid.uuid4().hex[:6]}-{n}" for n in range(5)]
COUNTRIES = ["US", "GB", "DE", "FR"]
DEVICES = ["mobile", "desktop"]
COLUMN = {name: column for name, (_param, column) in DIMENSIONS.items()}
FIELD = {"campaign": "campaignId", "ad": "adId", "placement": "placementId",
         "country": "country", "deviceType": "deviceType"}  # fmt: skip


@pytest.fixture(scope="module")
def counted(db: Database) -> list[Campaign]:
    store = CampaignStore(db)
    advertiser = new_id()
    campaigns = [
        store.create(campaign_request(advertiser).to_campaign(status="paused")).campaign
        for _ in range(20)
    ]
    rng = random.Random(24)
    now = datetime.now(UTC).replace(microsecond=0)
    start = datetime.combine(now.date() - timedelta(days=2), datetime.min.time(), UTC)
    span = int((now - start).total_seconds())
    events: list[AdEvent] = []
    for _ in range(3_000):
        c = rng.choice(campaigns)
        at = start + timedelta(seconds=rng.randrange(span))
        impression = AdEvent.impression(
            impression_id=str(uuid.uuid4()),
            campaign_id=c.id,
            ad_id=c.ads[0].id,
            user_id=f"u-{rng.randrange(500)}",
            placement_id=rng.choice(PLACEMENTS),
            bid_cpm_micros=rng.randrange(500_000, 5_000_000),
            price_micros=rng.randrange(1, 5_000),
            country=rng.choice(COUNTRIES),
            device_type=rng.choice(DEVICES),
            at=at,
        )
        events.append(impression)
        if rng.random() < 0.1:
            events.append(click_on(impression, at + timedelta(seconds=5)))
    metrics = DailyMetrics(db, retention_days=30)
    today = now.date()
    for n in range(0, len(events), 500):
        metrics.count(events[n : n + 500], today=today)
    again = metrics.count(events[1000:1500], today=today)  # redelivered: counts nothing
    assert again.counted == 0 and again.duplicates == 500
    return campaigns


def direct(db: Database, campaigns, group_by, granularity, zone, start, end) -> dict:
    """The same figures, straight from events_log."""
    local = "((e.timestamp AT TIME ZONE 'UTC') AT TIME ZONE :tz)"
    period = {"hour": f"date_trunc('hour', {local})", "day": f"CAST({local} AS date)"}
    keys = [period[granularity]] + [f"COALESCE(e.{COLUMN[d]}::text, '')" for d in group_by]
    sql = (
        f"SELECT {', '.join(keys)}, count(*) FILTER (WHERE e.event_type = 'impression'), "  # noqa: S608
        "count(*) FILTER (WHERE e.event_type = 'click'), sum(e.price) FROM events_log e "
        f"WHERE e.campaign_id = ANY(CAST(:ids AS uuid[])) AND CAST({local} AS date) "
        f"BETWEEN :start AND :end GROUP BY {', '.join(keys)}"
    )
    rows = db.run(sql, ids=[c.id for c in campaigns], tz=zone, start=start, end=end)
    return {
        (str(r[0]), *(str(v) for v in r[1 : len(keys)])): (int(r[-3]), int(r[-2]), Decimal(r[-1]))
        for r in rows
    }


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
@pytest.mark.parametrize("granularity", ["hour", "day"])
def test_every_grouping_equals_a_direct_count_over_events_log(db, counted, zone, granularity):
    store = HourlyReportStore(db)
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=3), today
    ids = ",".join(c.id for c in counted)
    for size in range(len(DIMENSIONS) + 1):
        for group_by in itertools.combinations(DIMENSIONS, size):
            query = parse_report_query(
                {
                    "startDate": start.isoformat(),
                    "endDate": end.isoformat(),
                    "granularity": granularity,
                    "groupBy": ",".join(group_by),
                    "campaignId": ids,
                    "timeZone": zone,
                },
                default_time_zone="UTC",
            )
            rows = store.rows(query, advertiser_id=None)
            got = {}
            for row in rows:
                period = row.period
                if granularity == "hour":  # "2026-12-05T10:00:00-05:00" -> local naive
                    period = str(datetime.fromisoformat(period).replace(tzinfo=None))
                key = (period, *row.dimensions)
                spend = Decimal(row.counts.spend_micros).scaleb(-6)
                got[key] = (row.counts.impressions, row.counts.clicks, spend)
            expected = direct(db, counted, group_by, granularity, zone, start, end)
            assert got == expected, (group_by, granularity, zone)


def test_csv_holds_the_json_rows_and_totals_add_up(db, counted):
    store = HourlyReportStore(db)
    today = datetime.now(UTC).date()
    query = parse_report_query(
        {
            "startDate": (today - timedelta(days=2)).isoformat(),
            "endDate": today.isoformat(),
            "groupBy": "campaign,country",
            "campaignId": ",".join(c.id for c in counted),
            "format": "csv",
        },
        default_time_zone="UTC",
    )
    rows = store.rows(query, advertiser_id=None)
    body = report_json(query, rows)
    lines = list(csv.DictReader(io.StringIO(report_csv(query, rows))))
    assert len(lines) == len(body["rows"]) > 0
    for line, row in zip(lines, body["rows"], strict=True):
        assert line["campaignId"] == row["campaignId"] and line["day"] == row["day"]
        assert int(line["impressions"]) == row["impressions"]
        assert int(line["spendMicros"]) == row["spendMicros"]
    assert body["totals"]["impressions"] == sum(r["impressions"] for r in body["rows"])
    assert body["totals"]["impressions"] == 3_000


def test_an_advertiser_sees_only_its_own_rows(db, counted):
    store = HourlyReportStore(db)
    today = datetime.now(UTC).date()
    query = parse_report_query(
        {"startDate": (today - timedelta(days=2)).isoformat(), "endDate": today.isoformat(),
         "granularity": "total", "groupBy": "campaign"},
        default_time_zone="UTC",
    )  # fmt: skip
    own = store.rows(query, advertiser_id=counted[0].advertiser_id)
    assert {r.dimensions[0] for r in own} == {c.id for c in counted}
    assert store.rows(query, advertiser_id=new_id()) == []
