"""campaigns: the admin REST API for campaigns, their ads and targeting rules.

Thin on purpose: parsing and validation live in shared_layer.campaigns.domain.requests, the write
path (PostgreSQL, then the Redis cache and the bid replicas) in campaigns.service.admin. Every
route needs ``Authorization: Bearer <campaigns-admin-token>``.
"""

from __future__ import annotations

from shared_layer.campaigns.domain.requests import parse_bulk, parse_campaign, parse_list_query
from shared_layer.campaigns.service.floor_routes import add_floor_routes
from shared_layer.composition.campaigns import campaign_admin
from shared_layer.kernel.http import Request, Router, json_response, no_content, require_bearer
from shared_layer.kernel.settings import env, load_settings, min_length, secret, settings_class
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.redis_connection import connect


@settings_class
class CampaignsSettings:
    database_url: str = env("DATABASE_URL")
    redis_url: str = env("REDIS_URL")
    postgres_password: str = secret("postgres-password")
    admin_token: bytes = secret("campaigns-admin-token", check=min_length(16))


SETTINGS = load_settings(CampaignsSettings)
_database = Database.from_url(SETTINGS.database_url, password=SETTINGS.postgres_password)
_redis = connect(SETTINGS.redis_url, timeout_s=2, connect_timeout_s=1)
CAMPAIGNS = campaign_admin(_database, _redis)
router = Router()


def _authorized(request: Request) -> None:
    require_bearer(request, SETTINGS.admin_token, "campaigns")


add_floor_routes(router, CAMPAIGNS, _authorized)  # before /{campaign_id}, which would match


@router.route("POST", "/bulk")
def bulk_import(request: Request) -> dict:
    _authorized(request)
    ids = [c.id for c in CAMPAIGNS.bulk_import(parse_bulk(request.body))]
    return json_response(201, {"imported": len(ids), "ids": ids}, request)


@router.route("POST", "/")
def create(request: Request) -> dict:
    _authorized(request)
    record = CAMPAIGNS.create(parse_campaign(request.body))
    location = {"Location": f"/function/campaigns/{record.campaign.id}"}
    return json_response(201, CAMPAIGNS.view(record), request, location)


@router.route("GET", "/")
def list_campaigns(request: Request) -> dict:
    _authorized(request)
    page = CAMPAIGNS.store.list(**parse_list_query(request.query))
    body = {"items": CAMPAIGNS.view_many(page.items), "nextCursor": page.next_cursor}
    return json_response(200, body, request)


@router.route("GET", "/{campaign_id}")
def read(request: Request, campaign_id: str) -> dict:
    _authorized(request)
    return json_response(200, CAMPAIGNS.view(CAMPAIGNS.store.require(campaign_id)), request)


@router.route("PUT", "/{campaign_id}")
def replace(request: Request, campaign_id: str) -> dict:
    _authorized(request)
    CAMPAIGNS.store.require(campaign_id)  # an unknown id is a 404 even when the body is also wrong
    record = CAMPAIGNS.replace(campaign_id, parse_campaign(request.body))
    return json_response(200, CAMPAIGNS.view(record), request)


@router.route("POST", "/{campaign_id}/pause")
def pause(request: Request, campaign_id: str) -> dict:
    _authorized(request)
    return json_response(200, CAMPAIGNS.view(CAMPAIGNS.set_status(campaign_id, "paused")), request)


@router.route("POST", "/{campaign_id}/resume")
def resume(request: Request, campaign_id: str) -> dict:
    _authorized(request)
    return json_response(200, CAMPAIGNS.view(CAMPAIGNS.set_status(campaign_id, "active")), request)


@router.route("DELETE", "/{campaign_id}")
def delete(request: Request, campaign_id: str) -> dict:
    _authorized(request)
    CAMPAIGNS.delete(campaign_id)
    return no_content(request)


handle = router.handler(service="campaigns", max_body_bytes=16 * 1024 * 1024)
