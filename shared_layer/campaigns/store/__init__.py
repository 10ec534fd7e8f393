"""campaigns: every SQL statement, Redis command and Lua script of this feature, and nowhere
else."""

__all__ = [
    "ad_urls",
    "cache",
    "campaigns",
    "floors",
]
