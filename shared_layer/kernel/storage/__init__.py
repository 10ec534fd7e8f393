"""The plumbing every feature's store shares, the only kernel code that talks to a driver: the
PostgreSQL pool (`postgres`), the Redis connection and its errors (`redis_connection`), campaign
shards as Redis Cluster hash tags (`shards`), the Lua reader (`lua`), the event outbox stream a
script appends to in the same atomic step as what it records (`outbox`), and the stores' health
probe (`health`).
"""

__all__ = [
    "health",
    "lock",
    "lua",
    "outbox",
    "postgres",
    "redis_connection",
    "shards",
]
