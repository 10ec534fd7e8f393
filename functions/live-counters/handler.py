"""live-counters: today's impressions, clicks and spend per campaign, live in Redis.

Subscribed to `impressions` and `clicks` through the connector (stack.yml `topic` annotation, batch
mode). Each partition's events are added to the seed's `stats::*::{campaignId}::{date}` counters by
one Lua script that also moves the partition's offset watermark
(`kafka::offset::{topic}::{partition}`), so records delivered again are not counted again
(shared_layer.stores.live_counters). Invalid records and days outside the live window are skipped
and counted in `live_counters_rejected_total`. 200 with the counts; 503 when Redis is unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from shared_layer.core.aggregation import (
    by_partition,
    correlation_ids,
    read_events,
    records_from_request,
)
from shared_layer.edge.http import Request, Router, json_response
from shared_layer.edge.settings import env, load_settings, positive, settings_class
from shared_layer.stores.live_counters import DEFAULT_KEEP_DAYS, EVENTS, REJECTED, LiveCounters
from shared_layer.stores.redis_connection import connect

MAX_BATCH_BYTES = 16 * 1024 * 1024  # 1,000 records of up to 16 KiB each
LOGGED_REJECTIONS = 20  # per call; the metric counts them all


@settings_class
class LiveCountersSettings:
    redis_url: str = env("REDIS_URL")
    keep_days: int = env("LIVE_COUNTERS_KEEP_DAYS", default=DEFAULT_KEEP_DAYS, check=positive)
    redis_timeout_s: float = env("LIVE_COUNTERS_REDIS_TIMEOUT_S", default=5.0, check=positive)


SETTINGS = load_settings(LiveCountersSettings)
CLOCK: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731 (tests replace it)
LOGGER = Logger(service="live-counters")
# Retrying a script whose answer was lost is harmless: the watermark makes it count once.
COUNTERS = LiveCounters(
    connect(
        SETTINGS.redis_url,
        timeout_s=SETTINGS.redis_timeout_s,
        connect_timeout_s=2,
        retries=3,  # the watermark makes a repeated script harmless
        backoff=True,
        name="live-counters",
    ),
    keep_days=SETTINGS.keep_days,
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
    already += intake.repeated
    EVENTS.labels("counted").inc(counted)
    EVENTS.labels("already-counted").inc(already)
    EVENTS.labels("rejected").inc(len(intake.rejected))
    for rejection in intake.rejected:
        REJECTED.labels(rejection.reason).inc()
    for rejection in intake.rejected[:LOGGED_REJECTIONS]:
        if rejection.reason == "invalid":  # too old for live counters is normal in a replay
            LOGGER.warning(
                "record set aside", extra={"requestId": request.request_id, **rejection.to_log()}
            )
    body = {
        "received": intake.received,
        "counted": counted,
        "alreadyCounted": already,
        "rejected": len(intake.rejected),
    }
    return json_response(200, body, request)


handle = router.handler(service="live-counters", max_body_bytes=MAX_BATCH_BYTES)
