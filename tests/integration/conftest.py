"""Fixtures most integration modules share: the platform's PostgreSQL as a small pool, and a
redis-server of the module's own (for tests that stop, restart or empty it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared_layer.kernel.storage.postgres import Database

from .budget_ledger_support import RedisServer
from .campaign_support import database, end_test_campaigns


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    """The test platform's PostgreSQL; the campaigns a module made are ended afterwards."""
    pool = database()
    yield pool
    end_test_campaigns(pool)
    pool.close()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server (AOF on) for one module, so that losing its data disturbs nobody."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.kill()
