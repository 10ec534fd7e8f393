"""Where an event becomes a number in a table: exact daily metrics in PostgreSQL.

One batch of events is counted by ONE statement in ONE transaction (`DailyMetrics.count`):

1. the events whose campaign and ad exist are inserted into ``events_log`` with
   ``ON CONFLICT DO NOTHING``: the table's key (event_id, day) accepts an event once, ever;
2. only the rows it accepted (``RETURNING``) are summed per (campaign, day) and added to
   ``daily_metrics`` (impressions, clicks, spend);
3. each campaign's ``lifetime_spent`` grows by the same new spend, and ``spent_today`` becomes
   that campaign's daily_metrics spend of the current UTC day;
4. the same accepted rows are summed per UTC hour, campaign, ad, placement, country and device
   type into ``hourly_metrics`` (migration 0012), which the hourly report reads.

So a redelivered event (a connector retry, a restarted connector, an outbox relay sending it
again) conflicts in step 1 and changes nothing, and a batch that fails half-way leaves nothing
behind. Arrays travel through ``unnest``: one round trip per batch, whatever its size
(TOOLING.md measured 33-44k events/s for this shape).

Concurrency: batches of different partitions run at once (several connector calls, several
replicas). Row locks serialise them per (campaign, day) and per campaign; daily_metrics rows are
upserted in (campaign, day) order so that two batches never wait for each other in a circle.
A deadlock or serialisation failure PostgreSQL still reports is a 503: try again.

Retention (`DailyMetrics.maintain`) runs the SQL function ``events_log_maintain`` (migration
0005, guarded by 0009): partitions for the retention window and a few days ahead, expired days
dropped unless the log-level export has not written and verified them (then kept, with the
reason in `Maintenance.kept` and a warning in the log); and
``spent_today`` is brought back to today's daily_metrics spend where it differs (after a UTC
midnight: 0 for campaigns with no spend yet on the new day).

Example::

    store = DailyMetrics(Database.from_url(url, password=secret), retention_days=30)
    outcome = store.count([event, ...], today=date(2025, 11, 29))
    outcome.counted, outcome.duplicates, outcome.unknown   # 1, 0, ()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import msgspec
from aws_lambda_powertools import Logger
from pg8000 import exceptions as pg_errors

from shared_layer.kernel.background import Loop, periodic
from shared_layer.kernel.errors import UpstreamFailed, UpstreamUnavailable
from shared_layer.kernel.money import from_decimal
from shared_layer.kernel.storage.postgres import Database, run_prepared
from shared_layer.pipeline.domain.aggregation import DayWindow
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.metrics import (
    DAILY_BATCH_SECONDS,
    MAINTENANCE,
    MAINTENANCE_LAST_SUCCESS,
    PARTITIONS_CHANGED,
)
from shared_layer.pipeline.store.live_counters import DaySnapshot

__all__ = [
    "DAYS_AHEAD",
    "CountOutcome",
    "DailyMetrics",
    "Maintenance",
    "read_snapshot",
    "start_maintenance",
]

DAYS_AHEAD: Final = 3  # partitions made ahead of today: midnight never waits for DDL
_MAINTENANCE_LOCK_TIMEOUT: Final = "5s"  # DDL waits at most this long for in-flight batches
_RETRY_WITHIN_S: Final = 2.0  # a pooled connection PostgreSQL closed is replaced at once
_ATTEMPTS: Final = 3
_TRY_AGAIN: Final = ("40P01", "40001")  # deadlock detected, serialization failure
_NO_PARTITION: Final = "23514"  # "no partition of relation found for row" (a check violation)
_SECONDS_PER_DAY: Final = 86_400
_TIMESTAMPS: Final = msgspec.json.Encoder()

# Steps 1-3 of the module docstring, in one statement. `known` drops events whose ad does not
# exist or belongs to another campaign (the foreign keys would fail the whole batch).
_COUNT_BATCH: Final = """
WITH input AS (
  -- The day an event counts for is the UTC date of its time (AdEvent.day).
  SELECT u.*, CAST(u.occurred_at AS date) AS day FROM (
    SELECT event_id, event_type, campaign_id, ad_id, user_id, placement_id, bid_micros,
           price_micros, occurred_at AT TIME ZONE 'UTC' AS occurred_at, impression_id,
           country, device_type
    FROM unnest(
      CAST(:event_id AS uuid[]), CAST(:event_type AS varchar[]), CAST(:campaign_id AS uuid[]),
      CAST(:ad_id AS uuid[]), CAST(:user_id AS varchar[]), CAST(:placement_id AS varchar[]),
      CAST(:bid_micros AS bigint[]), CAST(:price_micros AS bigint[]),
      CAST(:occurred_at AS timestamptz[]), CAST(:impression_id AS uuid[]),
      CAST(:country AS varchar[]), CAST(:device_type AS varchar[])
    ) AS a(event_id, event_type, campaign_id, ad_id, user_id, placement_id, bid_micros,
           price_micros, occurred_at, impression_id, country, device_type)
  ) AS u
),
known AS (
  SELECT e.* FROM input e JOIN ads a ON a.id = e.ad_id AND a.campaign_id = e.campaign_id
),
inserted AS (
  INSERT INTO events_log (
    event_id, event_type, campaign_id, ad_id, user_id, placement_id, bid_price, price,
    timestamp, day, impression_id, country, device_type
  )
  SELECT event_id, event_type, campaign_id, ad_id, user_id, placement_id,
         bid_micros * 0.000001, price_micros * 0.000001, occurred_at, day, impression_id,
         country, device_type
  FROM known ORDER BY event_id
  ON CONFLICT DO NOTHING
  RETURNING campaign_id, day, event_type, price, ad_id, placement_id, country, device_type,
            timestamp
),
-- The hourly report's table (migration 0012), from the same inserted rows: exactly once too.
hourly AS (
  INSERT INTO hourly_metrics AS h
    (hour, campaign_id, ad_id, placement_id, country, device_type, impressions, clicks, spend)
  SELECT date_trunc('hour', timestamp), campaign_id, ad_id, COALESCE(placement_id, ''),
         COALESCE(country, ''), COALESCE(device_type, ''),
         count(*) FILTER (WHERE event_type = 'impression'),
         count(*) FILTER (WHERE event_type = 'click'),
         COALESCE(sum(price), 0)
  FROM inserted GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 2, 1, 3, 4, 5, 6
  ON CONFLICT (campaign_id, hour, ad_id, placement_id, country, device_type) DO UPDATE
  SET impressions = h.impressions + EXCLUDED.impressions,
      clicks = h.clicks + EXCLUDED.clicks,
      spend = h.spend + EXCLUDED.spend
),
deltas AS (
  SELECT campaign_id, day,
         count(*) FILTER (WHERE event_type = 'impression') AS impressions,
         count(*) FILTER (WHERE event_type = 'click') AS clicks,
         COALESCE(sum(price), 0) AS spend
  FROM inserted GROUP BY campaign_id, day
),
metrics AS (
  INSERT INTO daily_metrics AS m (campaign_id, date, impressions, clicks, spend)
  SELECT campaign_id, day, impressions, clicks, spend FROM deltas ORDER BY campaign_id, day
  ON CONFLICT (campaign_id, date) DO UPDATE
  SET impressions = m.impressions + EXCLUDED.impressions,
      clicks = m.clicks + EXCLUDED.clicks,
      spend = m.spend + EXCLUDED.spend,
      updated_at = CURRENT_TIMESTAMP
  RETURNING campaign_id, date, spend
),
campaign_spend AS (
  SELECT campaign_id, sum(added) AS added, max(today_spend) AS today_spend
  FROM (
    SELECT campaign_id, spend AS added, NULL AS today_spend FROM deltas
    UNION ALL
    SELECT campaign_id, 0, spend FROM metrics WHERE date = CAST(:today AS date)
  ) AS per_day
  GROUP BY campaign_id
  HAVING sum(added) > 0
),
spent AS (
  UPDATE campaigns c
  SET lifetime_spent = COALESCE(c.lifetime_spent, 0) + s.added,
      spent_today = COALESCE(s.today_spend, c.spent_today)
  FROM campaign_spend s WHERE c.id = s.campaign_id
  RETURNING c.id
)
SELECT
  (SELECT count(*) FROM inserted),
  (SELECT count(*) FROM known),
  ARRAY(SELECT CAST(e.event_id AS text) FROM input e
        WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.event_id = e.event_id)),
  (SELECT count(*) FROM spent)
