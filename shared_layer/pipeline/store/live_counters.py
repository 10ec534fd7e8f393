"""Today's numbers, live: per-campaign, per-day counters in Redis (the specification's ``stats::*``
keys).

Key names (docs/specification.md, "Redis keys"), values are integers (spend in micros)::

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
(pipeline/service/live_counters_recovery.py) has run `rebuild` (`REBUILD_SCRIPT`): today's counters
become PostgreSQL's snapshot plus what was counted live and is not in it, and the snapshot's
recent events are marked seen, atomically, then the ready key is set. Until then analytics reads
today from PostgreSQL (`source: "postgres"`). Counters expire `keep_days` after the start of
their day (default 3: today's are read live, older days come from PostgreSQL).

Other behaviour to know:
- Counters do not know campaigns: an event for a campaign that does not exist is counted
  under its id (analytics answers 404 for such a campaign; daily-metrics sets it aside).
- If the topics are deleted and created again (offsets start at 0), delete the
  ``kafka::offset::*`` keys, or the new records stay below the old watermarks.
- On a Redis Cluster (`CounterKeys.for_url` of a ``redis+cluster://`` URL) a script may touch
  one hash slot only, so every key of a count carries the hash tag of its campaign's shard
  (`kernel.storage.shards`, the ledger's shards): ``stats::spend::{shard3of16}::<id>::<day>``, and
  per shard a watermark per partition, a ready key, a lost-at key and the seen ids. A partition's
  batch is then one script per shard it touches, each atomic and guarded by its own watermark;
  a batch cut short between two of them is delivered again and each shard adds only what it
  had not. After one master lost its data, only its shards are not ready and rebuilt.

Example::

    counters = LiveCounters(redis.Redis.from_url(url), keep_days=3)
    applied = counters.count("impressions", 3, [(1041, event), (1042, other)], last_offset=1042)
    applied.counted, applied.already_counted   # 2, 0; the same call again: 0, 2
    applied.ready                              # False after Redis lost its data: rebuild
    on_cluster = LiveCounters(cluster_client, keys=CounterKeys.for_url(url))
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

import redis

from shared_layer.kernel.errors import UpstreamFailed, UpstreamUnavailable
from shared_layer.kernel.money import Micros
from shared_layer.kernel.storage.lock import Lease
from shared_layer.kernel.storage.lua import script
from shared_layer.kernel.storage.redis_connection import (
    REDIS_ERRORS,
    UNREACHABLE_ERRORS,
    is_cluster,
    key_layout,
    read_many,
)
from shared_layer.kernel.storage.shards import Shards
from shared_layer.pipeline.domain.aggregation import DayWindow, Rejection
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.metrics import (
    LIVE_BATCH_SECONDS,
    LIVE_EVENTS,
    LIVE_REJECTED,
    LIVE_RESENT,
)

__all__ = [
    "COUNT_SCRIPT",
    "DEFAULT_DEDUPE_S",
    "DEFAULT_KEEP_DAYS",
    "LOST_AT_KEY",
    "ONE_SERVER",
    "READY_KEY",
    "REBUILD_LOCK_KEY",
    "REBUILD_SCRIPT",
    "Applied",
    "CounterKeys",
    "CounterPlan",
    "DaySnapshot",
    "LiveCounters",
    "StatKind",
    "offset_key",
    "plan",
    "rebuild_plan",
    "record_outcomes",
    "stats_key",
]

StatKind = Literal["impressions", "clicks", "spend"]
DEFAULT_KEEP_DAYS: Final = 3
DEFAULT_DEDUPE_S: Final = 600
# While the counters are not ready, the ids counted are kept until the rebuild has used them.
_UNTIL_REBUILT_S: Final = 86_400
READY_KEY: Final = "stats::live::ready"
LOST_AT_KEY: Final = "stats::live::lost-at"
SEEN_PREFIX: Final = "live::seen::"
STAT_KINDS: Final[tuple[StatKind, ...]] = ("impressions", "clicks", "spend")
# Lua numbers are doubles: sums stay exact below 2**53, so a plan is cut into chunks whose spend
# stays below it (in practice one chunk: 2**53 micros is nine billion units of currency).
_EXACT_LIMIT: Final = 2**53 - 1

# live_counters_count.lua beside this file: its KEYS and ARGV are described there.
REBUILD_LOCK_KEY: Final = "stats::live::rebuild-lock"
COUNT_SCRIPT: Final = script(__file__, "live_counters_count.lua")
# live_counters_rebuild.lua beside this file: one day's counters made whole from PostgreSQL.
REBUILD_SCRIPT: Final = script(__file__, "live_counters_rebuild.lua")


def record_outcomes(counted: int, already: int, rejected: Sequence[Rejection]) -> None:
    """One request's events in `live_counters_events_total` and `..._rejected_total`."""
    LIVE_EVENTS.labels("counted").inc(counted)
    LIVE_EVENTS.labels("already-counted").inc(already)
    LIVE_EVENTS.labels("rejected").inc(len(rejected))
    for rejection in rejected:
        LIVE_REJECTED.labels(rejection.reason).inc()


