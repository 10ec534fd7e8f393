"""A lease in Redis: at most one replica does a rebuild at a time.

Why: the budget ledger and the live counters are rebuilt from PostgreSQL after Redis lost its
data, and two replicas rebuilding at once would write the same keys twice. The lease is one key
set with NX and a TTL: a replica that dies lets it expire and another takes over; the holder
refreshes it while it works and deletes it only if it is still its own.

Example::

    lease = Lease(client, "budget::ledger::rebuild-lock", ttl_s=30)
    if lease.take():
        try:
            ...  # the rebuild, calling lease.refresh() now and then
        finally:
            lease.release()
"""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["Lease"]


class Lease:
    """One key, one holder; see the module docstring."""

    def __init__(self, client: Any, key: str, *, ttl_s: int) -> None:
        self._redis = client
        self._key = key
        self._ttl_s = ttl_s
        self._token = ""

    def take(self) -> bool:
        """True if this process now holds the lease; False if another does."""
        token = uuid.uuid4().hex
        if not self._redis.set(self._key, token, nx=True, ex=self._ttl_s):
            return False
        self._token = token
        return True

    def refresh(self) -> None:
        """Extend the TTL while the work goes on (only if the lease is still ours)."""
        self._redis.set(self._key, self._token, xx=True, ex=self._ttl_s)

    def release(self) -> None:
        """Delete the key if it is still ours (it may have expired and been taken meanwhile)."""
        if self._redis.get(self._key) == self._token.encode():
            self._redis.delete(self._key)
