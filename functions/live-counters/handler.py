"""live-counters: today's impressions, clicks and spend per campaign, live in Redis.

Subscribed to `impressions` and `clicks` (connector, batch mode): per partition one Lua script
(one per shard on a Redis Cluster) counts each event once
(shared_layer.pipeline.store.live_counters). A batch finding the counters lost starts their rebuild
from PostgreSQL (live_counters_recovery). Set-aside records count in `live_counters_rejected_total`.
200 with the counts; 503 without Redis.
"""

from __future__ import annotations

from shared_layer.composition.counting import LiveCountersSettings, start_live_counters
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.http import Handler, Request, Router, json_response
from shared_layer.kernel.log import get_logger
from shared_layer.kernel.settings import load_settings
from shared_layer.pipeline.domain.aggregation import by_partition, read_events
from shared_layer.pipeline.service.delivery import delivered_records
from shared_layer.pipeline.service.live_counters_recovery import LiveCountersRecovery
from shared_layer.pipeline.store.live_counters import LiveCounters, record_outcomes

MAX_BATCH_BYTES = 32 * 1024 * 1024  # 2,000 records (the connector's batch size) of 16 KiB each
LOGGED_REJECTIONS = 20  # per call; the metric counts them all
LOGGER = get_logger("live-counters")


def build(settings: LiveCountersSettings | None = None, *, clock: Clock = utc_now) -> Handler:
    """Connect to Redis and PostgreSQL; `clock` says what today is."""
    counters, recovery = start_live_counters(settings or load_settings(LiveCountersSettings))
    return serve_counters(counters, recovery, clock)


def serve_counters(
    counters: LiveCounters, recovery: LiveCountersRecovery, clock: Clock = utc_now
) -> Handler:
    """POST / (a connector's delivery) counted into `counters`, rebuilt by `recovery` if lost."""
    router = Router()

    @router.route("POST", "/")
    def count(request: Request) -> dict:
        records = delivered_records(request)
        intake = read_events(records, counters.window(clock().date()))
        counted = already = 0
        for piece in by_partition(records, intake):
            applied = counters.count(
                piece.topic, piece.partition, piece.events, last_offset=piece.last_offset
            )
            counted += applied.counted
            already += applied.already_counted
            if not applied.ready:  # Redis lost the counters: today's are rebuilt from PostgreSQL
                recovery.ensure()
        already += intake.repeated
        record_outcomes(counted, already, intake.rejected)
        for rejection in intake.rejected[:LOGGED_REJECTIONS]:
            if rejection.reason == "invalid":  # too old for live counters is normal in a replay
                extra = {"requestId": request.request_id, **rejection.to_log()}
                LOGGER.warning("record set aside", extra=extra)
        body = {"received": intake.received, "counted": counted, "alreadyCounted": already}
        return json_response(200, {**body, "rejected": len(intake.rejected)}, request)

    return router.handler(service="live-counters", max_body_bytes=MAX_BATCH_BYTES)
