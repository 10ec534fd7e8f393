"""The account routes of the campaigns API: who am I, advertisers and API keys.

    GET    /me                 any key: its id, role and advertiser (with currency, time zone)
    POST   /advertisers        admin: {"name", "currency"?, "timeZone"?, "id"?} -> 201
    GET    /advertisers        admin: {"items": [...]}
    POST   /keys               admin: {"role", "advertiserId"?, "label"?} -> 201 with "key",
                               the only time the key is shown
    GET    /keys               admin: {"items": [...]} without keys or hashes (?advertiserId=)
    DELETE /keys/{keyId}       admin: 204; the key stops working at once on every replica

Registered before the campaign routes, whose ``/{campaignId}`` would match these paths.
"""

from __future__ import annotations

from collections.abc import Callable

from shared_layer.accounts.domain.requests import AdvertiserRequest, KeyRequest
from shared_layer.accounts.store.accounts import AccountStore
from shared_layer.kernel.access import Caller, require
from shared_layer.kernel.errors import NotFound, ValidationFailed
from shared_layer.kernel.http import Request, Response, Router, json_response, no_content
from shared_layer.kernel.models import parse

__all__ = ["add_account_routes"]

_MAX_BODY = 64 * 1024


def add_account_routes(
    router: Router, accounts: AccountStore, authenticate: Callable[[Request], Caller]
) -> None:
    """Register the account routes on `router`."""

    def admin(request: Request) -> Caller:
        caller = authenticate(request)
        require(caller, "admin")
        return caller

    @router.route("GET", "/me")
    def me(request: Request) -> Response:
        caller = authenticate(request)
        advertiser = accounts.advertiser(caller.advertiser_id) if caller.advertiser_id else None
        body = {
            "keyId": caller.key_id,
            "role": caller.role,
            "advertiserId": caller.advertiser_id,
            "advertiser": advertiser.json() if advertiser else None,
        }
        return json_response(200, body, request, {"Cache-Control": "no-store"})

    @router.route("POST", "/advertisers")
    def create_advertiser(request: Request) -> Response:
        admin(request)
        wanted = parse(AdvertiserRequest, request.body, max_bytes=_MAX_BODY)
        record = accounts.create_advertiser(
            wanted.name,
            currency=wanted.currency,
            time_zone=wanted.time_zone,
            advertiser_id=str(wanted.id) if wanted.id else None,
        )
        return json_response(201, record.json(), request)

    @router.route("GET", "/advertisers")
    def list_advertisers(request: Request) -> Response:
        admin(request)
        return json_response(200, {"items": [a.json() for a in accounts.advertisers()]}, request)

    @router.route("POST", "/keys")
    def create_key(request: Request) -> Response:
        admin(request)
        wanted = parse(KeyRequest, request.body, max_bytes=_MAX_BODY)
        advertiser = str(wanted.advertiser_id) if wanted.advertiser_id else None
        if advertiser is not None and accounts.advertiser(advertiser) is None:
            raise ValidationFailed(f"advertiserId: no advertiser {advertiser}", ["advertiserId"])
        minted = accounts.create_key(wanted.role, advertiser, label=wanted.label)
        record = accounts.key(minted.key_id)
        assert record is not None  # just written
        body = {**record.json(), "key": minted.key}
        headers = {"Cache-Control": "no-store", "Location": f"/function/campaigns/keys/{record.id}"}
        return json_response(201, body, request, headers)

    @router.route("GET", "/keys")
    def list_keys(request: Request) -> Response:
        admin(request)
        advertiser = request.query.get("advertiserId")
        wanted = (
            parse(KeyRequest, {"role": "advertiser", "advertiserId": advertiser})
            if (advertiser is not None)
            else None
        )
        scope = str(wanted.advertiser_id) if wanted else None
        return json_response(200, {"items": [k.json() for k in accounts.keys(scope)]}, request)

    @router.route("DELETE", "/keys/{key_id}")
    def revoke_key(request: Request, key_id: str) -> Response:
        admin(request)
        if accounts.revoke(key_id) is None:
            raise NotFound(f"key {key_id[:40]} does not exist")
        return no_content(request)