def stats_key(kind: StatKind, campaign_id: str, day: date) -> str:
    """The specification's counter key of one campaign and UTC day (analytics reads it too).

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
class CounterKeys:
    """The live counters' key names: the specification's on one server (`shards` None); on a Redis
    Cluster every key of one script in its campaign shard's hash slot (module docstring)."""

    shards: Shards | None = None

    @classmethod
    def for_url(cls, url: str) -> CounterKeys:
        """The names every function of the deployment at `url` (``REDIS_URL``) uses."""
        return cls(key_layout(url)) if is_cluster(url) else cls()

    def all(self) -> range:
        """Every shard: one on one server."""
        return self.shards.all() if self.shards else range(1)

    def shard_of(self, campaign_id: str) -> int:
        return self.shards.of(campaign_id) if self.shards else 0

    def stats(self, kind: StatKind, campaign_id: str, day: date) -> str:
        """A campaign's counter of one UTC day (the specification's name on one server)."""
        if self.shards is None:
            return stats_key(kind, campaign_id, day)
        return f"stats::{kind}::{self.shards.campaign(campaign_id)}::{day.isoformat()}"

    def offset(self, topic: str, partition: int, shard: int = 0) -> str:
        """The watermark of a partition (of one shard's events on a cluster)."""
        if self.shards is None:
            return offset_key(topic, partition)
        return f"kafka::offset::{self.shards.tag(shard)}::{topic}::{partition}"

    def ready(self, shard: int = 0) -> str:
        return self._of_shard(READY_KEY, shard)

    def lost_at(self, shard: int = 0) -> str:
        return self._of_shard(LOST_AT_KEY, shard)

    def seen_prefix(self, shard: int = 0) -> str:
        """What the scripts put before an event id to name its seen key."""
        return SEEN_PREFIX if self.shards is None else f"{SEEN_PREFIX}{self.shards.tag(shard)}::"

    def _of_shard(self, key: str, shard: int) -> str:
        return key if self.shards is None else f"{key}::{self.shards.tag(shard)}"


ONE_SERVER: Final = CounterKeys()


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
    keys: CounterKeys = ONE_SERVER,
) -> list[CounterPlan]:
    """The script calls that count `events` ((offset, event), offset order) of one partition.

    On one server the last call moves the watermark to `last_offset` (the batch's last record,
    counted or not); usually there is one call, more only when a call's spend would leave
    Lua's exact integers. On a cluster the same holds per shard the events belong to.
    """
    if keys.shards is None:
        groups: dict[int, list[tuple[int, AdEvent]]] = {0: list(events)}
    else:
        groups = {}
        for offset, event in events:
            groups.setdefault(keys.shard_of(event.campaign_id), []).append((offset, event))
    plans = []
    for shard, group in groups.items():
        chunks: list[list[tuple[int, AdEvent]]] = [[]]
        spend = 0
        for offset, event in group:
            if chunks[-1] and spend + event.price_micros > _EXACT_LIMIT:
                chunks.append([])
                spend = 0
            chunks[-1].append((offset, event))
            spend += event.price_micros
        for index, chunk in enumerate(chunks):
            final = index == len(chunks) - 1
            moves_to = last_offset if final else chunk[-1][0]
            where = _Where(keys, shard, topic, partition)
            plans.append(_plan_chunk(where, chunk, moves_to, keep_days, dedupe_s))
    return plans


@dataclass(frozen=True, slots=True)
class _Where:
    keys: CounterKeys
    shard: int
    topic: str
    partition: int


