"""Campaigns, their ads and placement floors.

`domain`: the admin API's requests, parsed and validated (pure). `store`: the campaign tables in
PostgreSQL, the campaign cache in Redis (with its Lua), the placement floors. `service`: the admin
write-through, each bid replica's in-process snapshot, the floor routes.
"""

__all__ = [
    "domain",
    "service",
    "store",
]
