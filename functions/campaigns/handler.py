"""campaigns: the admin REST API for campaigns, their ads and targeting rules.

Thin on purpose: parsing and validation live in shared_layer.campaigns.domain.requests, the
routes in campaigns.service.campaign_routes and floor_routes, the write path (PostgreSQL, then
the Redis cache and the bid replicas) in campaigns.service.admin. Every route needs
``Authorization: Bearer <campaigns-admin-token>``.
"""

from __future__ import annotations

from shared_layer.campaigns.service.campaign_routes import add_campaign_routes
from shared_layer.campaigns.service.floor_routes import add_floor_routes
from shared_layer.composition.campaigns import campaign_admin
from shared_layer.kernel.http import Handler, Request, Router, require_bearer
from shared_layer.kernel.settings import load_settings, min_length, secret, settings_class
from shared_layer.kernel.storage.redis_connection import connect
from shared_layer.kernel.storage.settings import PostgresSettings, RedisSettings


@settings_class
class CampaignsSettings(PostgresSettings, RedisSettings):
    postgres_password: str = secret("postgres-password")  # required here
    admin_token: bytes = secret("campaigns-admin-token", check=min_length(16))


def build(settings: CampaignsSettings | None = None) -> Handler:
    """Connect to PostgreSQL and Redis; every route needs the admin token."""
    settings = settings or load_settings(CampaignsSettings)
    database = settings.database()
    admin = campaign_admin(database, connect(settings.redis_url, timeout_s=2, connect_timeout_s=1))

    def authorize(request: Request) -> None:
        require_bearer(request, settings.admin_token, "campaigns")

    router = Router()
    add_floor_routes(router, admin, authorize)  # before /{campaign_id}, which would match
    add_campaign_routes(router, admin, authorize)
    return router.handler(service="campaigns", max_body_bytes=16 * 1024 * 1024)
