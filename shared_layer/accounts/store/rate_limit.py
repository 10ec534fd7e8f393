"""Per-key write rate limit in Redis: a fixed one-minute window per key.

``ratelimit:{<key id>}:<minute>`` is INCRemented by each write and expires after its minute;
above the limit the write is refused with the seconds left in the window (the Retry-After).
When Redis cannot answer, writes are let through (PostgreSQL is the record; the limit is
protection, and the campaigns API already works without Redis).
One key per (API key, minute): on a Redis Cluster it lives on one node.

Example::

    limiter = WriteRateLimit(redis_client, per_minute=600)
    limiter.check("3f2a...")     # TooManyRequests (429, Retry-After) past 600 in this minute
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared_layer.kernel.errors import TooManyRequests
from shared_layer.kernel.storage.redis_connection import REDIS_ERRORS

__all__ = ["WriteRateLimit"]

_WINDOW_S = 60


class WriteRateLimit:
    def __init__(
        self, client: Any, per_minute: int, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._per_minute = per_minute
        self._clock = clock

    def check(self, key_id: str) -> None:
        """Count one write for `key_id`; a 429 once this minute's writes exceed the limit."""
        now = self._clock()
        window = int(now // _WINDOW_S)
        name = f"ratelimit:{{{key_id}}}:{window}"
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.incr(name)
            pipe.expire(name, _WINDOW_S + 5)
            count = int(pipe.execute()[0])
        except REDIS_ERRORS:
            return  # a limit is protection, not the record: writes go on without Redis
        if count > self._per_minute:
            retry_after = int((window + 1) * _WINDOW_S - now) + 1
            raise TooManyRequests(
                f"this key may make {self._per_minute} changes a minute; retry in {retry_after} s",
                retry_after,
            )
