"""accounts: pure: no driver, no network, no metrics, no web framework."""

__all__ = [
    "keys",
    "requests",
]
