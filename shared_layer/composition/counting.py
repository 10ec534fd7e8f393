"""What the two counting functions start with: `daily-metrics` (PostgreSQL, and the events_log
maintenance thread) and `live-counters` (the Redis counters and their rebuild from PostgreSQL).

Example::

    store = start_daily_metrics(load_settings(DailyMetricsSettings), clock=utc_now)
    counters, recovery = start_live_counters(load_settings(LiveCountersSettings))
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from shared_layer.kernel.clock import Clock
from shared_layer.kernel.settings import env, positive, settings_class
from shared_layer.kernel.storage.redis_connection import connect
from shared_layer.kernel.storage.settings import PostgresSettings, RedisSettings
from shared_layer.pipeline.service.live_counters_recovery import LiveCountersRecovery
from shared_layer.pipeline.store.daily_metrics import DailyMetrics, start_maintenance
from shared_layer.pipeline.store.live_counters import (
    DEFAULT_DEDUPE_S,
    DEFAULT_KEEP_DAYS,
    CounterKeys,
    LiveCounters,
)

__all__ = [
    "DailyMetricsSettings",
    "LiveCountersSettings",
    "start_daily_metrics",
    "start_live_counters",
]


def retention_check(days: int) -> str | None:
    return None if 7 <= days <= 30 else "must be between 7 and 30 days (the specification's range)"


@settings_class
class DailyMetricsSettings(PostgresSettings):
    retention_days: int = env("EVENTS_RETENTION_DAYS", default=30, check=retention_check)
    maintenance_interval_s: float = env(
        "EVENTS_LOG_MAINTENANCE_INTERVAL_S", default=300.0, check=positive
    )


@settings_class
class LiveCountersSettings(PostgresSettings, RedisSettings):
    keep_days: int = env("LIVE_COUNTERS_KEEP_DAYS", default=DEFAULT_KEEP_DAYS, check=positive)
    redis_timeout_s: float = env("LIVE_COUNTERS_REDIS_TIMEOUT_S", default=5.0, check=positive)
    dedupe_s: int = env("LIVE_COUNTERS_DEDUPE_S", default=DEFAULT_DEDUPE_S, check=positive)


def start_daily_metrics(
    settings: DailyMetricsSettings, *, clock: Clock, logger: Logger
) -> DailyMetrics:
    """Connect to PostgreSQL and start the events_log maintenance (`clock`: what today is)."""
    store = DailyMetrics(
        settings.database(),
        retention_days=settings.retention_days,
    )
    start_maintenance(store, clock, interval_s=settings.maintenance_interval_s, logger=logger)
    return store


def start_live_counters(
    settings: LiveCountersSettings,
) -> tuple[LiveCounters, LiveCountersRecovery]:
    """Connect to Redis (the counters) and PostgreSQL (their rebuild when Redis lost them)."""
    redis_client = connect(
        settings.redis_url,
        timeout_s=settings.redis_timeout_s,
        connect_timeout_s=2,
        retries=3,  # the watermark and the seen ids make a repeated script harmless
        backoff=True,
        name="live-counters",
    )
    counters = LiveCounters(
        redis_client,
        keep_days=settings.keep_days,
        dedupe_s=settings.dedupe_s,
        keys=CounterKeys.for_url(settings.redis_url),  # the specification's names, or by shard
    )
    database = settings.database(size=2)
    return counters, LiveCountersRecovery(database, counters)
