"""The adapters to Redis and PostgreSQL, each with its Lua script beside it.

Every driver error is wrapped here into one of `core.errors` (whose fault: unavailable or
failed), so the layers above never see a redis or pg8000 exception. Where money moves:
`budget_ledger` (budget_charge.lua). Where an event becomes a number: `daily_metrics`
(PostgreSQL, exact) and `live_counters` (Redis, today).
"""

__all__ = [
    "budget_ledger",
    "campaign_cache",
    "campaign_store",
    "click_ledger",
    "daily_metrics",
    "live_counters",
    "openrtb_notices",
    "outbox",
    "placement_floors",
    "postgres",
    "store_health",
]
