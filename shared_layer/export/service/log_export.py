"""The log-level export: every closed UTC hour of events_log, as files in an S3 bucket.

`LogExport.run(now)` writes each pending hour (oldest first, both event types) through
`ExportLedger.export`, which holds the hour's lock and marks it exported only after `_write`
has put every part, then the manifest, into the bucket and read them back. Objects are keyed
and encoded deterministically (shared_layer.export.domain.log_export), so an hour written again
after a crash or an outage replaces its objects byte for byte; objects under the hour's folder that
the manifest does not list (never expected: an hour only grows) are deleted before the manifest is
written. When the bucket does not answer, the run stops at the first failed hour (marked
failed, retried next run) instead of failing every hour in turn.

Example::

    export = LogExport(ExportLedger(db), bucket, prefix="", records_per_part=100_000,
                       grace=timedelta(minutes=10))
    report = export.run(datetime.now(UTC))       # RunReport(exported=..., failed=..., ...)
    export.status(datetime.now(UTC))             # what make export-status prints
"""

from __future__ import annotations

import time as timer
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any, Final

from aws_lambda_powertools import Logger

from shared_layer.export.domain.log_export import (
    EVENT_TYPES,
    ExportHour,
    Manifest,
    closed_hours,
    encode_parts,
    lag_hours,
    utc_text,
)
from shared_layer.export.metrics import HOURS, LAG_HOURS, LAST_RUN, RECORDS
from shared_layer.export.store.export_ledger import ExportedHour, ExportLedger
from shared_layer.export.store.object_bucket import Bucket
from shared_layer.kernel.background import Loop, periodic
from shared_layer.kernel.errors import UpstreamFailed, UpstreamUnavailable
from shared_layer.pipeline.domain.events import AdEvent

__all__ = ["LogExport", "RunReport", "start_schedule"]

_PART_TYPE: Final = "application/x-ndjson+gzip"  # no Content-Encoding: clients keep the bytes
_MANIFEST_TYPE: Final = "application/json"


@dataclass(frozen=True, slots=True)
class RunReport:
    exported: tuple[ExportedHour, ...] = ()
    failed: tuple[tuple[ExportHour, str], ...] = ()
    busy: tuple[ExportHour, ...] = ()  # another exporter held them
    pending_before: int = 0
    lag_hours: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "exported": [
                {
                    "eventType": e.hour.event_type,
                    "hour": utc_text(e.hour.start),
                    "records": e.records,
                }
                for e in self.exported
            ],
            "failed": [
                {"eventType": h.event_type, "hour": utc_text(h.start), "error": error}
                for h, error in self.failed
            ],
            "busy": len(self.busy),
            "pendingBefore": self.pending_before,
            "lagHours": self.lag_hours,
        }


