"""The PostgreSQL step of the pipeline against the test platform's PostgreSQL: exact counts.

Proven with campaigns made here (through CampaignStore, with their ads): a batch's impressions,
clicks and spend land in daily_metrics per (campaign, UTC day) exactly, to the micro, with
campaigns.lifetime_spent and spent_today in step; the same batch again, or a batch that
overlaps one already counted, changes nothing; batches for the same campaign-day from several
threads at once (each also re-sending the others' batches) add up exactly; events of unknown
campaigns or of another campaign's ad are set aside and nothing of them is written; any text
survives the trip. Retention: the partitions of the window exist, an expired day's partition is
dropped, an event older than the window is refused, and spent_today follows the UTC day.
"""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.money import to_decimal
from shared_layer.kernel.storage.postgres import Database, run_prepared
from shared_layer.pipeline.domain.aggregation import daily_deltas
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.store.daily_metrics import DailyMetrics
from tests.support import click_on as click

from .campaign_support import campaign_request, new_id, unknown_campaign_impression

RETENTION_DAYS = 30  # the platform's setting: these tests must not drop what it keeps


@pytest.fixture(scope="module")
def store(db: Database) -> DailyMetrics:
    return DailyMetrics(db, retention_days=RETENTION_DAYS)


@pytest.fixture
def campaigns(db: Database) -> list[Campaign]:
    """Three fresh campaigns with one ad each (paused, and on the tests' own placement: no
    auction picks them)."""
    store = CampaignStore(db)
    advertiser = new_id()
    made = [campaign_request(advertiser).to_campaign(status="paused") for _ in range(3)]
    return [store.create(c).campaign for c in made]


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return now().date()


def impression(c: Campaign, price: int, at: datetime | None = None, **fields) -> AdEvent:
    return AdEvent.impression(
        impression_id=str(uuid.uuid4()),
        campaign_id=c.id,
        ad_id=fields.pop("ad_id", c.ads[0].id),
        user_id=fields.pop("user_id", "user-1"),
        placement_id=fields.pop("placement_id", "placement-001"),
        bid_cpm_micros=price * 1_000,
        price_micros=price,
        country=fields.pop("country", "US"),
        device_type=fields.pop("device_type", "mobile"),
        at=at,
    )


def metrics(db: Database, campaigns: list[Campaign]) -> dict[tuple[str, date], tuple]:
    rows = db.run(
        "SELECT CAST(campaign_id AS text), date, impressions, clicks, spend FROM daily_metrics "
        "WHERE campaign_id = ANY(CAST(:ids AS uuid[]))",
        ids=[c.id for c in campaigns],
    )
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}


def spent(db: Database, c: Campaign) -> tuple[Decimal, Decimal]:
    [[today_spend, lifetime]] = db.run(
        "SELECT spent_today, lifetime_spent FROM campaigns WHERE id = CAST(:id AS uuid)", id=c.id
    )
    return today_spend, lifetime


def logged(db: Database, events: list[AdEvent]) -> int:
    [[n]] = db.run(
        "SELECT count(*) FROM events_log WHERE event_id = ANY(CAST(:ids AS uuid[]))",
        ids=[e.event_id for e in events],
    )
    return n


def expected(events: list[AdEvent]) -> dict[tuple[str, date], tuple]:
    return {
        key: (d.impressions, d.clicks, to_decimal(d.spend_micros))
        for key, d in daily_deltas(events).items()
    }


def test_a_batch_is_counted_exactly_per_campaign_and_day(store, db, campaigns):
    yesterday_noon = datetime.combine(today() - timedelta(days=1), datetime.min.time(), UTC)
    yesterday_noon += timedelta(hours=12)
    rng = random.Random(5)
    impressions = [
        impression(c, rng.randint(1, 9_999_999), at=at)
        for c in campaigns
        for at in [None] * 40 + [yesterday_noon] * 7
    ]
    clicks = [click(i) for i in impressions[::3]]
    events = impressions + clicks
    rng.shuffle(events)

    outcome = store.count(events, today=today())

    assert (outcome.counted, outcome.duplicates, outcome.unknown) == (len(events), 0, ())
    assert metrics(db, campaigns) == expected(events)
    assert logged(db, events) == len(events)
    for c in campaigns:
        mine = [e for e in impressions if e.campaign_id == c.id]
        total = sum(e.price_micros for e in mine)
        on_today = sum(e.price_micros for e in mine if e.day == today())
        assert spent(db, c) == (to_decimal(on_today), to_decimal(total))


def test_a_batch_delivered_again_whole_or_in_part_changes_nothing(store, db, campaigns):
    first = [impression(c, 2_500) for c in campaigns for _ in range(20)]
    first += [click(e) for e in first[:10]]
    store.count(first, today=today())
    before = (metrics(db, campaigns), [spent(db, c) for c in campaigns])

    again = store.count(first, today=today())
    assert (again.counted, again.duplicates) == (0, len(first))
    assert (metrics(db, campaigns), [spent(db, c) for c in campaigns]) == before

    fresh = [impression(c, 777) for c in campaigns for _ in range(5)]
    overlapping = first[-15:] + fresh  # a retry after a partial success, in a new batch
    outcome = store.count(overlapping, today=today())
    assert (outcome.counted, outcome.duplicates) == (len(fresh), 15)
    assert metrics(db, campaigns) == expected(first + fresh)
    assert logged(db, first + fresh) == len(first) + len(fresh)


