"""bidding: the use cases, composed from the domain and the store."""

__all__ = [
    "bid_client",
    "bidder",
    "budget_recovery",
]
