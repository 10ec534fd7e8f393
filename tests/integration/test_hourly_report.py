"""The hourly report against the test platform's PostgreSQL: exact against events_log.

Events over 3 UTC days for 20 campaigns, 5 placements, 4 countries and 2 devices are counted by
the pipeline's statement (`DailyMetrics.count`), one batch twice (a redelivery). Then every
groupBy combination, by hour and by day, in UTC and in America/New_York, equals a direct SQL
count over events_log; the CSV holds the JSON's rows; an advertiser sees only its own rows.

Three windows of 3 days each:

- ``recent``: the last 3 UTC days, today's hours so far included, in the platform's own tables;
- ``fall-back`` (2026-10-31 to 11-02: New York's clocks go back on 11-01, a 25-hour day whose
  01:00 comes twice) and ``spring-forward`` (2026-03-07 to 03-09: a 23-hour day without 02:00).

The pipeline counts an event on the day of its own time, within its retention window (30 days)
of its clock's today. A past change is older than that, so those two windows run in a schema of
their own (every migration applied to it, as to the product's database), and the pipeline is
given the window's last day as its today: the day it would have counted these events. The
platform's own retention job never sees that schema, so it cannot drop the days under the test.
"""

from __future__ import annotations

import csv
import io
import itertools
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from localplatform import migrations
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
IMPRESSIONS = 3_000
COLUMN = {name: column for name, (_param, column) in DIMENSIONS.items()}
NEW_YORK = "America/New_York"
# Each window's first UTC day (None: the last 3 days up to now).
WINDOWS = {"recent": None, "fall-back": date(2026, 10, 31), "spring-forward": date(2026, 3, 7)}


@dataclass(frozen=True)
class Counted:
    """Events the pipeline counted: where, for which campaigns, over which UTC days."""

    db: Database
    campaigns: list[Campaign]
    first: date
    last: date  # the pipeline's today when it counted them
    across_a_change: bool = False  # New York changes its clocks within the window

    def query(self, **params: str):
        """A report query over the window's days, one more before it (New York's evening)."""
        days = {"startDate": (self.first - timedelta(days=1)).isoformat(),
                "endDate": self.last.isoformat()}  # fmt: skip
        return parse_report_query({**days, **params}, default_time_zone="UTC")


@pytest.fixture(scope="module", params=list(WINDOWS))
def counted(request: pytest.FixtureRequest, db: Database) -> Iterator[Counted]:
    first = WINDOWS[request.param]
    if first is None:
        now = datetime.now(UTC).replace(microsecond=0)
        first = now.date() - timedelta(days=2)
        yield count_events(db, first, now)
        return
    end = datetime.combine(first + timedelta(days=3), time(), UTC)
    offsets = {ZoneInfo(NEW_YORK).utcoffset(end - timedelta(hours=h)) for h in range(72)}
    assert len(offsets) == 2, "the window holds a daylight-saving change"
    with own_schema(db, request.param) as scratch:
        events = count_events(scratch, first, end - timedelta(seconds=6))
        yield Counted(events.db, events.campaigns, events.first, events.last, True)


@contextmanager
def own_schema(db: Database, name: str) -> Iterator[Database]:
    """A one-connection pool whose tables are a fresh schema's, every migration applied."""
    schema = f"report_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    db.run(f"CREATE SCHEMA {schema}")
    pool = Database(db.params, size=1)  # one connection: the search_path below is its own
    try:
        with pool.connection() as conn:
            conn.run(f"SET search_path TO {schema}")
            migrations.apply(conn)
        yield pool
        assert pool.run("SELECT current_schema()") == [[schema]]  # no other table was used
    finally:
        pool.close()
        db.run(f"DROP SCHEMA {schema} CASCADE")


def count_events(db: Database, first: date, until: datetime) -> Counted:
    """IMPRESSIONS impressions (a tenth clicked 5 s later) between `first` and `until`,
    counted in batches of 500 with the pipeline's today the last day; one batch twice."""
    store = CampaignStore(db)
    advertiser = new_id()
    campaigns = [
        store.create(campaign_request(advertiser).to_campaign(status="paused")).campaign
        for _ in range(20)
    ]
    rng = random.Random(24)
    start = datetime.combine(first, time(), UTC)
    span = int((until - start).total_seconds())
    events: list[AdEvent] = []
    for _ in range(IMPRESSIONS):
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
    today = until.date()
    for n in range(0, len(events), 500):
        assert metrics.count(events[n : n + 500], today=today).unknown == ()
    again = metrics.count(events[1000:1500], today=today)  # redelivered: counts nothing
    assert again.counted == 0 and again.duplicates == 500
    return Counted(db, campaigns, first, today)


