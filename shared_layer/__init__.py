"""shared_layer: the one library every function of the ad server uses, in five layers.

Each folder is a layer; a layer imports only the layers below it (the import-linter contracts in
the repository's pyproject.toml enforce this in `make test`, and they are the architecture's
reference):

    edge       the HTTP edge of a handler: request ids and trace context, routing, JSON and
               error bodies (http), settings from environment and secret files (settings),
               the decisioning metrics (metrics)
    services   the use cases: serve's call to bid and the ad response (bid_client), the admin
               write-through (campaign_admin), each bid replica's index (campaign_snapshot),
               clicks, analytics reports, the budget ledger's rebuild (budget_recovery)
    events     Kafka: the outbox relay (Redis stream -> Kafka) and the pipeline's progress
    stores     Redis and PostgreSQL adapters with their Lua beside them: the budget ledger
               (where money moves), the campaign store and cache, the click ledger, the
               outbox stream, daily_metrics (exact, PostgreSQL), live_counters (Redis)
    core       pure: money in micros, errors, models, targeting, the auction and its pricing,
               the budget rule and ledger seam, clicks, click tokens, event shapes,
               aggregation and report arithmetic; no driver, no network

Where a request enters: functions/<name>/handler.py (through edge.http.Router). Where the
auction happens: core/auction.py. Where money is charged: stores/budget_charge.lua, run by
stores/budget_ledger.py. Where an event becomes a number in a table: stores/daily_metrics.py.

Import the modules themselves (``from shared_layer.core import auction``); no package file
imports anything, so a function pays only for what it uses.
"""

__all__ = ["core", "edge", "events", "services", "stores"]

__version__ = "0.1.0"
