"""How every function connects to Redis, and the one place that says which calls may be retried.

A budget charge and a click record are not idempotent: a retried EVALSHA whose first reply was
lost would charge or count twice, so those clients get no automatic retry (``retries=0``).
Reads and watermark-guarded counter scripts are harmless to repeat and may retry.

Example::

    ledger_client = connect(url, timeout_s=0.25, retries=0)            # charges: never retried
    counters = connect(url, timeout_s=5, retries=3, backoff=True)       # watermark-guarded
"""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

__all__ = ["connect"]


def connect(
    url: str,
    *,
    timeout_s: float = 5.0,
    connect_timeout_s: float | None = None,
    retries: int | None = None,
    backoff: bool = False,
    name: str | None = None,
) -> redis.Redis:
    """A client for `url`; `retries` None keeps redis-py's default, 0 disables retries."""
    options: dict = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s if connect_timeout_s is None else connect_timeout_s,
    }
    if retries is not None:
        strategy = ExponentialBackoff(cap=0.5, base=0.05) if backoff else NoBackoff()
        options["retry"] = Retry(strategy, retries)
    if name is not None:
        options["client_name"] = name
    return redis.Redis.from_url(url, **options)
