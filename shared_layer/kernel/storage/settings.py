"""Where the stores are: the settings every component that reaches one shares.

A component's settings class inherits the groups it needs, so that each variable and secret is
named once and a pool is opened one way (`PostgresSettings.database`). Each group is a frozen,
keyword-only dataclass like any settings class (`kernel.settings`).

Example::

    @settings_class
    class ClickSettings(PostgresSettings, RedisSettings, KafkaSettings):
        click_signing_key: bytes = secret("click-signing-key", check=min_length(32))

    settings = load_settings(ClickSettings)
    database = settings.database(size=4)
"""

from __future__ import annotations

from shared_layer.kernel.settings import env, secret, settings_class
from shared_layer.kernel.storage.postgres import DEFAULT_POOL_SIZE, Database

__all__ = ["KafkaSettings", "PostgresSettings", "RedisSettings"]


@settings_class
class PostgresSettings:
    database_url: str = env("DATABASE_URL")
    # None: the URL carries the password, or the server trusts this client (local runs).
    postgres_password: str | None = secret("postgres-password", default=None)

    def database(self, *, size: int = DEFAULT_POOL_SIZE) -> Database:
        """A connection pool of `size` to this PostgreSQL (connections open on first use)."""
        return Database.from_url(self.database_url, password=self.postgres_password, size=size)


@settings_class
class RedisSettings:
    redis_url: str = env("REDIS_URL")


@settings_class
class KafkaSettings:
    kafka_brokers: str = env("KAFKA_BROKERS")
