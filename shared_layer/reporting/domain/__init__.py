"""reporting: pure: no driver, no network, no metrics, no web framework."""

__all__ = [
    "analytics",
    "hourly_report",
    "reconciliation",
]
