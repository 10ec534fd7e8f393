"""Today's numbers, live: per-campaign, per-day counters in Redis (the seed's ``stats::*`` keys).

Key names (seed, ARCHITECTURE.md "Redis Keys"), values are integers (spend in micros)::

    stats::impressions::{campaignId}::{yyyy-mm-dd}
    stats::clicks::{campaignId}::{yyyy-mm-dd}
    stats::spend::{campaignId}::{yyyy-mm-dd}
    kafka::offset::{topic}::{partition}      the last offset counted (the watermark)

Exactly once under redelivery: the connector delivers each partition's records in offset order
and may deliver them again (a retry, a restarted connector). One Lua script per batch
(`COUNT_SCRIPT`) reads the partition's watermark, adds only the records with a higher offset to
the counters, and moves the watermark to the batch's last offset, all in one atomic step: a
batch delivered again, whole or in part, adds nothing. Counters expire `keep_days` after the
start of their day (default 3: today's are read live, older days come from PostgreSQL).

Known limit: the watermark deduplicates deliveries of the same record, not a second record
with the same event. The outbox relay re-sends an event at a NEW offset when a replica died
between sending it and acknowledging it; PostgreSQL's events_log counts that event once (event
ids), these counters count it twice. Within one batch the same event id is counted once.

Other behaviour to know:
- Counters do not know campaigns: an event for a campaign that does not exist is counted
  under its id (analytics answers 404 for such a campaign; daily-metrics sets it aside).
- If the topics are deleted and created again (offsets start at 0), delete the
  ``kafka::offset::*`` keys, or the new records stay below the old watermarks.
- The keys of one script are not in one Redis Cluster hash slot (the seed's names have no hash
  tag): this module needs a single Redis server or a primary with replicas.

Example::

    counters = LiveCounters(redis.Redis.from_url(url), keep_days=3)
    applied = counters.count("impressions", 3, [(1041, event), (1042, other)], last_offset=1042)
    applied.counted, applied.already_counted   # 2, 0; the same call again: 0, 2
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

import redis
from prometheus_client import Counter, Histogram
from redis import exceptions as redis_errors

from shared_layer.core.aggregation import REJECTION_REASONS, DayWindow
from shared_layer.core.errors import UpstreamFailed, UpstreamUnavailable
from shared_layer.core.events import AdEvent
from shared_layer.core.money import Micros
from shared_layer.stores._lua import script

__all__ = [
    "BATCH_SECONDS",
    "COUNT_SCRIPT",
    "DEFAULT_KEEP_DAYS",
    "EVENTS",
    "REJECTED",
    "Applied",
    "CounterPlan",
    "LiveCounters",
    "StatKind",
    "offset_key",
    "plan",
    "stats_key",
]

StatKind = Literal["impressions", "clicks", "spend"]
DEFAULT_KEEP_DAYS: Final = 3
# Lua numbers are doubles: sums stay exact below 2**53, so a plan is cut into chunks whose spend
# stays below it (in practice one chunk: 2**53 micros is nine billion units of currency).
_EXACT_LIMIT: Final = 2**53 - 1

EVENTS = Counter(
    "live_counters_events_total",
    "Events received by live-counters, by outcome",
    ["outcome"],  # counted, already-counted, rejected
)
REJECTED = Counter(
    "live_counters_rejected_total",
    "Records live-counters did not count, by reason",
    ["reason"],
)
BATCH_SECONDS = Histogram(
    "live_counters_batch_seconds",
    "Time to apply one batch to Redis (one script per partition)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
for _outcome in ("counted", "already-counted", "rejected"):
    EVENTS.labels(_outcome)
for _reason in REJECTION_REASONS[:3]:  # live counters know no campaigns
    REJECTED.labels(_reason)

# live_counters_count.lua beside this file: its KEYS and ARGV are described there.
COUNT_SCRIPT: Final = script("live_counters_count.lua")


def stats_key(kind: StatKind, campaign_id: str, day: date) -> str:
    """The seed's counter key of one campaign and UTC day (analytics reads it too).

    >>> stats_key("clicks", "c-1", date(2025, 11, 29))
    'stats::clicks::c-1::2025-11-29'
    """
    return f"stats::{kind}::{campaign_id}::{day.isoformat()}"


def offset_key(topic: str, partition: int) -> str:
    """The partition's watermark (seed name).

    >>> offset_key("impressions", 3)
    'kafka::offset::impressions::3'
    """
    return f"kafka::offset::{topic}::{partition}"


@dataclass(frozen=True, slots=True)
class CounterPlan:
    """One script call: its KEYS and ARGV (built by `plan`, pure)."""

    keys: tuple[str, ...]
    args: tuple[int | str, ...]
    records: int


@dataclass(frozen=True, slots=True)
class Applied:
    """What a batch did to the counters."""

    counted: int
    already_counted: int
    watermark_before: int


def plan(
    topic: str,
    partition: int,
    events: Sequence[tuple[int, AdEvent]],
    *,
    last_offset: int,
    keep_days: int,
) -> list[CounterPlan]:
    """The script calls that count `events` ((offset, event), offset order) of one partition.

    The last call moves the watermark to `last_offset` (the batch's last record, counted or
    not). Usually one call; more only when a call's spend would leave Lua's exact integers.
    """
    chunks: list[list[tuple[int, AdEvent]]] = [[]]
    spend = 0
    for offset, event in events:
        if chunks[-1] and spend + event.price_micros > _EXACT_LIMIT:
            chunks.append([])
            spend = 0
        chunks[-1].append((offset, event))
        spend += event.price_micros
    plans = []
    for index, chunk in enumerate(chunks):
        final = index == len(chunks) - 1
        moves_to = last_offset if final else chunk[-1][0]
        plans.append(_plan_chunk(topic, partition, chunk, moves_to, keep_days))
    return plans


def _plan_chunk(
    topic: str,
    partition: int,
    events: Sequence[tuple[int, AdEvent]],
    moves_to: int,
    keep_days: int,
) -> CounterPlan:
    keys: list[str] = [offset_key(topic, partition)]
    expiries: list[int] = []
    index: dict[str, int] = {}

    def key_index(kind: StatKind, event: AdEvent) -> int:
        key = stats_key(kind, event.campaign_id, event.day)
        if key not in index:
            keys.append(key)
            expiries.append(_expires_at(event.day, keep_days))
            index[key] = len(keys)  # Lua's KEYS are 1-based
        return index[key]

    fields: list[str] = []
    for offset, event in events:
        counted: StatKind = "impressions" if event.event_type == "impression" else "clicks"
        price: Micros = event.price_micros
        spend_index = key_index("spend", event) if price > 0 else 0
        fields.append(f"{offset},{key_index(counted, event)},{spend_index},{price};")
    return CounterPlan(
        keys=tuple(keys), args=(moves_to, *expiries, "".join(fields)), records=len(events)
    )


def _expires_at(day: date, keep_days: int) -> int:
    """Midnight UTC `keep_days` after the start of `day`."""
    end = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(days=keep_days)
    return int(end.timestamp())


class LiveCounters:
    """The Redis step of the pipeline (thread-safe; share one per process)."""

    def __init__(self, client: redis.Redis, *, keep_days: int = DEFAULT_KEEP_DAYS) -> None:
        if keep_days < 1:
            raise ValueError("keep_days must be at least 1")
        self.keep_days = keep_days
        self._script = client.register_script(COUNT_SCRIPT)

    def window(self, today: date) -> DayWindow:
        """The days counted live: the last `keep_days` and tomorrow (clock skew)."""
        return DayWindow.last_days(today, self.keep_days)

    def count(
        self,
        topic: str,
        partition: int,
        events: Sequence[tuple[int, AdEvent]],
        *,
        last_offset: int,
    ) -> Applied:
        """Count one partition's events above its watermark; move it to `last_offset`.

        Raises UpstreamUnavailable (503) when Redis cannot be reached: nothing or everything of
        a call was applied, and delivering the batch again is harmless either way.
        """
        started = time.perf_counter()
        counted = already = 0
        before = -1
        for step, call in enumerate(
            plan(topic, partition, events, last_offset=last_offset, keep_days=self.keep_days)
        ):
            try:
                applied, watermark = self._script(keys=list(call.keys), args=list(call.args))
            except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
                raise UpstreamUnavailable("redis unavailable for the live counters") from exc
            except redis_errors.RedisError as exc:
                raise UpstreamFailed(f"redis refused the live counters: {exc}") from exc
            counted += int(applied)
            already += call.records - int(applied)
            if step == 0:
                before = int(watermark)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        return Applied(counted=counted, already_counted=already, watermark_before=before)
