"""shared_layer: the one library every function of the ad server uses.

Modules, named after what they hold:

- `money`       integer micros: parsing API amounts exactly, formatting them back, impression price
- `errors`      our error classes (whose fault: 4xx client, 5xx upstream) and `http_error`, the one
                mapping from any exception to the ``{error, message, requestId}`` body
- `settings`    typed, frozen settings per function, read once from environment and secret files
- `models`      campaigns, ads, targeting rules, the /bid request and response (validated)
- `targeting`   independent pure eligibility checks
- `auction`     the index over a campaign snapshot, ranking, the pricing step, the decision
- `budget`      the budget ledger seam and its Redis implementation (one atomic Lua script)
- `budget_recovery`  rebuilding the ledger from PostgreSQL after Redis lost its data
- `clicktoken`  signed click-tracking tokens
- `http`        the edge of every handler: request ids, trace context, routing table, error bodies
- `db`          a small pool of pg8000 connections (TCP_NODELAY) and transactions
- `campaign_store`     campaigns, ads and rules in PostgreSQL; API parsing and validation
- `campaign_cache`     the Redis side: cache entries, active set, version, change notifications
- `campaign_snapshot`  each bid replica's in-process index, kept fresh within a second
- `bid_client`  serve's pooled, deadline-bound, circuit-broken client for bid
- `events`      impression and click events: one model, their topics and JSON shape
- `outbox`      events recorded in Redis with their charge or click, relayed to Kafka
- `clicks`      the click use case: token, registered URL, one click per impression
- `aggregation` a connector batch into events and per-campaign-day deltas (pure)
- `daily_metrics`  the exactly-once PostgreSQL step: events_log, daily_metrics, spend
- `live_counters`  today's counters in Redis, safe under redelivery (offset watermarks)
- `analytics`   report arithmetic (CTR, CPC, CPM from integers) and date ranges (pure)
- `reports`     a campaign's days: PostgreSQL with the Redis cache, today from live counters
- `metrics`     the functions' Prometheus metrics

The auction, targeting, money and models are pure: no network, no driver imports. Import the
modules themselves (``from shared_layer import auction``); this package file imports nothing, so
a function pays only for what it uses.
"""

__all__ = [
    "aggregation",
    "analytics",
    "auction",
    "bid_client",
    "budget",
    "budget_recovery",
    "campaign_cache",
    "campaign_snapshot",
    "campaign_store",
    "clicks",
    "clicktoken",
    "daily_metrics",
    "db",
    "errors",
    "events",
    "http",
    "live_counters",
    "metrics",
    "models",
    "money",
    "outbox",
    "reports",
    "settings",
    "targeting",
]

__version__ = "0.1.0"