"""

_MAINTAIN: Final = """
SELECT action, partition_day, reason
FROM events_log_maintain(CAST(:today AS date), :retention, :ahead)
"""
_PARTITION_DAYS: Final = """
SELECT to_date(substr(c.relname, 12), 'YYYYMMDD')
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = CAST('events_log' AS regclass) AND c.relname ~ '^events_log_[0-9]{8}$'
"""
# spent_today follows today's daily_metrics spend: after a UTC midnight, campaigns with no spend
# yet on the new day go back to 0 (a batch only sets it for campaigns it charges). The rows that
# differ are locked first, then re-read in a fresh statement, so a batch that committed spend
# for today meanwhile is not overwritten with an older value.
_LOCK_DRIFTED_SPENT_TODAY: Final = """
SELECT c.id FROM campaigns c
LEFT JOIN daily_metrics m ON m.campaign_id = c.id AND m.date = CAST(:today AS date)
WHERE c.spent_today IS DISTINCT FROM COALESCE(m.spend, 0)
ORDER BY c.id FOR UPDATE OF c
"""
_RESET_SPENT_TODAY: Final = """
UPDATE campaigns c
SET spent_today = COALESCE((SELECT m.spend FROM daily_metrics m
                            WHERE m.campaign_id = c.id AND m.date = CAST(:today AS date)), 0)
