"""The campaigns API's routes for campaigns themselves (``/``, ``/bulk``, ``/{campaignId}``).

Registered on the campaigns function's router by `add_campaign_routes`, after the floor routes
(see `floor_routes`). Every route is authorized by the caller's `authorize`; writes go through
`campaigns.service.admin.CampaignWriteThrough` (PostgreSQL, then the Redis cache and the bid
replicas). Who may do what is `kernel.access`'s table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shared_layer.campaigns.domain.requests import (
    CampaignRecord,
    CampaignRequest,
    parse_bulk,
    parse_campaign,
    parse_list_query,
)
from shared_layer.campaigns.service.admin import CampaignWriteThrough
from shared_layer.kernel.access import Caller, advertiser_scope, require, require_owner
from shared_layer.kernel.errors import Forbidden
from shared_layer.kernel.http import Request, Response, Router, json_response, no_content

__all__ = ["add_campaign_routes"]


def add_campaign_routes(
    router: Router,
    admin: CampaignWriteThrough,
    authenticate: Callable[[Request], Caller],
    limit_writes: Callable[[Caller], None] = lambda caller: None,
) -> None:
    """Register the campaign routes on `router`.

    Every route asks `authenticate` who is calling and applies `kernel.access`: a reporting key
    reads only, an advertiser's key sees and changes only its own campaigns (another's is a
    404, as an unknown id), writes are counted by `limit_writes` (a 429 past the key's rate).
    """

    def reader(request: Request) -> Caller:
        caller = authenticate(request)
        require(caller, "read")
        return caller

    def writer(request: Request) -> Caller:
        caller = authenticate(request)
        require(caller, "write")
        limit_writes(caller)
        return caller

    def owned(caller: Caller, campaign_id: str) -> CampaignRecord:
        record = admin.store.require(campaign_id)
        require_owner(caller, record.campaign.advertiser_id, f"campaign {campaign_id}")
        return record

    def for_own_advertiser(caller: Caller, requests: Sequence[CampaignRequest]) -> None:
        own = (caller.advertiser_id or "").lower()
        if not caller.is_admin and any(r.advertiser_id.lower() != own for r in requests):
            raise Forbidden(f"this key may only make or change campaigns of advertiser {own}")

    @router.route("POST", "/bulk")
    def bulk_import(request: Request) -> Response:
        caller = writer(request)
        bulk = parse_bulk(request.body)
        for_own_advertiser(caller, bulk.campaigns)
        ids = [c.id for c in admin.bulk_import(bulk)]
        return json_response(201, {"imported": len(ids), "ids": ids}, request)

    @router.route("POST", "/")
    def create(request: Request) -> Response:
        caller = writer(request)
        campaign = parse_campaign(request.body)
        for_own_advertiser(caller, [campaign])
        record = admin.create(campaign)
        location = {"Location": f"/function/campaigns/{record.campaign.id}"}
        return json_response(201, admin.view(record), request, location)

    @router.route("GET", "/")
    def list_campaigns(request: Request) -> Response:
        caller = reader(request)
        query = parse_list_query(request.query)
        query["advertiser_id"] = advertiser_scope(caller, query["advertiser_id"])
        page = admin.store.list(**query)
        body = {"items": admin.view_many(page.items), "nextCursor": page.next_cursor}
        return json_response(200, body, request)

    @router.route("GET", "/{campaign_id}")
    def read(request: Request, campaign_id: str) -> Response:
        return json_response(200, admin.view(owned(reader(request), campaign_id)), request)

    @router.route("PUT", "/{campaign_id}")
    def replace(request: Request, campaign_id: str) -> Response:
        caller = writer(request)
        owned(caller, campaign_id)  # an unknown id is a 404 even when the body is also wrong
        campaign = parse_campaign(request.body)
        for_own_advertiser(caller, [campaign])
        record = admin.replace(campaign_id, campaign)
        return json_response(200, admin.view(record), request)

    @router.route("POST", "/{campaign_id}/pause")
    def pause(request: Request, campaign_id: str) -> Response:
        owned(writer(request), campaign_id)
        return json_response(200, admin.view(admin.set_status(campaign_id, "paused")), request)

    @router.route("POST", "/{campaign_id}/resume")
    def resume(request: Request, campaign_id: str) -> Response:
        owned(writer(request), campaign_id)
        return json_response(200, admin.view(admin.set_status(campaign_id, "active")), request)

    @router.route("DELETE", "/{campaign_id}")
    def delete(request: Request, campaign_id: str) -> Response:
        owned(writer(request), campaign_id)
        admin.delete(campaign_id)
        return no_content(request)
