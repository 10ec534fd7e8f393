"""pipeline: the use cases, composed from the domain and the store."""

__all__ = [
    "delivery",
    "live_counters_recovery",
]
