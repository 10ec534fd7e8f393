"""The use cases the functions run, each composed from the core and the stores.

`bid_client` (serve's call to bid and the ad response), `campaign_admin` (the admin API's
write-through), `campaign_snapshot` (each bid replica's in-process index), `clicks` (verify,
look up, record), `reports` (a campaign's days for analytics), `budget_recovery` (the ledger
rebuilt from PostgreSQL after Redis lost its data), `live_counters_recovery` (today's live
counters rebuilt likewise), `reconciliation` (a day's numbers compared across every record),
`background` (a rebuild retried on a thread).
"""

__all__ = [
    "background",
    "bid_client",
    "budget_recovery",
    "campaign_admin",
    "campaign_snapshot",
    "clicks",
    "live_counters_recovery",
    "openrtb",
    "reconciliation",
    "reports",
]
