"""accounts: the use cases, composed from the domain and the store."""

__all__ = [
    "account_routes",
    "authenticator",
]
