"""What a campaign's numbers say.

`domain`: the analytics arithmetic and the reconciliation's comparison (pure). `store`: what a
report and a reconciliation read. `service`: a campaign's report and a day's reconciliation
across every record.
"""

__all__ = [
    "domain",
    "service",
    "store",
]
