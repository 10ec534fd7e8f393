"""Today's numbers, live: per-campaign, per-day counters in Redis (the seed's ``stats::*`` keys).

Key names (seed, ARCHITECTURE.md "Redis Keys"), values are integers (spend in micros)::

    stats::impressions::{campaignId}::{yyyy-mm-dd}
    stats::clicks::{campaignId}::{yyyy-mm-dd}
    stats::spend::{campaignId}::{yyyy-mm-dd}
    kafka::offset::{topic}::{partition}      the last offset counted (the watermark)

Exactly once in effect (one Lua script per batch, `COUNT_SCRIPT`, atomic):

- a redelivered record (a connector retry, a restarted connector) is below its partition's
  watermark (``kafka::offset::{topic}::{partition}``, the last offset counted) and adds nothing;
- a record the outbox relay produced again at a NEW offset (it died after Kafka acknowledged the
  event and before XDEL) carries an event id already counted: ``live::seen::{eventId}`` is set
  NX, with the dedupe window (`DEFAULT_DEDUPE_S`) as its TTL, in the same script as the count.
  The window must cover the time between the two copies reaching this step: a re-send follows
  its original within the relay's claim time (30 s) plus however long the relays or Kafka are
  down, so 10 minutes by default (`LIVE_COUNTERS_DEDUPE_S`). Memory: one key (~90 bytes) per
  event counted in the window, about 270 MB at 5k events/s.

After Redis lost its data: the ready key (``stats::live::ready``) is gone with the counters.
The script goes on counting, notes when it first found the key missing
(``stats::live::lost-at``) and keeps the ids it counts until a rebuild
(services/live_counters_recovery.py) has run `rebuild` (`REBUILD_SCRIPT`): today's counters
become PostgreSQL's snapshot plus what was counted live and is not in it, and the snapshot's
recent events are marked seen, atomically, then the ready key is set. Until then analytics reads
today from PostgreSQL (`source: "postgres"`). Counters expire `keep_days` after the start of
their day (default 3: today's are read live, older days come from PostgreSQL).

Other behaviour to know:
- Counters do not know campaigns: an event for a campaign that does not exist is counted
  under its id (analytics answers 404 for such a campaign; daily-metrics sets it aside).
- If the topics are deleted and created again (offsets start at 0), delete the
  ``kafka::offset::*`` keys, or the new records stay below the old watermarks.
- The keys of one script are not in one Redis Cluster hash slot (the seed's names have no hash
  tag, and the seen keys are named in the script): this module needs a single Redis server or
  a primary with replicas.

Example::

    counters = LiveCounters(redis.Redis.from_url(url), keep_days=3)
    applied = counters.count("impressions", 3, [(1041, event), (1042, other)], last_offset=1042)
    applied.counted, applied.already_counted   # 2, 0; the same call again: 0, 2
    applied.ready                              # False after Redis lost its data: rebuild
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

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
    "DEFAULT_DEDUPE_S",
    "DEFAULT_KEEP_DAYS",
    "EVENTS",
    "LOST_AT_KEY",
    "READY_KEY",
    "REBUILD_SCRIPT",
    "REJECTED",
    "RESENT",
    "Applied",
    "CounterPlan",
    "DaySnapshot",
    "LiveCounters",
    "StatKind",
    "offset_key",
    "plan",
    "rebuild_plan",
    "stats_key",
]

StatKind = Literal["impressions", "clicks", "spend"]
DEFAULT_KEEP_DAYS: Final = 3
DEFAULT_DEDUPE_S: Final = 600
# While the counters are not ready, the ids counted are kept until the rebuild has used them.
_UNTIL_REBUILT_S: Final = 86_400
READY_KEY: Final = "stats::live::ready"
LOST_AT_KEY: Final = "stats::live::lost-at"
STAT_KINDS: Final[tuple[StatKind, ...]] = ("impressions", "clicks", "spend")
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
RESENT = Counter(
    "live_counters_resent_total",
    "Events above their partition's watermark whose id was counted already (produced again)",
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
# live_counters_rebuild.lua beside this file: one day's counters made whole from PostgreSQL.
REBUILD_SCRIPT: Final = script("live_counters_rebuild.lua")


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
    ready: bool = True  # False: Redis lost the counters and they are not rebuilt yet
    resent: int = 0  # events above the watermark whose id was counted already (a re-send)


def plan(
    topic: str,
    partition: int,
    events: Sequence[tuple[int, AdEvent]],
    *,
    last_offset: int,
    keep_days: int,
    dedupe_s: int = DEFAULT_DEDUPE_S,
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
        plans.append(_plan_chunk(topic, partition, chunk, moves_to, keep_days, dedupe_s))
    return plans


def _plan_chunk(
    topic: str,
    partition: int,
    events: Sequence[tuple[int, AdEvent]],
    moves_to: int,
    keep_days: int,
    dedupe_s: int,
) -> CounterPlan:
    keys: list[str] = [offset_key(topic, partition), READY_KEY, LOST_AT_KEY]
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
        fields.append(
            f"{offset},{event.event_id},{key_index(counted, event)},{spend_index},{price};"
        )
    return CounterPlan(
        keys=tuple(keys),
        args=(moves_to, dedupe_s, max(dedupe_s, _UNTIL_REBUILT_S), *expiries, "".join(fields)),
        records=len(events),
    )


@dataclass(frozen=True, slots=True)
class DaySnapshot:
    """What PostgreSQL holds for one day, read in one transaction (services build it).

    `totals`: campaign id -> (impressions, clicks, spend micros) from daily_metrics;
    `recent`: the day's events logged since shortly before the loss, (event id, campaign id,
    is a click, price micros) each; `lost_at`: the lost-at value it was read under ('' none).
    """

    day: date
    totals: dict[str, tuple[int, int, Micros]]
    recent: tuple[tuple[str, str, bool, Micros], ...]
    lost_at: str


def rebuild_plan(
    snapshot: DaySnapshot, *, ready_value: str, keep_days: int, dedupe_s: int
) -> CounterPlan:
    """The rebuild script's KEYS and ARGV for `snapshot` (pure; live_counters_rebuild.lua)."""
    keys: list[str] = [READY_KEY, LOST_AT_KEY]
    bases: list[int] = []
    index: dict[tuple[str, StatKind], int] = {}
    campaigns = set(snapshot.totals) | {campaign for _, campaign, _, _ in snapshot.recent}
    for campaign in sorted(campaigns):
        values = snapshot.totals.get(campaign, (0, 0, 0))
        for kind, value in zip(STAT_KINDS, values, strict=True):
            keys.append(stats_key(kind, campaign, snapshot.day))
            bases.append(value)
            index[(campaign, kind)] = len(keys)  # Lua's KEYS are 1-based
    fields = [
        f"{event_id},{index[(campaign, 'clicks' if click else 'impressions')]},"
        f"{index[(campaign, 'spend')] if price > 0 else 0},{price};"
        for event_id, campaign, click, price in snapshot.recent
    ]
    return CounterPlan(
        keys=tuple(keys),
        args=(
            ready_value,
            dedupe_s,
            *bases,
            _expires_at(snapshot.day, keep_days),
            snapshot.lost_at,
            "".join(fields),
        ),
        records=len(snapshot.recent),
    )


