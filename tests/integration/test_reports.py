"""CampaignReports against the test platform's PostgreSQL and Redis.

Closed days come exactly from daily_metrics rows, zeros elsewhere; they are cached (TTL 1 h)
and the cache is what is served until its key goes; days within the grace period are not
cached; today comes from the live counters, days to come are zeros; an unknown campaign is a
404; per report there is one Redis read, at most one SQL statement and one cache write,
whatever the number of days; Redis unreachable: PostgreSQL alone answers; PostgreSQL stopped
(for real, then started again, even if the test fails): cached days are served, the rest is
reported missing, and with nothing cached the answer is 503.

Redis database REPORTS_REDIS_DB keeps the cache entries and counters made here apart from the
deployed functions' database 0. Campaigns are paused and ended at teardown, so no auction
picks them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import redis

from localplatform.components.postgres import Postgres
from localplatform.profile import PROFILES
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.kernel.errors import NotFound, UpstreamUnavailable
from shared_layer.kernel.storage.postgres import Database
from shared_layer.pipeline.store.live_counters import ONE_SERVER, CounterKeys
from shared_layer.reporting.domain.analytics import (
    ZERO,
    DateRange,
    DayCounts,
    cache_key,
    report_body,
)
from shared_layer.reporting.service.reports import CampaignReports
from tests.support import free_port

from .campaign_support import campaign, database, end_test_campaigns, new_id

PROFILE = PROFILES[os.environ.get("ADS_PROFILE", "test")]
REPORTS_REDIS_DB = 9
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2025, 3, 10)
D = date


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class CountingRedis:
    """The real client, counting the round trips the reports make (no behaviour changed)."""

    def __init__(self, real: redis.Redis) -> None:
        self.real = real
        self.round_trips = 0

    def mget(self, keys: list[str]) -> list[Any]:
        self.round_trips += 1
        return self.real.mget(keys)

    def pipeline(self, transaction: bool = True) -> Any:
        self.round_trips += 1  # one execute() per pipeline
        return self.real.pipeline(transaction=transaction)


class CountingDatabase:
    """The real pool, counting SQL statements."""

    def __init__(self, real: Database) -> None:
        self.real = real
        self.statements = 0

    def run(self, sql: str, **params: Any) -> list[list[Any]]:
        self.statements += 1
        return self.real.run(sql, **params)


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    pool = database()
    yield pool
    wait_for_postgres(pool)
    end_test_campaigns(pool)
    pool.close()


@pytest.fixture(scope="module")
def store(db: Database) -> CampaignStore:
    return CampaignStore(db)


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    base = PROFILE.host_env()["REDIS_URL"].rsplit("/", 1)[0]
    client = redis.Redis.from_url(f"{base}/{REPORTS_REDIS_DB}", socket_timeout=5)
    yield client
    client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def reports(r: redis.Redis, db: Database, clock: Clock) -> CampaignReports:
    return CampaignReports(r, db, clock=clock, cache_ttl_s=3600, cache_grace_s=600)


def make_campaign(
    store: CampaignStore, db: Database, rows: dict[date, tuple[int, int, str]]
) -> str:
    """A paused campaign with daily_metrics rows {day: (impressions, clicks, spend text)}."""
    campaign_id = store.create(campaign(new_id(), status="paused")).campaign.id
    for day, (impressions, clicks, spend) in rows.items():
        db.run(
            "INSERT INTO daily_metrics (campaign_id, date, impressions, clicks, spend)"
            " VALUES (CAST(:c AS uuid), :d, :i, :k, CAST(:s AS numeric))",
            c=campaign_id,
            d=day,
            i=impressions,
            k=clicks,
            s=spend,
        )
    return campaign_id


def set_live_counters(
    r: redis.Redis,
    campaign_id: str,
    day: date,
    counts: DayCounts,
    names: CounterKeys = ONE_SERVER,
) -> None:
    r.set(names.ready(names.shard_of(campaign_id)), "test")  # whole (no loss to rebuild from)
    r.set(names.stats("impressions", campaign_id, day), counts.impressions)
    r.set(names.stats("clicks", campaign_id, day), counts.clicks)
    r.set(names.stats("spend", campaign_id, day), counts.spend_micros)


def wait_for_postgres(db: Database, timeout_s: float = 30.0) -> None:
    """Until a statement succeeds (each failure also throws a stale pooled connection away)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            db.run("SELECT 1")
            return
        except UpstreamUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_closed_days_come_exactly_from_daily_metrics_with_zeros_elsewhere(store, db, reports):
    campaign_id = make_campaign(
        store, db, {D(2025, 3, 1): (1000, 25, "2.500000"), D(2025, 3, 3): (3, 1, "0.007501")}
    )
    date_range = DateRange(D(2025, 2, 27), D(2025, 3, 5))
    data = reports.read(campaign_id, date_range)
    assert data.missing == ()
    assert data.counts[D(2025, 3, 1)] == DayCounts(1000, 25, 2_500_000)
    assert data.counts[D(2025, 3, 3)] == DayCounts(3, 1, 7_501)
    assert all(data.counts.get(d, ZERO) == ZERO for d in (D(2025, 2, 27), D(2025, 3, 2)))
    body = report_body(campaign_id, date_range, data.counts, data.missing)
    assert len(body["dailyMetrics"]) == 7
    assert body["summary"]["totalImpressions"] == 1003
    assert body["summary"]["totalClicks"] == 26
    assert body["summary"]["totalSpendMicros"] == 2_507_501
    assert body["summary"]["totalSpend"] == 2.507501


