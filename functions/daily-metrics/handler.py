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

from collections.abc import Callable
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from shared_layer.kernel.http import Request, Router, json_response
from shared_layer.kernel.settings import env, load_settings, positive, secret, settings_class
from shared_layer.kernel.storage.postgres import Database
from shared_layer.pipeline.domain.aggregation import Rejection, correlation_ids, read_events
from shared_layer.pipeline.service.delivery import records_from_request
from shared_layer.pipeline.store.daily_metrics import (
    EVENTS,
    REJECTED,
    DailyMetrics,
    start_maintenance,
)

MAX_BATCH_BYTES = 32 * 1024 * 1024  # 2,000 records (the connector's batch size) of 16 KiB each
LOGGED_REJECTIONS = 20  # per call; the metric counts them all


def retention_check(days: int) -> str | None:
    return None if 7 <= days <= 30 else "must be between 7 and 30 days (the specification's range)"


@settings_class
class DailyMetricsSettings:
    database_url: str = env("DATABASE_URL")
    postgres_password: str | None = secret("postgres-password", default=None)
    retention_days: int = env("EVENTS_RETENTION_DAYS", default=30, check=retention_check)
    maintenance_interval_s: float = env(
        "EVENTS_LOG_MAINTENANCE_INTERVAL_S", default=300.0, check=positive
    )


SETTINGS = load_settings(DailyMetricsSettings)
CLOCK: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731 (tests replace it)
LOGGER = Logger(service="daily-metrics")
STORE = DailyMetrics(
    Database.from_url(SETTINGS.database_url, password=SETTINGS.postgres_password),
    retention_days=SETTINGS.retention_days,
)
start_maintenance(STORE, lambda: CLOCK(), interval_s=SETTINGS.maintenance_interval_s, logger=LOGGER)
router = Router()


@router.route("POST", "/")
def count(request: Request) -> dict:
    records = records_from_request(request.body, request.headers)
    request.annotate(requestIds=correlation_ids(records))  # the ads this batch counts
    today = CLOCK().date()
    intake = read_events(records, STORE.window(today))
    outcome = STORE.count([event for _, event in intake.events], today=today)
    intake.set_aside(outcome.unknown, "unknown-campaign")
    duplicates = outcome.duplicates + intake.repeated
    EVENTS.labels("counted").inc(outcome.counted)
    EVENTS.labels("duplicate").inc(duplicates)
    EVENTS.labels("rejected").inc(len(intake.rejected))
    _report(intake.rejected, request)
    body = {
        "received": intake.received,
        "counted": outcome.counted,
        "duplicates": duplicates,
        "rejected": len(intake.rejected),
    }
    return json_response(200, body, request)


def _report(rejected: list[Rejection], request: Request) -> None:
    for rejection in rejected:
        REJECTED.labels(rejection.reason).inc()
    for rejection in rejected[:LOGGED_REJECTIONS]:
        LOGGER.warning(
            "record set aside", extra={"requestId": request.request_id, **rejection.to_log()}
        )
    if len(rejected) > LOGGED_REJECTIONS:
        LOGGER.warning(
            "more records set aside",
            extra={"requestId": request.request_id, "notLogged": len(rejected) - LOGGED_REJECTIONS},
        )


handle = router.handler(service="daily-metrics", max_body_bytes=MAX_BATCH_BYTES)
