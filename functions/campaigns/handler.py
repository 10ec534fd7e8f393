"""campaigns: the REST API for campaigns, their ads and targeting rules, floors and accounts.

Thin on purpose: parsing and validation live in shared_layer.campaigns.domain.requests, the
routes in campaigns.service.campaign_routes and floor_routes, the write path (PostgreSQL, then
the Redis cache and the bid replicas) in campaigns.service.admin; advertisers and API keys in
shared_layer.accounts. Every route needs ``Authorization: Bearer <API key>`` (or the
deployment's admin token, the bootstrap admin key); what each role may do is kernel.access.
"""

from __future__ import annotations

from shared_layer.accounts.service.account_routes import add_account_routes
from shared_layer.campaigns.service.campaign_routes import add_campaign_routes
from shared_layer.campaigns.service.floor_routes import add_floor_routes
from shared_layer.composition.accounts import account_checks
from shared_layer.composition.campaigns import campaign_admin
from shared_layer.kernel.http import Handler, Router
from shared_layer.kernel.settings import (
    at_least,
    env,
    load_settings,
    min_length,
    secret,
    settings_class,
)
from shared_layer.kernel.storage.redis_connection import connect
from shared_layer.kernel.storage.settings import PostgresSettings, RedisSettings


@settings_class
class CampaignsSettings(PostgresSettings, RedisSettings):
    postgres_password: str = secret("postgres-password")  # required here
    admin_token: bytes = secret("campaigns-admin-token", check=min_length(16))
    # Changes a minute per API key (0: unlimited); the admin token is never limited.
    writes_per_minute: int = env("CAMPAIGNS_WRITES_PER_MINUTE", default=600, check=at_least(0))


def build(settings: CampaignsSettings | None = None) -> Handler:
    """Connect to PostgreSQL and Redis; every route needs a key."""
    settings = settings or load_settings(CampaignsSettings)
    database = settings.database()
    redis_client = connect(settings.redis_url, timeout_s=2, connect_timeout_s=1)
    admin = campaign_admin(database, redis_client)
    checks = account_checks(
        database,
        redis_client,
        bootstrap_token=settings.admin_token,
        writes_per_minute=settings.writes_per_minute,
    )

    router = Router()
    add_account_routes(router, checks.accounts, checks.authenticate)
    add_floor_routes(router, admin, checks.authenticate)
    add_campaign_routes(router, admin, checks.authenticate, checks.limit_writes)
    return router.handler(service="campaigns", max_body_bytes=16 * 1024 * 1024)
