"""The kernel every feature stands on: money in micros, our errors, the shared models, the clock,
request correlation, signed tokens (pure), and the edge of a function: HTTP (`http`), settings
(`settings`), logging (`log`), metrics (`metrics`) and background loops (`background`).
`storage` holds the plumbing of the stores: the PostgreSQL pool, the Redis connection, shards,
Lua, the outbox stream and store health. The kernel imports no feature.
"""

__all__ = [
    "background",
    "clock",
    "correlation",
    "errors",
    "http",
    "log",
    "metrics",
    "models",
    "money",
    "settings",
    "signed_token",
    "storage",
]
