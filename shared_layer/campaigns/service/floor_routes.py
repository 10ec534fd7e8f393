"""The campaigns API's routes for floor prices per placement (``/floors``).

Registered on the campaigns function's router by `add_floor_routes`, before the campaign routes
(the router takes the first template that matches, and ``/floors`` would otherwise read as a
campaign id). Every route needs an admin key. Writes go through
`campaigns.service.admin.CampaignWriteThrough` (PostgreSQL, then every bid replica).

    GET    /floors                 {"items": [{placementId, floorCpm, clearing, duplicates,
                                              updatedAt}]}
    GET    /floors/{placementId}   one floor, 404 when the placement has none
    PUT    /floors/{placementId}   {"floorCpm": 1.5, "clearing": "second-price",
                                    "duplicates": "advertiser"} -> 200, the floor
    DELETE /floors/{placementId}   204, 404 when the placement had none
"""

from __future__ import annotations

from collections.abc import Callable

from shared_layer.campaigns.domain.requests import parse_floor
from shared_layer.campaigns.service.admin import CampaignWriteThrough
from shared_layer.kernel.access import Caller, require
from shared_layer.kernel.http import Request, Response, Router, json_response, no_content

__all__ = ["add_floor_routes"]


def add_floor_routes(
    router: Router, admin: CampaignWriteThrough, authenticate: Callable[[Request], Caller]
) -> None:
    """Register the four floor routes on `router`; floors are an admin's (any other key: 403)."""

    def authorize(request: Request) -> None:
        require(authenticate(request), "admin")

    @router.route("GET", "/floors")
    def list_floors(request: Request) -> Response:
        authorize(request)
        return json_response(200, {"items": admin.list_floors()}, request)

    @router.route("GET", "/floors/{placement_id}")
    def read_floor(request: Request, placement_id: str) -> Response:
        authorize(request)
        return json_response(200, admin.read_floor(placement_id), request)

    @router.route("PUT", "/floors/{placement_id}")
    def put_floor(request: Request, placement_id: str) -> Response:
        authorize(request)
        return json_response(200, admin.put_floor(parse_floor(placement_id, request.body)), request)

    @router.route("DELETE", "/floors/{placement_id}")
    def delete_floor(request: Request, placement_id: str) -> Response:
        authorize(request)
        admin.delete_floor(placement_id)
        return no_content(request)
