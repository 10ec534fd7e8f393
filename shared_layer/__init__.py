"""shared_layer: the one library every function of the ad server uses, a small kernel plus one
package per feature.

    kernel       money in micros, errors, shared models, clock, correlation, signed tokens (pure);
                 the HTTP edge (http), settings, metrics and background loops; storage: the
                 PostgreSQL pool, the Redis connection, shards, Lua, the outbox stream, health
    bidding      targeting, the auction, pacing, the budget rule; the budget ledger (where money
                 moves); the bidder, the ledger's recovery, serve's client of bid
    campaigns    the admin API's requests; campaign tables, cache and floors; the admin
                 write-through and each bid replica's snapshot
    clicks       click requests and tokens; the click ledger; verify, look up, record
    pipeline     event models and aggregation; the outbox relay, daily_metrics (where an event
                 becomes a number), the live counters; their recovery
    reporting    analytics and reconciliation arithmetic; reports and a day's reconciliation
    openrtb      OpenRTB decoding and notices over the bidder
    export       the log-level export to the object bucket
    console      the console's static site
    composition  what a bidder replica starts (bid and openrtb)

Inside a feature, `domain` (pure) < `store` (every SQL statement, Redis command and Lua script
of the feature, and nowhere else) < `service` (the use case). No feature reaches into another's
store; drivers appear only in stores. The import-linter contracts in the repository's
pyproject.toml enforce this in `make test`.

Where a request enters: functions/<name>/handler.py (through kernel.http.Router). Where the
auction happens: bidding/domain/auction.py. Where money is charged: bidding/store/budget_charge.lua,
run by bidding/store/budget_ledger.py. Where an event becomes a number in a table:
pipeline/store/daily_metrics.py. Where a click is verified: clicks/service/tracker.py.

Import the modules themselves (``from shared_layer.bidding.domain import auction``); no package
file imports anything, so a function pays only for what it uses.
"""

__all__ = [
    "bidding",
    "campaigns",
    "clicks",
    "composition",
    "console",
    "export",
    "kernel",
    "openrtb",
    "pipeline",
    "reporting",
]

__version__ = "0.1.0"
