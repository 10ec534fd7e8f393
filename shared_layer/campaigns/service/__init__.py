"""campaigns: the use cases, composed from the domain and the store."""

__all__ = [
    "admin",
    "floor_routes",
    "snapshot",
]
