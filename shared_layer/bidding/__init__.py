"""Where an ad is decided and where money moves.

`domain`: targeting, the auction and its pricing, pacing, the budget rule (pure). `store`: the
budget ledger and budget_charge.lua, the ONLY place money moves. `service`: the bidder (an auction
over a replica's snapshot), the ledger's recovery from PostgreSQL, and serve's client of bid.
"""

__all__ = [
    "domain",
    "service",
    "store",
]
