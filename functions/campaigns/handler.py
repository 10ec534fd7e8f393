"""campaigns: the admin REST API for campaigns, their ads and targeting rules.

Thin on purpose: parsing and validation live in shared_layer.campaign_store, the write path
(PostgreSQL, then the Redis cache and the bid replicas' notification) in
shared_layer.campaign_cache. Every route needs ``Authorization: Bearer <campaigns-admin-token>``.
"""

from __future__ import annotations

import redis

from shared_layer.campaign_cache import CampaignCache, CampaignWriteThrough
from shared_layer.campaign_store import (
    CampaignStore,
    campaign_json,
    parse_bulk,
    parse_campaign,
    parse_list_query,
)
from shared_layer.db import Database
from shared_layer.http import Request, Router, json_response, no_content, require_bearer
from shared_layer.settings import env, load_settings, min_length, secret, settings_class


@settings_class
class CampaignsSettings:
    database_url: str = env("DATABASE_URL")
    redis_url: str = env("REDIS_URL")
    postgres_password: str = secret("postgres-password")
    admin_token: bytes = secret("campaigns-admin-token", check=min_length(16))


SETTINGS = load_settings(CampaignsSettings)
_redis = redis.Redis.from_url(SETTINGS.redis_url, socket_timeout=2, socket_connect_timeout=1)
CAMPAIGNS = CampaignWriteThrough(
    CampaignStore(Database.from_url(SETTINGS.database_url, password=SETTINGS.postgres_password)),
    CampaignCache(_redis),
)
router = Router()


def _authorized(request: Request) -> None:
    require_bearer(request, SETTINGS.admin_token, "campaigns")


@router.route("POST", "/bulk")
def bulk_import(request: Request) -> dict:
    _authorized(request)
    campaigns = CAMPAIGNS.bulk_import(parse_bulk(request.body))
    return json_response(
        201, {"imported": len(campaigns), "ids": [c.id for c in campaigns]}, request
    )


@router.route("POST", "/")
def create(request: Request) -> dict:
    _authorized(request)
    record = CAMPAIGNS.create(parse_campaign(request.body))
    location = {"Location": f"/function/campaigns/{record.campaign.id}"}
    return json_response(201, campaign_json(record), request, location)


@router.route("GET", "/")
def list_campaigns(request: Request) -> dict:
    _authorized(request)
    page = CAMPAIGNS.store.list(**parse_list_query(request.query))
    body = {"items": [campaign_json(r) for r in page.items], "nextCursor": page.next_cursor}
    return json_response(200, body, request)


@router.route("GET", "/{campaign_id}")
def read(request: Request, campaign_id: str) -> dict:
    _authorized(request)
    return json_response(200, campaign_json(CAMPAIGNS.store.require(campaign_id)), request)


@router.route("PUT", "/{campaign_id}")
def replace(request: Request, campaign_id: str) -> dict:
    _authorized(request)
    CAMPAIGNS.store.require(campaign_id)  # an unknown id is a 404 even when the body is also wrong
    record = CAMPAIGNS.replace(campaign_id, parse_campaign(request.body))
    return json_response(200, campaign_json(record), request)


@router.route("POST", "/{campaign_id}/pause")
def pause(request: Request, campaign_id: str) -> dict:
    _authorized(request)
    return json_response(200, campaign_json(CAMPAIGNS.set_status(campaign_id, "paused")), request)


@router.route("POST", "/{campaign_id}/resume")
def resume(request: Request, campaign_id: str) -> dict:
    _authorized(request)
    return json_response(200, campaign_json(CAMPAIGNS.set_status(campaign_id, "active")), request)


@router.route("DELETE", "/{campaign_id}")
def delete(request: Request, campaign_id: str) -> dict:
    _authorized(request)
    CAMPAIGNS.delete(campaign_id)
    return no_content(request)


handle = router.handler(service="campaigns", max_body_bytes=16 * 1024 * 1024)
