"""Which hours of events_log are exported: the log_export_hours table (migration 0009).

`ExportLedger.export(hour, write)` is the exactly-once step of the log-level export, in ONE
transaction: take the hour's advisory lock (another exporter holding it means "not now"), read
the hour's events, let `write` put every object and the manifest into the bucket and verify
them, then mark the hour `exported` with the manifest's record count, and commit. A process
killed anywhere in between commits nothing: the lock goes with its connection and the hour is
still pending, so the next run writes the same keys again (the objects are byte-identical), and
no record can appear twice. A failure of the bucket marks the hour `failed` with the error,
which the next run retries.

Example::

    ledger = ExportLedger(Database.from_url(url, password=secret))
    for hour in ledger.pending(since, until):
        ledger.export(hour, write_to_bucket)   # -> ExportedHour, or None if locked elsewhere
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from shared_layer.export.domain.log_export import EVENT_TYPES, ExportHour, Manifest, utc_text
from shared_layer.kernel.storage.postgres import Database
from shared_layer.pipeline.domain.events import AdEvent

__all__ = ["ExportLedger", "ExportedHour", "HourStatus"]

_LOCK_CLASS: Final = 1280263000  # 'LOGX' region of advisory keys, + the event type's index
_ERROR_CHARS: Final = 500

_EVENTS_OF_HOUR: Final = """
SELECT CAST(event_id AS text), event_type, timestamp, CAST(impression_id AS text),
       CAST(campaign_id AS text), CAST(ad_id AS text), user_id, placement_id,
       CAST(round(COALESCE(bid_price, 0) * 1000000) AS bigint),
       CAST(round(price * 1000000) AS bigint), country, device_type
FROM events_log
WHERE day = CAST(:day AS date) AND event_type = :type
  AND timestamp >= CAST(:start AS timestamp) AND timestamp < CAST(:end AS timestamp)
ORDER BY event_id
"""
_PENDING: Final = """
SELECT t.event_type, h.hour
FROM generate_series(CAST(:since AS timestamp), CAST(:until AS timestamp) - interval '1 hour',
                     interval '1 hour') AS h(hour)
CROSS JOIN unnest(CAST(:event_types AS varchar[])) AS t(event_type)
LEFT JOIN log_export_hours x ON x.event_type = t.event_type AND x.hour = h.hour
WHERE x.status IS DISTINCT FROM 'exported'
ORDER BY h.hour, t.event_type
"""
_MARK_EXPORTED: Final = """
INSERT INTO log_export_hours AS x (event_type, hour, status, records, objects, manifest_key,
                                   manifest_sha256, attempts, last_error, exported_at, updated_at)
