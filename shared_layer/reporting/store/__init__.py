"""reporting: every SQL statement and Redis command of this feature, and nowhere else."""

__all__ = [
    "hourly_report",
    "reconciliation",
    "reports",
]
