"""pipeline: the use cases, composed from the domain and the store."""

__all__ = [
    "live_counters_recovery",
]