def _expires_at(day: date, keep_days: int) -> int:
    """Midnight UTC `keep_days` after the start of `day`."""
    end = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(days=keep_days)
    return int(end.timestamp())


class LiveCounters:
    """The Redis step of the pipeline (thread-safe; share one per process)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        keep_days: int = DEFAULT_KEEP_DAYS,
        dedupe_s: int = DEFAULT_DEDUPE_S,
    ) -> None:
        if keep_days < 1:
            raise ValueError("keep_days must be at least 1")
        if dedupe_s < 1:
            raise ValueError("dedupe_s must be at least 1")
        self.keep_days = keep_days
        self.dedupe_s = dedupe_s
        self._redis = client
        self._script = client.register_script(COUNT_SCRIPT)
        self._rebuild = client.register_script(REBUILD_SCRIPT)

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
        counted = already = resent = 0
        before = -1
        ready = True
        calls = plan(
            topic,
            partition,
            events,
            last_offset=last_offset,
            keep_days=self.keep_days,
            dedupe_s=self.dedupe_s,
        )
        for step, call in enumerate(calls):
            applied, watermark, is_ready, repeated = self._call(self._script, call)
            counted += int(applied)
            already += call.records - int(applied)
            resent += int(repeated)
            ready = ready and bool(is_ready)
            if step == 0:
                before = int(watermark)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        RESENT.inc(resent)
        return Applied(counted, already, before, ready=ready, resent=resent)

    def ready(self) -> bool:
        """Whether today's counters are whole (False after Redis lost them, until rebuilt)."""
        try:
            return bool(self._redis.exists(READY_KEY))
        except redis_errors.RedisError as exc:
            raise UpstreamUnavailable("redis unavailable for the live counters") from exc

    def lost_at(self) -> str:
        """When the count script first found the counters lost ('' if it has not yet)."""
        try:
            value = self._redis.get(LOST_AT_KEY)
        except redis_errors.RedisError as exc:
            raise UpstreamUnavailable("redis unavailable for the live counters") from exc
        return value.decode() if isinstance(value, bytes) else (value or "")

    def rebuild(self, snapshot: DaySnapshot, *, ready_value: str) -> int | None:
        """Make the snapshot's day whole and set the ready key, atomically.

        Returns how many events were both in the snapshot and counted live meanwhile (taken off
        once), or None when the snapshot is stale (Redis lost its data again: read a new one).
        Counters that are ready already are left alone (0).
        """
        call = rebuild_plan(
            snapshot, ready_value=ready_value, keep_days=self.keep_days, dedupe_s=self.dedupe_s
        )
        outcome = int(self._call(self._rebuild, call))
        if outcome == -2:
            return None
        return max(outcome, 0)

    @staticmethod
    def _call(script_: Any, call: CounterPlan) -> Any:
        try:
            return script_(keys=list(call.keys), args=list(call.args))
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            raise UpstreamUnavailable("redis unavailable for the live counters") from exc
        except redis_errors.RedisError as exc:
            raise UpstreamFailed(f"redis refused the live counters: {exc}") from exc
