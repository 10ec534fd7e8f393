"""The pure core: what the ad server decides, with no network, no driver and no clock of its own.

Money in integer micros, our errors, the domain models, targeting, the auction and its pricing
step, the budget rule and the ledger seam, clicks and click tokens, the event shapes, the
aggregation and report arithmetic. Nothing here imports redis, pg8000, confluent_kafka, flask,
urllib3 or prometheus_client (enforced by the import-linter contracts in pyproject.toml), so all
of it is unit-tested without a service.
"""

__all__ = [
    "aggregation",
    "analytics",
    "auction",
    "budget",
    "campaign_requests",
    "clicks",
    "clicktoken",
    "clock",
    "correlation",
    "errors",
    "events",
    "models",
    "money",
    "notice_token",
    "openrtb",
    "reconciliation",
    "targeting",
]
