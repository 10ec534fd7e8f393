"""The campaigns API's routes for campaigns themselves (``/``, ``/bulk``, ``/{campaignId}``).

Registered on the campaigns function's router by `add_campaign_routes`, after the floor routes
(see `floor_routes`). Every route is authorized by the caller's `authorize`; writes go through
`campaigns.service.admin.CampaignWriteThrough` (PostgreSQL, then the Redis cache and the bid
replicas).
"""

from __future__ import annotations

from collections.abc import Callable

from shared_layer.campaigns.domain.requests import parse_bulk, parse_campaign, parse_list_query
from shared_layer.campaigns.service.admin import CampaignWriteThrough
from shared_layer.kernel.http import Request, Response, Router, json_response, no_content

__all__ = ["add_campaign_routes"]


def add_campaign_routes(
    router: Router, admin: CampaignWriteThrough, authorize: Callable[[Request], None]
) -> None:
    """Register the campaign routes on `router`."""

    @router.route("POST", "/bulk")
    def bulk_import(request: Request) -> Response:
        authorize(request)
        ids = [c.id for c in admin.bulk_import(parse_bulk(request.body))]
        return json_response(201, {"imported": len(ids), "ids": ids}, request)

    @router.route("POST", "/")
    def create(request: Request) -> Response:
        authorize(request)
        record = admin.create(parse_campaign(request.body))
        location = {"Location": f"/function/campaigns/{record.campaign.id}"}
        return json_response(201, admin.view(record), request, location)

    @router.route("GET", "/")
    def list_campaigns(request: Request) -> Response:
        authorize(request)
        page = admin.store.list(**parse_list_query(request.query))
        body = {"items": admin.view_many(page.items), "nextCursor": page.next_cursor}
        return json_response(200, body, request)

    @router.route("GET", "/{campaign_id}")
    def read(request: Request, campaign_id: str) -> Response:
        authorize(request)
        return json_response(200, admin.view(admin.store.require(campaign_id)), request)

    @router.route("PUT", "/{campaign_id}")
    def replace(request: Request, campaign_id: str) -> Response:
        authorize(request)
        admin.store.require(campaign_id)  # an unknown id is a 404 even when the body is also wrong
        record = admin.replace(campaign_id, parse_campaign(request.body))
        return json_response(200, admin.view(record), request)

    @router.route("POST", "/{campaign_id}/pause")
    def pause(request: Request, campaign_id: str) -> Response:
        authorize(request)
        return json_response(200, admin.view(admin.set_status(campaign_id, "paused")), request)

    @router.route("POST", "/{campaign_id}/resume")
    def resume(request: Request, campaign_id: str) -> Response:
        authorize(request)
        return json_response(200, admin.view(admin.set_status(campaign_id, "active")), request)

    @router.route("DELETE", "/{campaign_id}")
    def delete(request: Request, campaign_id: str) -> Response:
        authorize(request)
        admin.delete(campaign_id)
        return no_content(request)