def _plan_chunk(
    where: _Where,
    events: Sequence[tuple[int, AdEvent]],
    moves_to: int,
    keep_days: int,
    dedupe_s: int,
) -> CounterPlan:
    names, shard = where.keys, where.shard
    keys: list[str] = [
        names.offset(where.topic, where.partition, shard),
        names.ready(shard),
        names.lost_at(shard),
    ]
    expiries: list[int] = []
    index: dict[str, int] = {}

    def key_index(kind: StatKind, event: AdEvent) -> int:
        key = names.stats(kind, event.campaign_id, event.day)
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
        args=(
            moves_to,
            dedupe_s,
            max(dedupe_s, _UNTIL_REBUILT_S),
            *expiries,
            names.seen_prefix(shard),
            "".join(fields),
        ),
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
    snapshot: DaySnapshot,
    *,
    ready_value: str,
    keep_days: int,
    dedupe_s: int,
    keys: CounterKeys = ONE_SERVER,
    shard: int = 0,
) -> CounterPlan:
    """The rebuild script's KEYS and ARGV for `snapshot`'s campaigns of shard `shard` (pure;
    live_counters_rebuild.lua)."""
    names = keys
    keys_: list[str] = [names.ready(shard), names.lost_at(shard)]
    bases: list[int] = []
    index: dict[tuple[str, StatKind], int] = {}
    recent = [r for r in snapshot.recent if names.shard_of(r[1]) == shard]
    campaigns = {c for c in snapshot.totals if names.shard_of(c) == shard}
    campaigns |= {campaign for _, campaign, _, _ in recent}
    for campaign in sorted(campaigns):
        values = snapshot.totals.get(campaign, (0, 0, 0))
        for kind, value in zip(STAT_KINDS, values, strict=True):
            keys_.append(names.stats(kind, campaign, snapshot.day))
            bases.append(value)
            index[(campaign, kind)] = len(keys_)  # Lua's KEYS are 1-based
    fields = [
        f"{event_id},{index[(campaign, 'clicks' if click else 'impressions')]},"
        f"{index[(campaign, 'spend')] if price > 0 else 0},{price};"
        for event_id, campaign, click, price in recent
    ]
    return CounterPlan(
        keys=tuple(keys_),
        args=(
            ready_value,
            dedupe_s,
            *bases,
            _expires_at(snapshot.day, keep_days),
            snapshot.lost_at,
            names.seen_prefix(shard),
            "".join(fields),
        ),
        records=len(recent),
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
        keys: CounterKeys = ONE_SERVER,
    ) -> None:
        if keep_days < 1:
            raise ValueError("keep_days must be at least 1")
        if dedupe_s < 1:
            raise ValueError("dedupe_s must be at least 1")
        self.keep_days = keep_days
        self.dedupe_s = dedupe_s
        self.keys = keys
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
            keys=self.keys,
        )
        for step, call in enumerate(calls):
            applied, watermark, is_ready, repeated = self._call(self._script, call)
            counted += int(applied)
            already += call.records - int(applied)
            resent += int(repeated)
            ready = ready and bool(is_ready)
            if step == 0:
                before = int(watermark)
        LIVE_BATCH_SECONDS.observe(time.perf_counter() - started)
        LIVE_RESENT.inc(resent)
        return Applied(counted, already, before, ready=ready, resent=resent)

    def ready(self) -> bool:
        """Whether today's counters are whole (False after Redis lost them, until rebuilt)."""
        return not self.lost_shards()

    def lost_shards(self) -> list[int]:
        """The shards whose counters are not whole (one server: [0] or [])."""
        shards = list(self.keys.all())
        try:
            values = read_many(self._redis, [self.keys.ready(k) for k in shards])
        except REDIS_ERRORS as exc:
            raise UpstreamUnavailable("redis unavailable for the live counters") from exc
        return [k for k, value in zip(shards, values, strict=True) if value is None]

    def lost_at(self, shard: int = 0) -> str:
        """When the count script first found the shard's counters lost ('' if it has not)."""
        try:
            value = self._redis.get(self.keys.lost_at(shard))
        except REDIS_ERRORS as exc:
            raise UpstreamUnavailable("redis unavailable for the live counters") from exc
        return value.decode() if isinstance(value, bytes) else (value or "")

    def lease(self, ttl_s: int) -> Lease:
        """The rebuild lock (``stats::live::rebuild-lock``): one replica rebuilds at a time."""
        return Lease(self._redis, REBUILD_LOCK_KEY, ttl_s=ttl_s)

    def seconds_since(self, lost_at: str) -> int:
        """Seconds from `lost_at` (unix seconds, Redis's own clock) to Redis's time now."""
        return max(int(self._redis.time()[0]) - int(lost_at), 0)

    def rebuild(self, snapshot: DaySnapshot, *, ready_value: str, shard: int = 0) -> int | None:
        """Make the snapshot's day whole for the campaigns of `shard` and set its ready key,
        atomically.

        Returns how many events were both in the snapshot and counted live meanwhile (taken off
        once), or None when the snapshot is stale (Redis lost its data again: read a new one).
        Counters that are ready already are left alone (0).
        """
        call = rebuild_plan(
            snapshot,
            ready_value=ready_value,
            keep_days=self.keep_days,
            dedupe_s=self.dedupe_s,
            keys=self.keys,
            shard=shard,
        )
        outcome = int(self._call(self._rebuild, call))
        if outcome == -2:
            return None
        return max(outcome, 0)

    @staticmethod
    def _call(script_: Any, call: CounterPlan) -> Any:
        try:
            return script_(keys=list(call.keys), args=list(call.args))
        except UNREACHABLE_ERRORS as exc:
            raise UpstreamUnavailable("redis unavailable for the live counters") from exc
        except REDIS_ERRORS as exc:
            raise UpstreamFailed(f"redis refused the live counters: {exc}") from exc