class LogExport:
    """Exports closed hours; any number of replicas may run it at once (hour locks)."""

    def __init__(
        self,
        ledger: ExportLedger,
        bucket: Bucket,
        *,
        prefix: str,
        records_per_part: int,
        grace: timedelta,
        since: date | None = None,
    ) -> None:
        if prefix and not prefix.endswith("/"):
            raise ValueError("the prefix ends with '/' (or is empty)")
        self.ledger = ledger
        self.bucket = bucket
        self.prefix = prefix
        self.records_per_part = records_per_part
        self.grace = grace
        self.since = since
        self.bucket_ok = False

    def check_bucket(self) -> str | None:
        """None when the bucket answers and is ours; the reason when it cannot be reached.

        Raises BucketMisconfigured (no such bucket, credentials refused): settings to fix, so
        the caller should stop. An unreachable endpoint may be an outage: the caller reports
        it and stays not ready until a later check passes."""
        try:
            self.bucket.check()
        except UpstreamUnavailable as exc:
            self.bucket_ok = False
            return str(exc)
        self.bucket_ok = True
        return None

    def run(self, now: datetime, *, within_s: float | None = None) -> RunReport:
        """Export the pending closed hours, oldest first; with `within_s`, start no hour after
        that many seconds (the rest is left for the next run)."""
        pending = self._pending(now)
        exported: list[ExportedHour] = []
        failed: list[tuple[ExportHour, str]] = []
        busy: list[ExportHour] = []
        stop_at = None if within_s is None else timer.monotonic() + within_s
        for hour in pending:
            if stop_at is not None and timer.monotonic() >= stop_at:
                break
            try:
                done = self.ledger.export(hour, partial(self._write, hour))
            except (UpstreamUnavailable, UpstreamFailed) as exc:
                HOURS.labels(hour.event_type, "failed").inc()
                failed.append((hour, str(exc)))
                break  # the bucket (or PostgreSQL) is unwell: the next run tries again
            if done is None:
                busy.append(hour)
                continue
            HOURS.labels(hour.event_type, "exported").inc()
            RECORDS.labels(hour.event_type).inc(done.records)
            exported.append(done)
        lag = self._set_lag(now)
        LAST_RUN.set_to_current_time()
        return RunReport(tuple(exported), tuple(failed), tuple(busy), len(pending), lag)

    def status(self, now: datetime) -> dict[str, Any]:
        """Hours exported and failed (with their errors) and pending, since the window began."""
        since, until = self._window(now)
        rows = self.ledger.status(since, until) if until > since else []
        pending = self.ledger.pending(since, until)
        return {
            "since": utc_text(since),
            "until": utc_text(until),
            "exported": [r.to_json() for r in rows if r.status == "exported"],
            "failed": [r.to_json() for r in rows if r.status == "failed"],
            "pending": [{"eventType": h.event_type, "hour": utc_text(h.start)} for h in pending],
            "lagHours": self._set_lag(now, pending),
        }

    def _write(self, hour: ExportHour, events: Sequence[AdEvent]) -> Manifest:
        parts = encode_parts(
            hour, events, records_per_part=self.records_per_part, prefix=self.prefix
        )
        for part in parts:
            self.bucket.put_verified(
                part.key, part.body, sha256=part.sha256, content_type=_PART_TYPE
            )
        manifest = Manifest.of(hour, parts, prefix=self.prefix)
        listed = {p.key for p in parts} | {manifest.key}
        stale = [k for k in self.bucket.keys(hour.folder(self.prefix)) if k not in listed]
        if stale:
            self.bucket.delete(stale)
        body = manifest.to_bytes()
        self.bucket.put_verified(
            manifest.key, body, sha256=manifest.sha256(), content_type=_MANIFEST_TYPE
        )
        if self.bucket.get(manifest.key) != body:
            raise UpstreamFailed(f"{self.bucket.where}: {manifest.key} does not read back")
        return manifest

    def _window(self, now: datetime) -> tuple[datetime, datetime]:
        """From the oldest day events_log holds (or `since`, if later) to the last closed hour."""
        oldest = self.ledger.oldest_day() or now.astimezone(UTC).date()
        first = max(oldest, self.since) if self.since else oldest
        hours = closed_hours(_midnight(first), now, grace=self.grace)
        start = _midnight(first)
        return start, (hours[-1] + timedelta(hours=1)) if hours else start

    def _pending(self, now: datetime) -> list[ExportHour]:
        since, until = self._window(now)
        return self.ledger.pending(since, until)

    def _set_lag(
        self, now: datetime, pending: Sequence[ExportHour] | None = None
    ) -> dict[str, float]:
        left = self._pending(now) if pending is None else pending
        lag: dict[str, float] = {
            t: round(
                lag_hours((h.start for h in left if h.event_type == t), now, grace=self.grace), 3
            )
            for t in EVENT_TYPES
        }
        for event_type, hours in lag.items():
            LAG_HOURS.labels(event_type).set(hours)
        return lag


def start_schedule(
    export: LogExport, clock: Callable[[], datetime], *, interval_s: float, logger: Logger
) -> Loop:
    """Run `export.run` now and every `interval_s` on a background loop (the schedule where no
    cron exists; every replica may run it, the hours' locks keep them apart). Each run that
    did something, and each failure, is one log line; a failed run is tried again after
    `interval_s` too."""

    def run() -> float:
        report = export.run(clock())
        if report.exported or report.failed:
            logger.info("log export run", extra=report.to_json())
        return interval_s

    # PostgreSQL or the bucket away: the next run tries again.
    return periodic(
        run, name="log-export", logger=logger, failure="log export run failed", retry_s=interval_s
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)