VALUES (:type, CAST(:hour AS timestamp), 'exported', :records, :objects, :key, :sha, 1, NULL,
        now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
ON CONFLICT (event_type, hour) DO UPDATE
SET status = 'exported', records = EXCLUDED.records, objects = EXCLUDED.objects,
    manifest_key = EXCLUDED.manifest_key, manifest_sha256 = EXCLUDED.manifest_sha256,
    attempts = x.attempts + 1, last_error = NULL, exported_at = EXCLUDED.exported_at,
    updated_at = EXCLUDED.updated_at
"""
# Never over an export that succeeded meanwhile (another exporter, after our lock was gone).
_MARK_FAILED: Final = """
INSERT INTO log_export_hours AS x (event_type, hour, status, attempts, last_error, updated_at)
VALUES (:type, CAST(:hour AS timestamp), 'failed', 1, :error, now() AT TIME ZONE 'UTC')
ON CONFLICT (event_type, hour) DO UPDATE
SET status = 'failed', attempts = x.attempts + 1, last_error = EXCLUDED.last_error,
    updated_at = EXCLUDED.updated_at
WHERE x.status <> 'exported'
"""
_STATUS: Final = """
SELECT event_type, hour, status, records, objects, manifest_key, attempts, last_error, exported_at
FROM log_export_hours
WHERE hour >= CAST(:since AS timestamp) AND hour < CAST(:until AS timestamp)
ORDER BY hour, event_type
"""
_OLDEST_DAY: Final = """
SELECT min(to_date(substr(c.relname, 12), 'YYYYMMDD'))
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = CAST('events_log' AS regclass) AND c.relname ~ '^events_log_[0-9]{8}$'
"""


@dataclass(frozen=True, slots=True)
class ExportedHour:
    hour: ExportHour
    records: int
    objects: int
    manifest_key: str


@dataclass(frozen=True, slots=True)
class HourStatus:
    """One row of `make export-status`: an hour that was exported or tried."""

    hour: ExportHour
    status: str  # exported, failed
    records: int
    objects: int
    manifest_key: str | None
    attempts: int
    last_error: str | None
    exported_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "eventType": self.hour.event_type,
            "hour": utc_text(self.hour.start),
            "status": self.status,
            "records": self.records,
            "objects": self.objects,
            "manifest": self.manifest_key,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "exportedAt": utc_text(self.exported_at) if self.exported_at else None,
        }


class ExportLedger:
    """The PostgreSQL side of the export; thread-safe, share one per process."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def oldest_day(self) -> date | None:
        """The oldest day events_log still holds (its oldest partition)."""
        return self.db.run(_OLDEST_DAY)[0][0]

    def pending(self, since: datetime, until: datetime) -> list[ExportHour]:
        """Hours in [since, until) of either type not exported yet (never tried, or failed)."""
        if until <= since:
            return []
        rows = self.db.run(
            _PENDING,
            since=_wall(since),
            until=_wall(until),
            event_types="{" + ",".join(EVENT_TYPES) + "}",
        )
        return [ExportHour(t, _utc(h)) for t, h in rows]

    def export(
        self, hour: ExportHour, write: Callable[[Sequence[AdEvent]], Manifest]
    ) -> ExportedHour | None:
        """Export one hour exactly once in effect (module docstring). None when another
        exporter holds the hour. Whatever `write` raises propagates after the hour is marked
        failed."""
        try:
            with self.db.transaction() as conn:
                locked = conn.run(
                    "SELECT pg_try_advisory_xact_lock(:k1, :k2)",
                    k1=_LOCK_CLASS + EVENT_TYPES.index(hour.event_type),
                    k2=int(hour.start.timestamp()) // 3600,
                )[0][0]
                if not locked:
                    return None
                rows = conn.run(
                    _EVENTS_OF_HOUR,
                    day=hour.start.date().isoformat(),
                    type=hour.event_type,
                    start=_wall(hour.start),
                    end=_wall(hour.end),
                )
                manifest = write([_event(row) for row in rows])
                conn.run(
                    _MARK_EXPORTED,
                    type=hour.event_type,
                    hour=_wall(hour.start),
                    records=manifest.records,
                    objects=len(manifest.objects),
                    key=manifest.key,
                    sha=manifest.sha256(),
                )
        except Exception as exc:
            self._mark_failed(hour, exc)
            raise
        return ExportedHour(hour, manifest.records, len(manifest.objects), manifest.key)

    def status(self, since: datetime, until: datetime) -> list[HourStatus]:
        rows = self.db.run(_STATUS, since=_wall(since), until=_wall(until))
        return [
            HourStatus(
                hour=ExportHour(t, _utc(h)),
                status=s,
                records=int(records),
                objects=int(objects),
                manifest_key=key,
                attempts=int(attempts),
                last_error=error,
                exported_at=_utc(at) if at else None,
            )
            for t, h, s, records, objects, key, attempts, error, at in rows
        ]

    def _mark_failed(self, hour: ExportHour, exc: Exception) -> None:
        try:
            self.db.run(
                _MARK_FAILED,
                type=hour.event_type,
                hour=_wall(hour.start),
                error=f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS],
            )
        except Exception as marking:  # PostgreSQL itself is the problem: report the first
            exc.add_note(f"could not record the failure: {marking!r}")


def _event(row: Sequence[Any]) -> AdEvent:
    event_id, event_type, at, impression_id, campaign, ad, user, placement, bid, price = row[:10]
    return AdEvent(
        event_id=event_id,
        event_type=event_type,
        timestamp=_utc(at),
        impression_id=impression_id or event_id,
        campaign_id=campaign,
        ad_id=ad,
        user_id=user,
        placement_id=placement,
        bid_cpm_micros=int(bid),
        price_micros=int(price),
        country=row[10],
        device_type=row[11],
    )


def _wall(moment: datetime) -> str:
    """UTC wall time for the TIMESTAMP (without time zone) columns, which hold UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
