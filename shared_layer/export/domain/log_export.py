"""Log-level data: what one exported UTC hour of events looks like in the bucket (pure).

An hour of one event type becomes a few gzip-compressed newline-delimited JSON objects and one
manifest, under keys that depend only on the hour and the part number::

    <prefix>events/type=impression/date=2026-12-02/hour=13/part-00000.json.gz
    <prefix>events/type=impression/date=2026-12-02/hour=13/part-00001.json.gz
    <prefix>events/type=impression/date=2026-12-02/hour=13/manifest.json

Each line is one event in the pipeline's JSON shape (`AdEvent.to_json`: money in integer
micros), records ordered by event id and cut into parts of `records_per_part`; the gzip header
carries no time or name. So the same hour always gives byte-identical objects: writing an hour
again replaces its objects, it can never add a second copy of a record. The manifest lists
every object with its record count, size and sha256, and the hour's total; a consumer loads an
hour when its manifest exists, and only the objects it lists.

Example::

    hour = ExportHour("impression", datetime(2026, 12, 2, 13, tzinfo=UTC))
    parts = encode_parts(hour, events, records_per_part=100_000, prefix="ads/")
    manifest = Manifest.of(hour, parts, prefix="ads/")
    manifest.key        # 'ads/events/type=impression/date=2026-12-02/hour=13/manifest.json'
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from shared_layer.pipeline.domain.events import AdEvent, EventType

__all__ = [
    "EVENT_TYPES",
    "MANIFEST_VERSION",
    "ExportHour",
    "Manifest",
    "Part",
    "closed_hours",
    "encode_parts",
    "lag_hours",
    "utc_text",
]

EVENT_TYPES: Final[tuple[EventType, ...]] = ("impression", "click")
MANIFEST_VERSION: Final = 1
HOUR: Final = timedelta(hours=1)


@dataclass(frozen=True, slots=True, order=True)
class ExportHour:
    """One event type's events of one UTC hour (`start` is on the hour, timezone-aware)."""

    event_type: EventType
    start: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() != timedelta(0):
            raise ValueError("an export hour starts at a UTC time")
        if self.start != self.start.replace(minute=0, second=0, microsecond=0):
            raise ValueError("an export hour starts on the hour")

    @property
    def end(self) -> datetime:
        return self.start + HOUR

    def folder(self, prefix: str) -> str:
        day, hour = f"{self.start:%Y-%m-%d}", f"{self.start:%H}"
        return f"{prefix}events/type={self.event_type}/date={day}/hour={hour}/"

    def part_key(self, prefix: str, number: int) -> str:
        return f"{self.folder(prefix)}part-{number:05d}.json.gz"

    def manifest_key(self, prefix: str) -> str:
        return f"{self.folder(prefix)}manifest.json"

    def label(self) -> str:
        return f"{self.start:%Y-%m-%dT%H}:00Z {self.event_type}"


@dataclass(frozen=True, slots=True)
class Part:
    """One object of an hour: its key, gzip bytes, record count and sha256 (hex)."""

    key: str
    body: bytes
    records: int
    sha256: str

    def entry(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "records": self.records,
            "bytes": len(self.body),
            "sha256": self.sha256,
        }


@dataclass(frozen=True, slots=True)
class Manifest:
    """The hour's table of contents; written last, after every part it lists."""

    key: str
    event_type: EventType
    hour: datetime
    objects: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, hour: ExportHour, parts: Sequence[Part], *, prefix: str) -> Manifest:
        return cls(
            key=hour.manifest_key(prefix),
            event_type=hour.event_type,
            hour=hour.start,
            objects=tuple(p.entry() for p in parts),
        )

    @property
    def records(self) -> int:
        return sum(int(o["records"]) for o in self.objects)

    def to_bytes(self) -> bytes:
        body = {
            "version": MANIFEST_VERSION,
            "eventType": self.event_type,
            "hour": self.hour.strftime("%Y-%m-%dT%H:00:00Z"),
            "format": "ndjson+gzip",
            "records": self.records,
            "objects": list(self.objects),
        }
        return json.dumps(body, indent=1, sort_keys=True).encode() + b"\n"

    def sha256(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()


def encode_parts(
    hour: ExportHour, events: Iterable[AdEvent], *, records_per_part: int, prefix: str
) -> list[Part]:
    """The hour's objects: events sorted by event id, `records_per_part` per object.

    Raises ValueError when an event does not belong to the hour (the reader asked for it).
    """
    if records_per_part < 1:
        raise ValueError("records_per_part must be at least 1")
    ordered = sorted(events, key=lambda e: e.event_id)
    for event in ordered:
        if event.event_type != hour.event_type or not hour.start <= event.timestamp < hour.end:
            raise ValueError(f"event {event.event_id} is not of {hour.label()}")
    return [
        _part(hour.part_key(prefix, number), chunk)
        for number, chunk in enumerate(_chunks(ordered, records_per_part))
    ]


def _part(key: str, events: Sequence[AdEvent]) -> Part:
    lines = b"".join(e.to_bytes() + b"\n" for e in events)
    # mtime=0 and no file name: the same records always compress to the same bytes.
    body = gzip.compress(lines, compresslevel=6, mtime=0)
    return Part(key=key, body=body, records=len(events), sha256=hashlib.sha256(body).hexdigest())


def _chunks(items: Sequence[AdEvent], size: int) -> Iterator[Sequence[AdEvent]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def closed_hours(since: datetime, now: datetime, *, grace: timedelta) -> list[datetime]:
    """UTC hour starts from `since`'s hour up to the last hour that ended at least `grace` ago.

    The grace leaves time for events still on their way (outbox, Kafka, the connector) before
    an hour is written; an event that arrives even later is caught by retention's count check.
    """
    first = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    last_end = (now.astimezone(UTC) - grace).replace(minute=0, second=0, microsecond=0)
    hours = []
    start = first
    while start + HOUR <= last_end:
        hours.append(start)
        start += HOUR
    return hours


def lag_hours(pending: Iterable[datetime], now: datetime, *, grace: timedelta) -> float:
    """How far the export is behind: hours since the oldest closed hour not yet exported ended,
    beyond the grace; 0 when nothing closed is pending."""
    oldest = min(pending, default=None)
    if oldest is None:
        return 0.0
    behind = now.astimezone(UTC) - grace - (oldest + HOUR)
    return max(0.0, behind.total_seconds() / 3600)


def utc_text(moment: datetime) -> str:
    """An instant as the export's JSON writes it: ISO 8601 in UTC with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
