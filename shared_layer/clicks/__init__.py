"""Where a click is verified and counted once.

`domain`: click requests and the signed click token (pure). `store`: the click ledger (one Lua
script: dedupe key and outbox entry in one step). `service`: verify, look up, record.
"""

__all__ = [
    "domain",
    "service",
    "store",
]
