"""The log export's metrics (function export): lag, hours and records per event type, last run.

Declared once here through `kernel.metrics`; names and labels are what dashboards and alerts read.
"""

from __future__ import annotations

from itertools import product

from shared_layer.export.domain.log_export import EVENT_TYPES
from shared_layer.kernel.metrics import counter, gauge

__all__ = ["HOURS", "LAG_HOURS", "LAST_RUN", "RECORDS"]

LAG_HOURS = gauge(
    "log_export_lag_hours",
    "Hours since the oldest closed hour not yet exported ended (beyond the grace), per type",
    ["type"],
    every=EVENT_TYPES,
)
HOURS = counter(
    "log_export_hours_total",
    "Hours the export wrote or failed, per type",
    ["type", "outcome"],
    every=product(EVENT_TYPES, ("exported", "failed")),
)
RECORDS = counter(
    "log_export_records_total",
    "Records written to the bucket, per type",
    ["type"],
    every=EVENT_TYPES,
)
LAST_RUN = gauge(
    "log_export_last_run_timestamp_seconds", "When an export run last finished (Unix time)"
)
