"""What wires features together for one kind of function: `bidder` starts what a replica that runs
auctions needs (ledger, snapshot, recovery, relay; bid and openrtb), `campaigns` the admin writer
with the ledger's spend, `counting` the stores of daily-metrics and live-counters, `export`
the log export's bucket, ledger and schedule. No feature imports this.
"""

__all__ = [
    "bidder",
    "campaigns",
    "counting",
    "export",
]
