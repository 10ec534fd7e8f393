"""store_up against real stores: 1 while Redis and PostgreSQL answer, 0 once either does not."""

from __future__ import annotations

import redis

from shared_layer.kernel.storage.health import StoreProbe
from shared_layer.kernel.storage.postgres import Database
from tests.support import free_port

from .budget_ledger_support import RedisServer


def store_up(probe: StoreProbe) -> dict[str, float]:
    (family,) = probe.collect()
    assert family.name == "store_up"
    return {sample.labels["store"]: sample.value for sample in family.samples}


def client(server: RedisServer) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=0.5)


def test_both_stores_answering_are_up(redis_server, db):
    assert store_up(StoreProbe(client(redis_server), db)) == {"redis": 1.0, "postgres": 1.0}


def test_a_postgres_nobody_listens_for_is_down(redis_server):
    nowhere = Database.from_url(f"postgresql://adserver@127.0.0.1:{free_port()}/adserver")
    assert store_up(StoreProbe(client(redis_server), nowhere)) == {"redis": 1.0, "postgres": 0.0}


def test_a_stopped_redis_is_down_and_up_again_when_it_is_back(redis_server, db):
    probe = StoreProbe(client(redis_server), db)
    redis_server.kill()
    try:
        assert store_up(probe) == {"redis": 0.0, "postgres": 1.0}
    finally:
        redis_server.start()
    assert store_up(probe) == {"redis": 1.0, "postgres": 1.0}
