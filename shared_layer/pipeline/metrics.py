"""The pipeline's metrics: the outbox relay (Redis to Kafka), live-counters, daily-metrics and the
events_log retention job.

Declared once here through `kernel.metrics`; names and labels are what dashboards and alerts
read, so they do not change.
"""

from __future__ import annotations

from shared_layer.kernel.metrics import counter, gauge, histogram
from shared_layer.pipeline.domain.aggregation import REJECTION_REASONS

__all__ = [
    "DAILY_BATCH_SECONDS",
    "DAILY_EVENTS",
    "DAILY_REJECTED",
    "LIVE_BATCH_SECONDS",
    "LIVE_EVENTS",
    "LIVE_REJECTED",
    "LIVE_RESENT",
    "MAINTENANCE",
    "MAINTENANCE_LAST_SUCCESS",
    "OUTBOX_BACKLOG",
    "OUTBOX_CLAIMED",
    "OUTBOX_DELIVERY_FAILURES",
    "OUTBOX_PRODUCER_RESTARTS",
    "OUTBOX_RELAYED",
    "PARTITIONS_CHANGED",
]

# --- the outbox relay (pipeline.store.relay) ---
OUTBOX_RELAYED = counter("outbox_relayed_total", "Outbox events confirmed by Kafka", ["topic"])
OUTBOX_DELIVERY_FAILURES = counter(
    "outbox_delivery_failures_total", "Outbox events Kafka did not confirm (produced again later)"
)
OUTBOX_CLAIMED = counter(
    "outbox_claimed_total", "Outbox events taken over from a relay that stopped answering"
)
OUTBOX_PRODUCER_RESTARTS = counter(
    "outbox_producer_restarts_total", "Kafka producers replaced after a fatal producer error"
)
OUTBOX_BACKLOG = gauge(
    "outbox_backlog", "Entries in a shard's outbox stream not yet confirmed by Kafka", ["stream"]
)

# --- live-counters (pipeline.store.live_counters) ---
LIVE_EVENTS = counter(
    "live_counters_events_total",
    "Events received by live-counters, by outcome",
    ["outcome"],
    every=("counted", "already-counted", "rejected"),
)
LIVE_REJECTED = counter(
    "live_counters_rejected_total",
    "Records live-counters did not count, by reason",
    ["reason"],
    every=REJECTION_REASONS[:3],  # live counters know no campaigns
)
LIVE_RESENT = counter(
    "live_counters_resent_total",
    "Events above their partition's watermark whose id was counted already (produced again)",
)
LIVE_BATCH_SECONDS = histogram(
    "live_counters_batch_seconds",
    "Time to apply one batch to Redis (one script per partition)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)

# --- daily-metrics and events_log retention (pipeline.store.daily_metrics) ---
DAILY_EVENTS = counter(
    "daily_metrics_events_total",
    "Events received by daily-metrics, by outcome",
    ["outcome"],
    every=("counted", "duplicate", "rejected"),
)
DAILY_REJECTED = counter(
    "daily_metrics_rejected_total",
    "Records set aside by daily-metrics (not counted), by reason",
    ["reason"],
    every=REJECTION_REASONS,
)
DAILY_BATCH_SECONDS = histogram(
    "daily_metrics_batch_seconds",
    "Time to count one batch in PostgreSQL (the one transaction)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
MAINTENANCE = counter(
    "events_log_maintenance_total",
    "Runs of the events_log retention job",
    ["outcome"],
    every=("ok", "error"),
)
PARTITIONS_CHANGED = counter(
    "events_log_partitions_total",
    "events_log day partitions created, dropped, or kept past retention (not exported yet)",
    ["action"],
    every=("created", "dropped", "kept"),
)
MAINTENANCE_LAST_SUCCESS = gauge(
    "events_log_maintenance_last_success_timestamp_seconds",
    "When the retention job last succeeded (Unix time)",
)
