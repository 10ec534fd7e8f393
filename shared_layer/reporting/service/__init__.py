"""reporting: the use cases, composed from the domain and the store."""

__all__ = [
    "reconciliation",
    "report_routes",
    "reports",
]
