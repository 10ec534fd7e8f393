"""Advertiser accounts: advertisers, their API keys and what each key may do.

`domain`: roles, the key format and the access rules (pure). `store`: the advertisers and
api_keys tables in PostgreSQL (Argon2id hashes, never a key), the per-key write rate limit in
Redis. `service`: who is calling (a request's key, checked), and the admin routes that make,
list and revoke keys.
"""

__all__ = [
    "domain",
    "service",
    "store",
]