def test_concurrent_batches_for_one_campaign_day_add_up_exactly(store, db, campaigns):
    target = campaigns[0]
    rng = random.Random(11)
    batches = [
        [impression(target, rng.randint(1, 5_000_000)) for _ in range(50)] for _ in range(24)
    ]
    batches = [b + [click(e) for e in b[:7]] for b in batches]
    errors: list[BaseException] = []

    def worker(mine: list[list[AdEvent]], others: list[list[AdEvent]]) -> None:
        try:
            for batch in mine:
                store.count(batch, today=today())
            for batch in others:  # redelivered by "another connector" at the same time
                store.count(batch, today=today())
        except BaseException as exc:
            errors.append(exc)

    halves = [batches[0::2], batches[1::2]]
    threads = [
        threading.Thread(target=worker, args=(halves[0], halves[1])),
        threading.Thread(target=worker, args=(halves[1], halves[0])),
        threading.Thread(target=worker, args=(batches[::3], batches[1::3])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    everything = [e for b in batches for e in b]
    assert metrics(db, [target]) == expected(everything)
    total = to_decimal(sum(e.price_micros for e in everything))
    assert spent(db, target) == (total, total)


@pytest.mark.parametrize(
    "prices",
    [[1] * 999, [999_999, 1], [123_456_789, 987_654_321, 5], [10**12 - 1, 1]],
    ids=["999-micros", "one-unit", "odd-amounts", "a-million-units"],
)
def test_money_is_exact_to_the_micro(store, db, campaigns, prices):
    c = campaigns[1]
    events = [impression(c, p) for p in prices]
    store.count(events, today=today())
    [(impressions, clicks, spend)] = metrics(db, [c]).values()
    assert (impressions, clicks, spend) == (len(prices), 0, to_decimal(sum(prices)))
    assert spent(db, c) == (to_decimal(sum(prices)), to_decimal(sum(prices)))
    [[stored]] = db.run(
        "SELECT sum(price) FROM events_log WHERE event_id = ANY(CAST(:ids AS uuid[]))",
        ids=[e.event_id for e in events],
    )
    assert stored == to_decimal(sum(prices))


def test_events_of_unknown_campaigns_or_foreign_ads_are_set_aside(store, db, campaigns):
    mine, other = campaigns[0], campaigns[1]
    good = [impression(mine, 1_000), impression(other, 2_000)]
    stranger = impression(mine, 5_000, ad_id=other.ads[0].id)  # another campaign's ad
    ghost = unknown_campaign_impression()
    outcome = store.count([good[0], stranger, ghost, good[1]], today=today())
    assert outcome.counted == 2
    assert sorted(outcome.unknown) == sorted([stranger.event_id, ghost.event_id])
    assert logged(db, [stranger, ghost]) == 0
    assert metrics(db, [mine, other]) == expected(good)
    assert (
        db.run(
            "SELECT 1 FROM daily_metrics WHERE campaign_id = CAST(:c AS uuid)", c=ghost.campaign_id
        )
        == []
    )


def test_any_text_survives_the_trip_to_events_log(store, db, campaigns):
    texts = [
        'quote " and \\ backslash',
        "comma, {braces}",
        "NULL",
        "\u00fcmlaut \u2013 \u65e5\u672c",
        " spaced ",
    ]
    events = [
        impression(campaigns[2], 1, user_id=t, placement_id=t[::-1], country=None) for t in texts
    ]
    events.append(impression(campaigns[2], 1, device_type=None, user_id="x" * 255))
    assert store.count(events, today=today()).counted == len(events)
    rows = db.run(
        "SELECT CAST(event_id AS text), user_id, placement_id, country, device_type, "
        "CAST(impression_id AS text), event_type, bid_price, timestamp, day "
        "FROM events_log WHERE event_id = ANY(CAST(:ids AS uuid[]))",
        ids=[e.event_id for e in events],
    )
    stored = {r[0]: tuple(r[1:]) for r in rows}
    for e in events:
        assert stored[e.event_id] == (
            e.user_id,
            e.placement_id,
            e.country,
            e.device_type,
            e.impression_id,
            "impression",
            to_decimal(e.bid_cpm_micros),
            e.timestamp.replace(tzinfo=None),
            e.day,
        )


# Retention


def partitions(db: Database) -> set[date]:
    rows = db.run(
        "SELECT to_date(substr(c.relname, 12), 'YYYYMMDD') FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST('events_log' AS regclass)"
    )
    return {r[0] for r in rows}


def test_the_retention_job_keeps_the_window_and_drops_expired_days(store, db):
    expired = today() - timedelta(days=RETENTION_DAYS + 5)
    db.run("SELECT events_log_create_partition(CAST(:d AS date))", d=expired)
    assert expired in partitions(db)

    report = store.maintain(today())

    kept = {today() + timedelta(days=n) for n in range(-RETENTION_DAYS, 4)}
    assert expired not in partitions(db)
    assert kept <= partitions(db)
    assert min(partitions(db)) >= today() - timedelta(days=RETENTION_DAYS)
    assert set(report.created) <= kept and not set(report.dropped) & kept


def test_an_event_older_than_the_retention_is_refused_and_a_kept_one_counts_once(
    store, db, campaigns
):
    window = store.window(today())
    oldest = datetime.combine(window.first, datetime.min.time(), UTC)
    assert window.judge((oldest - timedelta(milliseconds=1)).date()) == "too-old"
    kept = impression(campaigns[0], 4_321, at=oldest)  # the first millisecond still kept
    assert store.count([kept], today=today()).counted == 1
    store.maintain(today())  # creates and drops partitions: the event stays counted once
    again = store.count([kept], today=today())
    assert (again.counted, again.duplicates) == (0, 1)
    [(impressions, _, spend)] = [
        v for k, v in metrics(db, [campaigns[0]]).items() if k[1] == window.first
    ]
    assert (impressions, spend) == (1, to_decimal(4_321))


def test_a_process_that_finds_a_partition_missing_makes_it_before_counting(db, campaigns):
    ahead = today() + timedelta(days=3)  # in the window the job keeps; no event is that late
    db.run(f"DROP TABLE IF EXISTS events_log_{ahead:%Y%m%d}")
    fresh = DailyMetrics(db, retention_days=RETENTION_DAYS)  # knows no partition yet
    tomorrow = now() + timedelta(days=1)
    assert fresh.count([impression(campaigns[0], 10, at=tomorrow)], today=today()).counted == 1
    assert ahead in partitions(db)


def test_spent_today_follows_the_utc_day(store, db, campaigns):
    c = campaigns[2]
    store.count([impression(c, 9_000), impression(c, 1_000)], today=today())
    assert spent(db, c) == (to_decimal(10_000), to_decimal(10_000))
    try:
        store.maintain(today() + timedelta(days=1))  # the first run after midnight
        assert spent(db, c) == (Decimal(0), to_decimal(10_000))
    finally:
        store.maintain(today())  # and back: today's spend again
    assert spent(db, c) == (to_decimal(10_000), to_decimal(10_000))


def test_event_times_are_stored_as_utc_wall_time_on_their_utc_day(store, db, campaigns):
    """The batch sends its times with their zone; events_log holds the UTC wall time (an
    event's time has millisecond precision), and the day is the UTC day either side of
    midnight."""
    midnight = datetime.combine(today(), datetime.min.time(), UTC)
    times = [
        midnight - timedelta(microseconds=1),
        midnight,
        midnight + timedelta(hours=5, minutes=4, seconds=3, microseconds=21),  # to the ms
        # Another zone's clock reading the same instant as 05:04:03.000021 UTC.
        (midnight + timedelta(hours=5, minutes=4, seconds=3, microseconds=21)).astimezone(
            timezone(timedelta(hours=-7))
        ),
    ]
    events = [impression(campaigns[0], 1_000, at=at) for at in times]

    assert store.count(events, today=today()).counted == len(events)

    rows = db.run(
        "SELECT CAST(event_id AS text), timestamp, day FROM events_log "
        "WHERE event_id = ANY(CAST(:ids AS uuid[]))",
        ids=[e.event_id for e in events],
    )
    stored = {r[0]: (r[1], r[2]) for r in rows}
    walls = [stored[e.event_id][0] for e in events]
    assert walls == [e.timestamp.astimezone(UTC).replace(tzinfo=None) for e in events]
    assert walls[0] == datetime.combine(today() - timedelta(days=1), datetime.max.time()).replace(
        microsecond=999_000
    )
    assert (
        walls[2]
        == walls[3]
        == midnight.replace(tzinfo=None) + timedelta(hours=5, minutes=4, seconds=3)
    )
    assert [stored[e.event_id][1] for e in events] == [today() - timedelta(days=1)] + [today()] * 3


def test_a_hot_statement_is_prepared_once_per_connection_and_survives_ddl(db):
    with db.connection() as conn:
        conn.run("CREATE TEMP TABLE prepared_probe (n int)")
        conn.run("INSERT INTO prepared_probe VALUES (1), (2)")
        sql = "SELECT sum(n) + CAST(:add AS int) FROM prepared_probe"
        before = conn.run("SELECT count(*) FROM pg_prepared_statements")[0][0]

        assert [run_prepared(conn, sql, add=a)[0][0] for a in range(3)] == [3, 4, 5]
        assert conn.run("SELECT count(*) FROM pg_prepared_statements")[0][0] == before + 1

        # DDL on its table: PostgreSQL plans the kept statement again, answers stay right.
        conn.run("ALTER TABLE prepared_probe ADD COLUMN m int DEFAULT 10")
        conn.run("INSERT INTO prepared_probe (n) VALUES (4)")
        assert run_prepared(conn, sql, add=0)[0][0] == 7
        conn.run("DROP TABLE prepared_probe")
