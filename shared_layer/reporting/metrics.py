"""Reporting's metrics (function analytics): the analytics cache and reads while a store is away.

Declared once here through `kernel.metrics`; names and labels are what dashboards and alerts read.
"""

from __future__ import annotations

from shared_layer.kernel.metrics import counter

__all__ = ["CACHE_LOOKUPS", "DEGRADED_READS"]

CACHE_LOOKUPS = counter(
    "analytics_cache_lookups_total",
    "Closed days looked up in the analytics cache",
    ["result"],
    every=("hit", "miss"),
)
DEGRADED_READS = counter(
    "analytics_degraded_reads_total",
    "Reports read while a store was unavailable, by store",
    ["store"],
    every=("redis", "postgres", "live-counters"),
)
