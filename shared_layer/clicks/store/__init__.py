"""clicks: every SQL statement, Redis command and Lua script of this feature, and nowhere else."""

__all__ = [
    "click_ledger",
]
