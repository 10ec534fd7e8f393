"""daily-metrics: impressions and clicks from Kafka, counted exactly into PostgreSQL.

Subscribed to `impressions` and `clicks` through the connector (stack.yml `topic` annotation,
batch mode). Each call's events are counted in ONE transaction (pipeline.store.daily_metrics):
events_log accepts each event id once, daily_metrics and the campaigns' spend grow by what it
accepted, so a redelivered batch changes nothing. Records that are not valid events, are outside
the retention window, or name an unknown campaign or ad are set aside (logged with
topic/partition/offset, counted in `daily_metrics_rejected_total`), never block the partition. 200
with the counts; 503 when PostgreSQL is unavailable, so that the connector tries again.
"""

from __future__ import annotations

from shared_layer.composition.counting import DailyMetricsSettings, start_daily_metrics
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.http import Handler, Request, Router, json_response
from shared_layer.kernel.log import get_logger
from shared_layer.kernel.settings import load_settings
from shared_layer.pipeline.domain.aggregation import Rejection, read_events
from shared_layer.pipeline.metrics import DAILY_EVENTS, DAILY_REJECTED
from shared_layer.pipeline.service.delivery import delivered_records
from shared_layer.pipeline.store.daily_metrics import DailyMetrics

MAX_BATCH_BYTES = 32 * 1024 * 1024  # 2,000 records (the connector's batch size) of 16 KiB each
LOGGED_REJECTIONS = 20  # per call; the metric counts them all
LOGGER = get_logger("daily-metrics")


def build(settings: DailyMetricsSettings | None = None, *, clock: Clock = utc_now) -> Handler:
    """Connect, start the events_log maintenance (`clock`: what today is)."""
    settings = settings or load_settings(DailyMetricsSettings)
    store = start_daily_metrics(settings, clock=clock, logger=LOGGER)
    return serve_counts(store, clock)


def serve_counts(store: DailyMetrics, clock: Clock = utc_now) -> Handler:
    """POST / (a connector's delivery) counted into `store`."""
    router = Router()

    @router.route("POST", "/")
    def count(request: Request) -> dict:
        records = delivered_records(request)
        today = clock().date()
        intake = read_events(records, store.window(today))
        outcome = store.count([event for _, event in intake.events], today=today)
        intake.set_aside(outcome.unknown, "unknown-campaign")
        duplicates = outcome.duplicates + intake.repeated
        DAILY_EVENTS.labels("counted").inc(outcome.counted)
        DAILY_EVENTS.labels("duplicate").inc(duplicates)
        DAILY_EVENTS.labels("rejected").inc(len(intake.rejected))
        _report(intake.rejected, request)
        body = {
            "received": intake.received,
            "counted": outcome.counted,
            "duplicates": duplicates,
            "rejected": len(intake.rejected),
        }
        return json_response(200, body, request)

    return router.handler(service="daily-metrics", max_body_bytes=MAX_BATCH_BYTES)


def _report(rejected: list[Rejection], request: Request) -> None:
    for rejection in rejected:
        DAILY_REJECTED.labels(rejection.reason).inc()
    for rejection in rejected[:LOGGED_REJECTIONS]:
        LOGGER.warning(
            "record set aside",
            extra={"requestId": request.request_id, **rejection.to_log()},
        )
    if len(rejected) > LOGGED_REJECTIONS:
        LOGGER.warning(
            "more records set aside",
            extra={
                "requestId": request.request_id,
                "notLogged": len(rejected) - LOGGED_REJECTIONS,
            },
        )
