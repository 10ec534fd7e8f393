"""live-counters: today's impressions, clicks and spend per campaign, live in Redis.

Subscribed to `impressions` and `clicks` (connector, batch mode): per partition one Lua script
(one per shard on a Redis Cluster) counts each event once
(shared_layer.pipeline.store.live_counters). A batch finding the counters lost starts their rebuild
from PostgreSQL (live_counters_recovery). Set-aside records count in `live_counters_rejected_total`.
200 with the counts; 503 without Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from shared_layer.kernel.http import Request, Router, json_response
from shared_layer.kernel.settings import env, load_settings, positive, secret, settings_class
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.redis_connection import connect
from shared_layer.pipeline.domain.aggregation import by_partition, correlation_ids, read_events
from shared_layer.pipeline.service.delivery import records_from_request
from shared_layer.pipeline.service.live_counters_recovery import LiveCountersRecovery
from shared_layer.pipeline.store.live_counters import (
    DEFAULT_DEDUPE_S,
    DEFAULT_KEEP_DAYS,
    CounterKeys,
    LiveCounters,
    record_outcomes,
)

MAX_BATCH_BYTES = 32 * 1024 * 1024  # 2,000 records (the connector's batch size) of 16 KiB each
LOGGED_REJECTIONS = 20  # per call; the metric counts them all


@settings_class
class LiveCountersSettings:
    redis_url: str = env("REDIS_URL")
    keep_days: int = env("LIVE_COUNTERS_KEEP_DAYS", default=DEFAULT_KEEP_DAYS, check=positive)
    redis_timeout_s: float = env("LIVE_COUNTERS_REDIS_TIMEOUT_S", default=5.0, check=positive)
    dedupe_s: int = env("LIVE_COUNTERS_DEDUPE_S", default=DEFAULT_DEDUPE_S, check=positive)
    database_url: str = env("DATABASE_URL")
    postgres_password: str | None = secret("postgres-password", default=None)


SETTINGS = load_settings(LiveCountersSettings)
CLOCK: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731 (tests replace it)
LOGGER = Logger(service="live-counters")
REDIS = connect(
    SETTINGS.redis_url,
    timeout_s=SETTINGS.redis_timeout_s,
    connect_timeout_s=2,
    retries=3,  # the watermark and the seen ids make a repeated script harmless
    backoff=True,
    name="live-counters",
)
# the specification's names, or by shard on a cluster
KEYS = CounterKeys.for_url(SETTINGS.redis_url)
COUNTERS = LiveCounters(REDIS, keep_days=SETTINGS.keep_days, dedupe_s=SETTINGS.dedupe_s, keys=KEYS)
RECOVERY = LiveCountersRecovery(
    Database.from_url(SETTINGS.database_url, password=SETTINGS.postgres_password, size=2),
    COUNTERS,
)
router = Router()


@router.route("POST", "/")
def count(request: Request) -> dict:
    records = records_from_request(request.body, request.headers)
    request.annotate(requestIds=correlation_ids(records))  # the ads this batch counts
    intake = read_events(records, COUNTERS.window(CLOCK().date()))
    counted = already = 0
    for piece in by_partition(records, intake):
        applied = COUNTERS.count(
            piece.topic, piece.partition, piece.events, last_offset=piece.last_offset
        )
        counted += applied.counted
        already += applied.already_counted
        if not applied.ready:  # Redis lost the counters: today's are rebuilt from PostgreSQL
            RECOVERY.ensure()
    already += intake.repeated
    record_outcomes(counted, already, intake.rejected)
    for rejection in intake.rejected[:LOGGED_REJECTIONS]:
        if rejection.reason == "invalid":  # too old for live counters is normal in a replay
            LOGGER.warning(
                "record set aside", extra={"requestId": request.request_id, **rejection.to_log()}
            )
    body = {"received": intake.received, "counted": counted, "alreadyCounted": already}
    return json_response(200, {**body, "rejected": len(intake.rejected)}, request)


handle = router.handler(service="live-counters", max_body_bytes=MAX_BATCH_BYTES)