def test_closed_days_are_cached_for_an_hour_and_the_cache_is_served(store, db, r, reports):
    day = D(2025, 3, 1)
    campaign_id = make_campaign(store, db, {day: (1000, 25, "2.500000")})
    one_day = DateRange(day, day)
    assert reports.read(campaign_id, one_day).counts[day] == DayCounts(1000, 25, 2_500_000)
    key = cache_key(campaign_id, day)
    assert 3500 < r.ttl(key) <= 3600
    db.run(
        "UPDATE daily_metrics SET impressions = 5000 WHERE campaign_id = CAST(:c AS uuid)",
        c=campaign_id,
    )
    # The row changed; the cached day is what is served...
    assert reports.read(campaign_id, one_day).counts[day].impressions == 1000
    # ...until its key goes (TTL or removal): then PostgreSQL again, and cached anew.
    r.delete(key)
    assert reports.read(campaign_id, one_day).counts[day].impressions == 5000
    assert r.exists(key)


def test_a_day_within_the_grace_period_is_read_but_not_cached(store, db, r, reports, clock):
    day = D(2025, 3, 1)
    campaign_id = make_campaign(store, db, {day: (7, 0, "0.000007")})
    clock.now = datetime(2025, 3, 2, 0, 5, tzinfo=UTC)  # 5 minutes after the day ended
    assert reports.read(campaign_id, DateRange(day, day)).counts[day] == DayCounts(7, 0, 7)
    assert not r.exists(cache_key(campaign_id, day))
    clock.now = datetime(2025, 3, 2, 0, 11, tzinfo=UTC)
    reports.read(campaign_id, DateRange(day, day))
    assert r.exists(cache_key(campaign_id, day))


def test_today_comes_from_the_live_counters_and_days_to_come_are_zero(store, db, r, reports):
    # PostgreSQL's row for today differs on purpose: today is the live counters' number.
    campaign_id = make_campaign(store, db, {TODAY: (999, 999, "9.990000")})
    set_live_counters(r, campaign_id, TODAY, DayCounts(40, 1, 100_000))
    data = reports.read(campaign_id, DateRange(TODAY - timedelta(1), TODAY + timedelta(2)))
    assert data.counts[TODAY] == DayCounts(40, 1, 100_000) and data.source == "live"
    assert data.counts.get(TODAY + timedelta(1), ZERO) == ZERO
    assert data.counts.get(TODAY + timedelta(2), ZERO) == ZERO
    assert data.missing == ()
    # Neither today nor a day to come is ever cached: they are still changing.
    assert not r.exists(cache_key(campaign_id, TODAY))
    assert not r.exists(cache_key(campaign_id, TODAY + timedelta(1)))


def test_today_without_counters_is_zero_for_a_known_campaign(store, db, reports):
    campaign_id = make_campaign(store, db, {})
    data = reports.read(campaign_id, DateRange(TODAY, TODAY + timedelta(30)))
    assert data.counts.get(TODAY, ZERO) == ZERO and data.missing == ()


def test_days_before_the_campaign_existed_or_to_come_are_zeros(store, db, r, reports):
    campaign_id = make_campaign(store, db, {})
    long_ago = DateRange(D(2020, 1, 1), D(2020, 1, 31))
    data = reports.read(campaign_id, long_ago)
    assert all(data.counts.get(d, ZERO) == ZERO for d in long_ago.days())
    assert r.exists(cache_key(campaign_id, D(2020, 1, 15)))  # a closed day: zeros, cached
    to_come = DateRange(D(2026, 1, 1), D(2026, 12, 31))
    assert reports.read(campaign_id, to_come).counts == {}


@pytest.mark.parametrize(
    "date_range",
    [
        DateRange(D(2025, 3, 1), D(2025, 3, 5)),  # closed days
        DateRange(TODAY, TODAY),  # today only
        DateRange(D(2026, 1, 1), D(2026, 1, 2)),  # days to come
    ],
)
def test_an_unknown_campaign_is_not_found(reports, r, date_range):
    unknown = new_id()
    with pytest.raises(NotFound):
        reports.read(unknown, date_range)
    assert not list(r.scan_iter(f"analytics::{unknown}::*"))  # nothing cached for it