def direct(counted: Counted, group_by, granularity: str, zone: str) -> dict:
    """The same figures, straight from events_log. An hour is named as the report names it,
    local time with its offset (New York's second 01:00 of a fall-back day is -05:00)."""
    local = "((e.timestamp AT TIME ZONE 'UTC') AT TIME ZONE :tz)"
    hour = (
        "to_char(date_trunc('hour', e.timestamp AT TIME ZONE 'UTC'),"
        " 'YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM')"
    )
    period = {"hour": hour, "day": f"CAST({local} AS date)::text"}
    keys = [period[granularity]] + [f"COALESCE(e.{COLUMN[d]}::text, '')" for d in group_by]
    sql = (
        f"SELECT {', '.join(keys)}, count(*) FILTER (WHERE e.event_type = 'impression'), "  # noqa: S608
        "count(*) FILTER (WHERE e.event_type = 'click'), sum(e.price) FROM events_log e "
        f"WHERE e.campaign_id = ANY(CAST(:ids AS uuid[])) AND CAST({local} AS date) "
        f"BETWEEN :start AND :end GROUP BY {', '.join(keys)}"
    )
    query = counted.query()
    with counted.db.transaction() as conn:
        conn.run("SELECT set_config('TimeZone', :tz, true)", tz=zone)  # to_char's offset
        rows = conn.run(
            sql, ids=[c.id for c in counted.campaigns], tz=zone, start=query.start, end=query.end
        )
    return {
        tuple(str(v) for v in r[: len(keys)]): (int(r[-3]), int(r[-2]), Decimal(r[-1]))
        for r in rows
    }


@pytest.mark.parametrize("zone", ["UTC", NEW_YORK])
@pytest.mark.parametrize("granularity", ["hour", "day"])
def test_every_grouping_equals_a_direct_count_over_events_log(counted, zone, granularity):
    store = HourlyReportStore(counted.db)
    ids = ",".join(c.id for c in counted.campaigns)
    offsets = set()
    for size in range(len(DIMENSIONS) + 1):
        for group_by in itertools.combinations(DIMENSIONS, size):
            query = counted.query(granularity=granularity, groupBy=",".join(group_by),
                                  campaignId=ids, timeZone=zone)  # fmt: skip
            got = {}
            for row in store.rows(query, advertiser_id=None):
                spend = Decimal(row.counts.spend_micros).scaleb(-6)
                figures = (row.counts.impressions, row.counts.clicks, spend)
                got[(row.period, *row.dimensions)] = figures
                if granularity == "hour":
                    offsets.add(str(row.period)[-6:])
            assert got == direct(counted, group_by, granularity, zone), (group_by, granularity)
            assert sum(n for n, _, _ in got.values()) == IMPRESSIONS
    if granularity == "hour" and zone == NEW_YORK and counted.across_a_change:
        assert offsets == {"-04:00", "-05:00"}  # the hours of both sides of the change


def test_csv_holds_the_json_rows_and_totals_add_up(counted):
    store = HourlyReportStore(counted.db)
    ids = ",".join(c.id for c in counted.campaigns)
    for zone in ("UTC", NEW_YORK):
        query = counted.query(groupBy="campaign,country", campaignId=ids, timeZone=zone,
                              granularity="hour", format="csv")  # fmt: skip
        rows = store.rows(query, advertiser_id=None)
        body = report_json(query, rows)
        lines = list(csv.DictReader(io.StringIO(report_csv(query, rows))))
        assert len(lines) == len(body["rows"]) > 0
        for line, row in zip(lines, body["rows"], strict=True):
            assert line["campaignId"] == row["campaignId"] and line["hour"] == row["hour"]
            assert int(line["impressions"]) == row["impressions"]
            assert int(line["clicks"]) == row["clicks"]
            assert int(line["spendMicros"]) == row["spendMicros"]
        assert body["totals"]["impressions"] == sum(r["impressions"] for r in body["rows"])
        assert body["totals"]["impressions"] == IMPRESSIONS


def test_an_advertiser_sees_only_its_own_rows(counted):
    store = HourlyReportStore(counted.db)
    query = counted.query(granularity="total", groupBy="campaign")
    own = store.rows(query, advertiser_id=counted.campaigns[0].advertiser_id)
    assert {r.dimensions[0] for r in own} == {c.id for c in counted.campaigns}
    assert store.rows(query, advertiser_id=new_id()) == []
