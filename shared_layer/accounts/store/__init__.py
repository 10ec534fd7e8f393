"""accounts: every SQL statement and Redis command of this feature, and nowhere else."""

__all__ = [
    "accounts",
    "rate_limit",
]
