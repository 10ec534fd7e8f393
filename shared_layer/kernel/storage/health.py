"""`store_up{store}`: can this replica reach Redis and PostgreSQL right now? Asked at scrape time.

Why a probe and not an error counter: an error counter only moves while requests arrive, so a
store that died at night would raise no alert until traffic came back. Prometheus scrapes every
replica every few seconds anyway; answering with one PING and one ``SELECT 1`` (each bounded by
the client's own short timeout) makes "Redis down" and "PostgreSQL down" visible whether or not
anyone is asking for ads. One function that uses both stores (analytics) registers it, so the
probe costs two round trips per replica per scrape, not per request.

Example::

    from shared_layer.kernel.metrics import scraped
    scraped(StoreProbe(redis_client, database))
    # store_up{store="redis"} 1.0, store_up{store="postgres"} 1.0
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared_layer.kernel.errors import AdServerError
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.redis_connection import REDIS_ERRORS

__all__ = ["StoreProbe"]


class StoreProbe(Collector):
    """One gauge: 1 for each store that answered its probe, 0 for each that did not."""

    def __init__(self, redis_client: redis.Redis, database: Database) -> None:
        self._redis = redis_client
        self._database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "store_up", "1 when the store answered a probe at scrape time, else 0", labels=["store"]
        )
        gauge.add_metric(["redis"], 1.0 if self._redis_answers() else 0.0)
        gauge.add_metric(["postgres"], 1.0 if self._postgres_answers() else 0.0)
        yield gauge

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without this, registering would call collect() (and so probe) once at import time.
        yield GaugeMetricFamily("store_up", "", labels=["store"])

    def _redis_answers(self) -> bool:
        try:
            return bool(self._redis.ping())
        except (*REDIS_ERRORS, OSError):
            return False

    def _postgres_answers(self) -> bool:
        try:
            return self._database.run("SELECT 1") == [[1]]
        except AdServerError:  # the pool wraps every driver error (unreachable, refused, busy)
            return False
