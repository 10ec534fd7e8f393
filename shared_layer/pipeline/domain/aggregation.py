"""From what the Kafka connector delivers to what the aggregation functions count (pure, no I/O).

Both aggregation functions (daily-metrics: PostgreSQL; live-counters: Redis) receive the same
thing: either a batch, a JSON array of one partition's records in offset order
(``{"topic", "partition", "offset", "key", "timestamp", "value"}``, infra/connector), or one
record per call (the event as the body, its place in ``X-Topic`` / ``X-Kafka-Partition`` /
``X-Kafka-Offset`` headers, or, from Knative's KafkaSource, in the CloudEvent's ``ce-source``
and ``ce-id``). `records_from_request` turns either into `KafkaRecord`s: the Kafka
metadata stays at that edge (`pipeline.service.delivery`), out of this pure module.

`read_events` then sorts the records into events to count and rejections. A record that is not
a valid event, or whose UTC day lies outside the days the caller keeps (`DayWindow`), is set
aside with its topic, partition, offset and reason instead of failing the batch: one bad
record must never block a partition (the connector would retry it, then dead-letter the whole
batch). The same event id twice in one batch is kept once.

`daily_deltas` is the arithmetic of the pipeline: per (campaign, UTC day), impressions, clicks
and spend in integer micros.

Example::

    records = records_from_request(request.body, request.headers)   # service.delivery
    intake = read_events(records, DayWindow.last_days(today, 30))
    deltas = daily_deltas(e for _, e in intake.events)   # {(campaignId, day): DayDelta}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final, Literal

from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import BadRequest, ValidationFailed
from shared_layer.kernel.money import Micros
from shared_layer.pipeline.domain.events import AdEvent, parse_event

__all__ = [
    "REJECTION_REASONS",
    "DayDelta",
    "DayWindow",
    "Intake",
    "KafkaRecord",
    "PartitionSlice",
    "Rejection",
    "RejectionReason",
    "by_partition",
    "correlation_ids",
    "daily_deltas",
    "read_events",
]

RejectionReason = Literal["invalid", "too-old", "in-the-future", "unknown-campaign"]
REJECTION_REASONS: Final[tuple[RejectionReason, ...]] = (
    "invalid",  # not an event: parse_event refused it
    "too-old",  # its day is before the window the caller keeps (retention)
    "in-the-future",  # its day is after tomorrow (UTC): a clock is wrong
    "unknown-campaign",  # no such campaign or ad (decided by the store, not here)
)


_MAX_LOGGED_IDS = 2_000  # a batch line names at most this many ads
# ... and at most this many characters of them: of-watchdog reads a function's output line by line
# up to 64 KiB, and a longer line stops it reading at all, so the function blocks on its next
# write (seen: 2,000 request ids of 36 characters hung daily-metrics and live-counters).
_MAX_LOGGED_ID_CHARS = 40_000


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One delivered record: where it was in Kafka, and its value.

    `value` is the decoded JSON of a batch element, or the raw body of a one-record call.
    `partition` and `offset` are None when a one-record call came without the headers (a
    manual invocation).
    """

    topic: str
    partition: int | None
    offset: int | None
    value: Any
    # The record's Kafka headers (names lower-case), for the log line: not part of its identity.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record set aside, with what an operator needs to find it in Kafka."""

    topic: str
    partition: int | None
    offset: int | None
    event_id: str | None
    reason: RejectionReason
    detail: str = ""

    def to_log(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "eventId": self.event_id,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class DayWindow:
    """The UTC days whose events a caller counts: `first` to `last`, both included."""

    first: date
    last: date

    @classmethod
    def last_days(cls, today: date, days: int) -> DayWindow:
        """The last `days` days up to today, and tomorrow (a producer's clock a little ahead).

        >>> DayWindow.last_days(date(2025, 11, 29), 30)
        DayWindow(first=datetime.date(2025, 10, 31), last=datetime.date(2025, 11, 30))
        """
        if days < 1:
            raise ValueError("a window holds at least one day")
        return cls(first=today - timedelta(days=days - 1), last=today + timedelta(days=1))

    def judge(self, day: date) -> RejectionReason | None:
        """None when `day` is inside, else why it is not."""
        if day < self.first:
            return "too-old"
        if day > self.last:
            return "in-the-future"
        return None


@dataclass(slots=True)
class Intake:
    """What a batch holds: events to count (in delivery order) and records set aside."""

    events: list[tuple[KafkaRecord, AdEvent]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    repeated: int = 0  # the same event id again within this batch (kept once)

    @property
    def received(self) -> int:
        return len(self.events) + len(self.rejected) + self.repeated

    def set_aside(self, event_ids: Iterable[str], reason: RejectionReason) -> list[Rejection]:
        """Move the events with these ids from `events` to `rejected` (the store refused them:
        an unknown campaign); returns the new rejections."""
        refused = set(event_ids)
        if not refused:
            return []
        kept, moved = [], []
        for record, event in self.events:
            if event.event_id in refused:
                moved.append(_rejection(record, event.event_id, reason, "no such campaign or ad"))
            else:
                kept.append((record, event))
        self.events = kept
        self.rejected.extend(moved)
        return moved


@dataclass(frozen=True, slots=True)
class PartitionSlice:
    """The events of one partition in a delivery, with the offset the delivery ends at."""

    topic: str
    partition: int
    events: list[tuple[int, AdEvent]]
    last_offset: int


@dataclass(frozen=True, slots=True)
class DayDelta:
    """What one (campaign, day) gains from a batch. Spend is in micros."""

    impressions: int = 0
    clicks: int = 0
    spend_micros: Micros = 0

    def plus(self, event: AdEvent) -> DayDelta:
        if event.event_type == "impression":
            return DayDelta(
                self.impressions + 1, self.clicks, self.spend_micros + event.price_micros
            )
        return DayDelta(self.impressions, self.clicks + 1, self.spend_micros)


def read_events(records: Iterable[KafkaRecord], window: DayWindow) -> Intake:
    """Parse every record; keep valid events inside `window`, each event id once."""
    intake = Intake()
    seen: set[str] = set()
    for record in records:
        if isinstance(record.value, AdEvent):  # decoded with its batch
            event = record.value
        elif not isinstance(record.value, dict | bytes | str):
            intake.rejected.append(_rejection(record, None, "invalid", "not a JSON object"))
            continue
        else:
            try:
                event = parse_event(record.value)
            except ValidationFailed as exc:
                claimed = _claimed_id(record.value)
                intake.rejected.append(_rejection(record, claimed, "invalid", exc))
                continue
        reason = window.judge(event.day)
        if reason is not None:
            detail = f"day {event.day.isoformat()} outside {window.first}..{window.last}"
            intake.rejected.append(_rejection(record, event.event_id, reason, detail))
            continue
        if event.event_id in seen:
            intake.repeated += 1
            continue
        seen.add(event.event_id)
        intake.events.append((record, event))
    return intake


def daily_deltas(events: Iterable[AdEvent]) -> dict[tuple[str, date], DayDelta]:
    """Impressions, clicks and spend per (campaign id, UTC day), exact in integer micros.

    >>> from datetime import datetime, UTC
    >>> at = datetime(2025, 11, 29, 12, tzinfo=UTC)
    >>> i = AdEvent.impression(impression_id="0b6d1a2e-0000-4000-8000-000000000001",
    ...     campaign_id="c", ad_id="a", user_id="u", placement_id="p", bid_cpm_micros=2_500_000,
    ...     price_micros=2_500, at=at)
    >>> daily_deltas([i])[("c", date(2025, 11, 29))]
    DayDelta(impressions=1, clicks=0, spend_micros=2500)
    """
    deltas: dict[tuple[str, date], DayDelta] = {}
    for event in events:
        key = (event.campaign_id, event.day)
        deltas[key] = deltas.get(key, DayDelta()).plus(event)
    return deltas


def by_partition(records: Sequence[KafkaRecord], intake: Intake) -> list[PartitionSlice]:
    """The intake's events grouped by (topic, partition), in offset order, each slice ending at
    the last offset delivered for it (counted or not), so that a consumer of offsets can move
    past records it set aside. Raises BadRequest if a record has no topic, partition or offset.

    >>> r = [KafkaRecord("clicks", 0, 5, {}), KafkaRecord("clicks", 0, 6, {})]
    >>> by_partition(r, Intake())
    [PartitionSlice(topic='clicks', partition=0, events=[], last_offset=6)]
    """
    last: dict[tuple[str, int], int] = {}
    for record in records:
        if not record.topic or record.partition is None or record.offset is None:
            raise BadRequest(
                "every record needs its topic, partition and offset (X-Topic, X-Kafka-* headers)"
            )
        key = (record.topic, record.partition)
        last[key] = max(last.get(key, record.offset), record.offset)
    events: dict[tuple[str, int], list[tuple[int, AdEvent]]] = {key: [] for key in last}
    for record, event in intake.events:
        events[(record.topic, record.partition or 0)].append((record.offset or 0, event))
    return [
        PartitionSlice(topic, partition, sorted(events[(topic, partition)], key=_offset), end)
        for (topic, partition), end in last.items()
    ]


def _offset(pair: tuple[int, AdEvent]) -> int:
    return pair[0]


def correlation_ids(records: Iterable[KafkaRecord]) -> list[str]:
    """The request ids of the ads these records came from (`kernel.correlation`), in order, for
    the invocation's log line: one search for an ad's request id finds the batch that counted it.

    >>> correlation_ids([KafkaRecord("clicks", 0, 1, {}, {"x-request-id": "req-1"})])
    ['req-1']
    """
    ids = []
    chars = 0
    for record in records:
        correlation = Correlation.from_headers(record.headers)
        if correlation is None:
            continue
        chars += len(correlation.request_id) + 4  # as JSON: quotes, comma, space
        if chars > _MAX_LOGGED_ID_CHARS:
            break
        ids.append(correlation.request_id)
        if len(ids) == _MAX_LOGGED_IDS:
            break
    return ids


def _claimed_id(value: Any) -> str | None:
    """The eventId a rejected record claims, for the log (only if it is short text)."""
    if isinstance(value, bytes | str):
        try:
            value = json.loads(value)
        except (ValueError, UnicodeDecodeError):
            return None
    claimed = value.get("eventId") if isinstance(value, dict) else None
    return claimed if isinstance(claimed, str) and len(claimed) <= 64 else None


def _rejection(
    record: KafkaRecord,
    event_id: str | None,
    reason: RejectionReason,
    detail: str | Exception,
) -> Rejection:
    return Rejection(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        event_id=event_id,
        reason=reason,
        detail=str(detail)[:200],
    )
