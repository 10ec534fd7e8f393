"""Campaigns' metrics: the admin API's cache writes (function campaigns) and the bid replicas'
campaign snapshot (function bid).

Declared once here through `kernel.metrics`; names and labels are what dashboards and alerts read.
"""

from __future__ import annotations

from shared_layer.kernel.metrics import counter, gauge, histogram

__all__ = [
    "CACHE_WRITE_FAILURES",
    "SNAPSHOT_CAMPAIGNS",
    "SNAPSHOT_REFRESH_FAILURES",
    "SNAPSHOT_RELOADS",
    "SNAPSHOT_RELOAD_SECONDS",
    "SNAPSHOT_VERSION",
]

CACHE_WRITE_FAILURES = counter(
    "campaign_cache_write_failures_total",
    "Campaign writes committed to PostgreSQL whose Redis step failed (healed by the TTL reload)",
)

SNAPSHOT_CAMPAIGNS = gauge("campaign_snapshot_campaigns", "Active campaigns in the auction index")
SNAPSHOT_VERSION = gauge("campaign_snapshot_version", "campaigns::version of the loaded snapshot")
SNAPSHOT_RELOADS = counter("campaign_snapshot_reloads_total", "Snapshot reloads", ["reason"])
SNAPSHOT_REFRESH_FAILURES = counter(
    "campaign_snapshot_refresh_failures_total", "Failed refresh attempts"
)
SNAPSHOT_RELOAD_SECONDS = histogram(
    "campaign_snapshot_reload_seconds",
    "Time to reload the snapshot and rebuild the index",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
