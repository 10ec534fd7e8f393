"""Prometheus metrics of the connector, served on the health port at /metrics.

Labels stay bounded: function names come from the gateway, topics and partitions from the
connector's own subscription, status classes are `2xx`..`5xx`, `timeout` or `error`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("connector_records_consumed_total", "Records read from Kafka", ["topic"])
INVOKED = Counter(
    "connector_invocations_total",
    "Function invocations through the gateway, by outcome",
    ["function", "status_class"],
)
FAILURES = Counter(
    "connector_invocation_failures_total",
    "Invocations that did not answer 2xx (each attempt counts)",
    ["function", "reason"],
)
RETRIES = Counter("connector_retries_total", "Invocations repeated after a failure", ["function"])
DEAD_LETTERED = Counter(
    "connector_dead_lettered_total",
    "Records written to the dead-letter topic after the last retry failed",
    ["function", "topic"],
)
HELD = Counter(
    "connector_held_records_total",
    "Records kept for the next cycle, not dead-lettered, because the function was unavailable "
    "(a timeout, no connection, or a status of CONNECTOR_HOLD_STATUSES) after the last retry",
    ["function", "topic"],
)
DELIVERED = Counter(
    "connector_records_delivered_total",
    "Records a function acknowledged with 2xx",
    ["function", "topic"],
)
LATENCY = Histogram(
    "connector_invocation_duration_seconds",
    "Time of one invocation through the gateway (one attempt)",
    ["function"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_RECORDS = Histogram(
    "connector_invocation_records",
    "Records per invocation",
    ["function"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
COMMITS = Counter("connector_commits_total", "Synchronous offset commits", ["outcome"])
LAG = Gauge(
    "connector_consumer_lag",
    "High watermark minus the group's committed offset, per assigned partition",
    ["topic", "partition"],
)
PAUSED = Gauge(
    "connector_paused_partitions", "Assigned partitions paused for want of a subscriber", ["topic"]
)
ASSIGNED = Gauge("connector_assigned_partitions", "Partitions assigned to this connector")
SUBSCRIBERS = Gauge("connector_subscribed_functions", "Functions subscribed per topic", ["topic"])
DISCOVERY_FAILURES = Counter(
    "connector_discovery_failures_total", "Failed attempts to list functions at the gateway"
)
RESTARTS = Gauge(
    "connector_supervisor_restarts",
    "How many times the supervisor restarted the connector process before this one",
)
WINDOW = Gauge(
    "connector_batch_window_seconds",
    "How long the next poll waits for records: grows with the load (window.py)",
)
LAST_POLL = Gauge("connector_last_poll_timestamp_seconds", "Unix time of the last Kafka poll")