def test_an_ended_campaign_still_reports(store, db, reports):
    day = D(2025, 3, 1)
    campaign_id = make_campaign(store, db, {day: (11, 2, "0.030000")})
    store.delete(campaign_id)
    assert reports.read(campaign_id, DateRange(day, day)).counts[day] == DayCounts(11, 2, 30_000)


def test_one_redis_read_and_at_most_one_statement_whatever_the_days(store, db, r, clock):
    rows = {TODAY - timedelta(days=n): (n, n % 3, f"0.{n:06d}") for n in range(1, 120)}
    campaign_id = make_campaign(store, db, rows)
    set_live_counters(r, campaign_id, TODAY, DayCounts(5, 1, 50))
    counting_redis, counting_db = CountingRedis(r), CountingDatabase(db)
    reports = CampaignReports(counting_redis, counting_db, clock=clock)  # type: ignore[arg-type]
    ninety = DateRange(TODAY - timedelta(days=89), TODAY)

    cold = reports.read(campaign_id, ninety)
    assert (counting_redis.round_trips, counting_db.statements) == (2, 1)  # read, fill; 1 SQL
    warm = reports.read(campaign_id, ninety)
    assert (counting_redis.round_trips, counting_db.statements) == (3, 1)  # read only
    assert cold == warm
    assert warm.counts[TODAY] == DayCounts(5, 1, 50)
    assert warm.counts[TODAY - timedelta(days=89)] == DayCounts(89, 89 % 3, 89)


def test_with_redis_unreachable_postgresql_alone_answers_in_full(store, db, clock):
    campaign_id = make_campaign(
        store, db, {D(2025, 3, 9): (10, 1, "0.100000"), TODAY: (20, 2, "0.200000")}
    )
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    reports = CampaignReports(dead, db, clock=clock)
    data = reports.read(campaign_id, DateRange(D(2025, 3, 8), TODAY))
    assert data.missing == ()
    assert data.counts[D(2025, 3, 9)] == DayCounts(10, 1, 100_000)
    assert data.counts[TODAY] == DayCounts(20, 2, 200_000)  # today's row, exact too
    with pytest.raises(NotFound):
        reports.read(new_id(), DateRange(D(2025, 3, 8), TODAY))


@contextmanager
def postgres_stopped(db: Database) -> Iterator[None]:
    """The test platform's PostgreSQL stopped for the block, and always started again."""
    postgres = Postgres(PROFILE)
    assert postgres.running(), "the test platform's PostgreSQL is not running"
    postgres.stop()
    try:
        yield
    finally:
        if not postgres.running():
            postgres.prepare()
            postgres.start()
        postgres.wait_healthy()
        wait_for_postgres(db)


def test_with_postgresql_down_cached_days_are_served_and_the_rest_is_missing(
    store, db, r, reports, clock
):
    days = {D(2025, 3, d): (d * 10, d, f"0.00000{d}") for d in (1, 2, 3)}
    known = make_campaign(store, db, days)
    nothing_cached = make_campaign(store, db, days)
    reports.read(known, DateRange(D(2025, 3, 1), D(2025, 3, 3)))  # caches the three days
    r.delete(cache_key(known, D(2025, 3, 2)))
    set_live_counters(r, known, TODAY, DayCounts(4, 0, 40))
    other_pool = database()  # holds a connection across the restart
    other_pool.run("SELECT 1")
    try:
        with postgres_stopped(db):
            partial = reports.read(known, DateRange(D(2025, 3, 1), D(2025, 3, 3)))
            assert partial.missing == (D(2025, 3, 2),)
            assert partial.counts[D(2025, 3, 1)] == DayCounts(10, 1, 1)
            assert partial.counts[D(2025, 3, 3)] == DayCounts(30, 3, 3)
            to_today = DateRange(D(2025, 3, 1), TODAY)
            with_today = reports.read(known, to_today)
            later = DateRange(D(2025, 3, 4), D(2025, 3, 9)).days()
            assert with_today.missing == (D(2025, 3, 2), *later)
            assert with_today.counts[TODAY] == DayCounts(4, 0, 40)
            body = report_body(known, to_today, with_today.counts, with_today.missing)
            assert body["partial"] is True and body["missingDates"][0] == "2025-03-02"
            assert body["summary"]["totalImpressions"] == 10 + 30 + 4
            # Everything cached: a complete answer without PostgreSQL.
            assert reports.read(known, DateRange(D(2025, 3, 3), D(2025, 3, 3))).missing == ()
            # Nothing in Redis proves the campaign exists: no answer rather than a wrong one.
            with pytest.raises(UpstreamUnavailable):
                reports.read(nothing_cached, DateRange(D(2025, 3, 1), D(2025, 3, 3)))
        # Back: complete again at once, even through a pool whose connection is now stale.
        again = CampaignReports(r, other_pool, clock=clock).read(
            known, DateRange(D(2025, 3, 2), D(2025, 3, 2))
        )
        assert again.missing == () and again.counts[D(2025, 3, 2)] == DayCounts(20, 2, 2)
    finally:
        other_pool.close()