WHERE c.id = ANY(CAST(:ids AS uuid[]))
"""


@dataclass(frozen=True, slots=True)
class CountOutcome:
    """What one batch did: events newly counted, already counted before, and event ids set
    aside because their campaign or ad does not exist."""

    counted: int
    duplicates: int
    unknown: tuple[str, ...]
    campaigns_charged: int = 0


@dataclass(frozen=True, slots=True)
class Maintenance:
    """What one run of the retention job changed; `kept`: expired days it refused to drop
    because they are not exported and verified yet (migration 0009), with the reason."""

    created: tuple[date, ...]
    dropped: tuple[date, ...]
    spent_today_reset: int
    kept: tuple[tuple[date, str], ...] = ()


class DailyMetrics:
    """The PostgreSQL step of the pipeline: count batches exactly, keep events_log's days.

    Thread-safe; share one per process. `retention_days`: events of the last that many UTC
    days (today included) are counted, older ones are refused (`window`), and their partitions
    are dropped one day later.
    """

    def __init__(self, db: Database, *, retention_days: int, days_ahead: int = DAYS_AHEAD):
        if retention_days < 1 or days_ahead < 1:
            raise ValueError("retention_days and days_ahead must be at least 1")
        self.db = db
        self.retention_days = retention_days
        self.days_ahead = days_ahead
        self._partition_days: frozenset[date] = frozenset()
        self._maintenance_lock = threading.Lock()

    def window(self, today: date) -> DayWindow:
        """The days whose events are counted today."""
        return DayWindow.last_days(today, self.retention_days)

    def count(self, events: Sequence[AdEvent], *, today: date) -> CountOutcome:
        """Count a batch (events inside `window(today)`, each event id at most once).

        Raises UpstreamUnavailable (503) when PostgreSQL cannot be reached or asks to try
        again; nothing is then counted (the transaction rolled back) or everything was (the
        connection broke after COMMIT): either way, sending the batch again is right.
        """
        if not events:
            return CountOutcome(0, 0, ())
        self._ensure_partitions({e.day for e in events}, today)
        params = _batch_params(events, today)
        started = time.perf_counter()
        row = self._retrying_unavailable(lambda: self._count(params))
        DAILY_BATCH_SECONDS.observe(time.perf_counter() - started)
        counted, known, unknown, charged = row
        return CountOutcome(
            counted=int(counted),
            duplicates=int(known) - int(counted),
            unknown=tuple(unknown or ()),
            campaigns_charged=int(charged),
        )

    def maintain(self, today: date) -> Maintenance:
        """Run the retention job once (any replica may; PostgreSQL serialises them)."""
        with self._maintenance_lock:
            try:
                with self.db.transaction() as conn:
                    conn.run(f"SET LOCAL lock_timeout = '{_MAINTENANCE_LOCK_TIMEOUT}'")
                    rows = conn.run(
                        _MAINTAIN, today=today, retention=self.retention_days, ahead=self.days_ahead
                    )
                    drifted = conn.run(_LOCK_DRIFTED_SPENT_TODAY, today=today)
                    if drifted:
                        conn.run(_RESET_SPENT_TODAY, today=today, ids=[str(r[0]) for r in drifted])
                    days = conn.run(_PARTITION_DAYS)
            except Exception:
                MAINTENANCE.labels("error").inc()
                raise
            self._partition_days = frozenset(r[0] for r in days)
        MAINTENANCE.labels("ok").inc()
        MAINTENANCE_LAST_SUCCESS.set_to_current_time()
        created = tuple(day for action, day, _ in rows if action == "created")
        dropped = tuple(day for action, day, _ in rows if action == "dropped")
        kept = tuple((day, reason) for action, day, reason in rows if action == "kept")
        PARTITIONS_CHANGED.labels("created").inc(len(created))
        PARTITIONS_CHANGED.labels("dropped").inc(len(dropped))
        PARTITIONS_CHANGED.labels("kept").inc(len(kept))
        return Maintenance(
            created=created, dropped=dropped, spent_today_reset=len(drifted), kept=kept
        )

    def _ensure_partitions(self, days: Iterable[date], today: date) -> None:
        """Every day of a batch has its partition before the insert (else it would fail)."""
        if set(days) <= self._partition_days:
            return
        self.maintain(today)
        missing = sorted(set(days) - self._partition_days)
        if missing:  # only if the window and the job disagree: a bug, not bad input
            raise UpstreamFailed(f"events_log has no partition for {missing[0].isoformat()}")

    def _count(self, params: dict[str, Any]) -> list[Any]:
        try:
            with self.db.transaction() as conn:
                return run_prepared(conn, _COUNT_BATCH, **params)[0]
        except UpstreamFailed as exc:
            state = _sqlstate(exc.__cause__)
            if state == _NO_PARTITION:  # dropped or never made: look again before the retry
                self._partition_days = frozenset()
            if state in _TRY_AGAIN or state == _NO_PARTITION:
                raise UpstreamUnavailable("database asked to try the batch again") from exc
            raise

    @staticmethod
    def _retrying_unavailable(step: Any) -> Any:
        """Run `step`; after a failure of PostgreSQL's side, run it again, at most 3 attempts
        within 2 s.

        After PostgreSQL restarts, every pooled connection is dead but looks idle; each fails
        once and is thrown away. Trying again at once keeps one batch from spending the
        connector's attempts on dead connections. Repeating a batch is harmless (event ids).
        """
        deadline = time.monotonic() + _RETRY_WITHIN_S
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return step()
            except UpstreamUnavailable:
                if attempt == _ATTEMPTS or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)
        raise AssertionError("unreachable")


def _batch_params(events: Sequence[AdEvent], today: date) -> dict[str, Any]:
    """The statement's parameters: one PostgreSQL array literal per column.

    Built as text here because pg8000 converts Python lists element by element (~30 ms per
    1,000 events, more than the statement itself); PostgreSQL parses the literal in its CAST.
    """
    return {
        "event_id": _plain_array(e.event_id for e in events),
        "event_type": _plain_array(e.event_type for e in events),
        "campaign_id": _plain_array(e.campaign_id for e in events),
        "ad_id": _plain_array(e.ad_id for e in events),
        "user_id": _text_array(e.user_id for e in events),
        "placement_id": _text_array(e.placement_id for e in events),
        "bid_micros": _plain_array(str(e.bid_cpm_micros) for e in events),
        "price_micros": _plain_array(str(e.price_micros) for e in events),
        # With their zone (msgspec writes the whole list in one call, "...Z" each); the
        # statement turns them into UTC wall time for the TIMESTAMP (without time zone) column.
        "occurred_at": _json_strings_array(_TIMESTAMPS.encode([e.timestamp for e in events])),
        "impression_id": _plain_array(e.impression_id for e in events),
        "country": _text_array(e.country for e in events),
        "device_type": _text_array(e.device_type for e in events),
        "today": today.isoformat(),
    }


def _plain_array(values: Iterable[str]) -> str:
    """An array literal of values that need no quoting (uuids, numbers, ISO dates)."""
    return "{" + ",".join(values) + "}"


def _text_array(values: Iterable[str | None]) -> str:
    """An array literal of any text: each element quoted, backslash and quote escaped; None
    is NULL (the text "NULL" is quoted, so it stays text)."""
    return "{" + ",".join(_quoted(v) for v in values) + "}"


def _quoted(value: str | None) -> str:
    if value is None:
        return "NULL"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _json_strings_array(encoded: bytes) -> str:
    """The array literal of a JSON array of strings that need no escaping in either syntax
    (ISO timestamps): ``["a","b"]`` is ``{"a","b"}``.

    >>> _json_strings_array(b'["2026-12-04T18:00:00.5Z","2026-12-04T18:00:01Z"]')
    '{"2026-12-04T18:00:00.5Z","2026-12-04T18:00:01Z"}'
    """
    return "{" + encoded[1:-1].decode() + "}"


def start_maintenance(
    store: DailyMetrics,
    clock: Callable[[], datetime],
    *,
    interval_s: float,
    logger: Logger,
) -> Loop:
    """Run `store.maintain` now, every `interval_s`, and just after each UTC midnight, on a
    background loop of this process: the retention job's scheduler where no cron exists (every
    replica runs it; PostgreSQL's advisory lock makes them take turns). After a failure
    (PostgreSQL not up yet) it tries again within 10 s."""

    def maintain() -> float:
        report = store.maintain(clock().date())
        if report.created or report.dropped or report.spent_today_reset:
            logger.info(
                "events_log maintained",
                extra={
                    "created": [d.isoformat() for d in report.created],
                    "dropped": [d.isoformat() for d in report.dropped],
                    "spentTodayReset": report.spent_today_reset,
                },
            )
        for day, reason in report.kept:
            logger.warning(
                "events_log day kept past retention: not exported and verified",
                extra={"day": day.isoformat(), "reason": reason},
            )
        now = clock().timestamp()
        return max(0.5, min(interval_s, _SECONDS_PER_DAY - now % _SECONDS_PER_DAY + 1))

    return periodic(  # PostgreSQL not up yet: try again within 10 s
        maintain,
        name="events-log-maintenance",
        logger=logger,
        failure="events_log maintenance failed",
        retry_s=min(interval_s, 10.0),
    )


def _sqlstate(exc: BaseException | None) -> str:
    if isinstance(exc, pg_errors.DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return str(exc.args[0].get("C", ""))
    return ""


# What a live counters rebuild reads (`service.live_counters_recovery`).
_TOTALS: Final = """
SELECT CAST(campaign_id AS text), impressions, clicks, spend
FROM daily_metrics WHERE date = CAST(:day AS date)
"""
# created_at is UTC wall time (sessions run in UTC), LOCALTIMESTAMP too.
_RECENT: Final = """
SELECT CAST(event_id AS text), CAST(campaign_id AS text), event_type, price
FROM events_log
WHERE day = CAST(:day AS date)
  AND created_at >= LOCALTIMESTAMP - make_interval(secs => CAST(:seconds AS double precision))
"""


def read_snapshot(database: Database, day: date, *, lost_at: str, recent_s: float) -> DaySnapshot:
    """What PostgreSQL holds for `day`, in one transaction; `recent_s`: how far back the
    recent events reach (by arrival)."""
    with database.transaction(read_only=True) as conn:
        totals = conn.run(_TOTALS, day=day.isoformat()) or []
        recent = conn.run(_RECENT, day=day.isoformat(), seconds=recent_s) or []
    return DaySnapshot(
        day=day,
        totals={row[0]: (int(row[1]), int(row[2]), from_decimal(row[3])) for row in totals},
        recent=tuple((r[0], r[1], r[2] == "click", from_decimal(r[3])) for r in recent),
        lost_at=lost_at,
    )
