"""The log-level export: each event type's hours written once to the object bucket.

`domain`: the file layout (pure). `store`: the export ledger in PostgreSQL and the object bucket.
`service`: the export loop.
"""

__all__ = [
    "domain",
    "service",
    "store",
]
