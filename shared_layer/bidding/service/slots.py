"""Several slots in one request: serve's query and body, bid's answer, serve's answer.

A page asks for all its slots at once (``slot=top:placement-001&slot=side:placement-002`` on
GET /serve, or the JSON body of POST /serve and /bid, `models.SlotsRequest`); the auction fills
them in order without duplicates (`auction.decide_slots`), and each answer is keyed by slot
name, each slot's winners in a list. The one-slot request and answer are untouched: these
functions are reached only when a request names slots.

Example::

    request = slots_request_from_query(query, lists)  # ?userId=u-1&slot=top:p-1:728x90:1
    body = slots_answer(outcome.wins)                # {"slots": {"top": [{...}]}}
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any, Final

from shared_layer.bidding import metrics
from shared_layer.bidding.domain.auction import SlotWin
from shared_layer.bidding.domain.privacy_params import with_privacy
from shared_layer.bidding.metrics import SERVE_REQUESTS
from shared_layer.bidding.service.bid_client import (
    BidClient,
    NoFillReason,
    ad_response,
    bid_request_from_query,
    explain_headers,
)
from shared_layer.bidding.service.bidder import Bidder, BidOutcome
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import AdServerError, ValidationFailed
from shared_layer.kernel.http import Request, json_response, no_content
from shared_layer.kernel.models import BidRequest, BidResponse, SlotsRequest, parse

__all__ = [
    "SLOTS_PARAMETERS",
    "ClickUrl",
    "bid_slots",
    "explained",
    "read_slots",
    "serve_ad",
    "serve_slots",
    "serve_slots_answer",
    "slots_answer",
    "slots_request_from_query",
    "wants_explanation",
]

SLOTS_PARAMETERS: Final = ("slot", "duplicates")
"""GET /serve's parameters for several slots, beside the one-slot ones but placementId."""


ClickUrl = Callable[[BidResponse, str, str, str, str], str]
"""Signs an ad's click URL: (bid, impression id, placementId, userId, serve's request id)."""


def read_slots(request: Request, *, vendor_id: int | None = None) -> SlotsRequest:
    """serve's several-slot request, from GET's ``slot`` parameters or POST's JSON body, as the
    privacy parameters allow (TCF `vendor_id`); a bad one is counted and raised (400)."""
    try:
        if request.method == "GET":
            return slots_request_from_query(
                request.query,
                request.query_lists,
                vendor_id=vendor_id,
                request_id=request.request_id,
            )
        return with_privacy(
            parse(SlotsRequest, request.body),
            request.query,
            vendor_id=vendor_id,
            request_id=request.request_id,
        )
    except AdServerError:
        SERVE_REQUESTS.labels("invalid").inc()
        raise


def serve_ad(
    bids: BidClient, bid_request: BidRequest, request: Request, click_url: ClickUrl
) -> dict[str, Any]:
    """serve's answer to one slot: the ad (200) or 204 with the reason; an admin's explained
    request (`explain_headers`) gets 200 with bid's ``explain``, with the ad when one won."""
    result = bids.call(
        bid_request,
        request_id=request.request_id,
        traceparent=request.traceparent,
        headers=explain_headers(request.query, request.header),
    )
    body: dict[str, Any] = {}
    if result.bid is not None:
        # The ad's correlation id (serve's request id) is carried into the click.
        ids = (result.impression_id, bid_request.placement_id, bid_request.user_id)
        url = click_url(result.bid, *ids, request.request_id)
        body = ad_response(result.bid, result.impression_id, url)
    SERVE_REQUESTS.labels("filled" if body else str(result.no_fill)).inc()
    if result.explanation is not None:
        return json_response(200, {**body, "explain": result.explanation}, request)
    if not body:
        return no_content(request, {"X-No-Fill-Reason": str(result.no_fill)})
    return json_response(200, body, request)


def serve_slots(
    bids: BidClient, slots: SlotsRequest, request: Request, click_url: ClickUrl
) -> dict[str, Any]:
    """serve's answer to several slots: 200 keyed by slot name, or 204 when bid filled none;
    an admin's explained request also gets bid's ``explain``, and 200 even when none filled."""
    result = bids.call_slots(
        slots,
        request_id=request.request_id,
        traceparent=request.traceparent,
        headers=explain_headers(request.query, request.header),
    )
    explanation = {} if result.explanation is None else {"explain": result.explanation}
    if not any(result.slots.values()) and not explanation:
        reason = str(result.no_fill or NoFillReason.NO_BID)
        SERVE_REQUESTS.labels(reason).inc()
        return no_content(request, {"X-No-Fill-Reason": reason})
    SERVE_REQUESTS.labels("filled").inc()
    body = serve_slots_answer(
        slots,
        result.slots,
        lambda bid, imp, placement: click_url(
            bid, imp, placement, slots.user_id, request.request_id
        ),
    )
    return json_response(200, {**body, **explanation}, request)


def slots_request_from_query(
    query: Mapping[str, str],
    lists: Mapping[str, list[str]],
    *,
    vendor_id: int | None = None,
    request_id: str = "",
) -> SlotsRequest:
    """The several-slot request of GET /serve, or `ValidationFailed` (400).

    Each ``slot`` is ``name:placementId[:sizes[:count]]``, sizes joined by ``|``
    (``top:p-1:728x90|970x250:1``); ``duplicates`` is none, campaign, advertiser or creative.
    The user's parameters, the privacy ones included (`vendor_id`, `request_id`: see
    `bid_request_from_query`), are as for one slot; placementId is not given (each slot has one).
    """
    if "placementId" in query:
        raise ValidationFailed(
            "invalid request: placementId: give it in each slot, not beside them",
            ["placementId"],
        )
    user_query = {k: v for k, v in query.items() if k not in SLOTS_PARAMETERS}
    user = bid_request_from_query(
        {**user_query, "placementId": "-"}, vendor_id=vendor_id, request_id=request_id
    )
    slots = []
    for n, text in enumerate(lists.get("slot") or [query["slot"]]):
        parts = text.split(":")
        if not 2 <= len(parts) <= 4:
            raise ValidationFailed(
                f"invalid request: slot.{n}: write name:placementId[:WxH|WxH[:count]]",
                [f"slot.{n}"],
            )
        slot: dict[str, Any] = {"name": parts[0], "placementId": parts[1]}
        if len(parts) > 2 and parts[2]:
            slot["sizes"] = parts[2].split("|")
        if len(parts) > 3:
            if not (parts[3].isascii() and parts[3].isdigit()):
                raise ValidationFailed(
                    f"invalid request: slot.{n}: count must be a whole number", [f"slot.{n}"]
                )
            slot["count"] = int(parts[3])
        slots.append(slot)
    data: dict[str, Any] = user.model_dump(
        mode="json", exclude_defaults=True, exclude={"placement_id"}
    )
    data["slots"] = slots
    if "duplicates" in query:
        data["duplicates"] = query["duplicates"]
    try:
        return parse(SlotsRequest, data)
    except ValidationFailed as exc:
        raise ValidationFailed(
            exc.message.replace("invalid SlotsRequest", "invalid request"), exc.fields
        ) from exc


def wants_explanation(request: Request, admin_token: bytes | None) -> bool:
    """``explain=1`` (or ``X-Explain: 1``) with the admin bearer token; anything else, a wrong
    token included, is an ordinary request (the parameter is ignored)."""
    if admin_token is None:
        return False
    if request.query.get("explain") != "1" and request.header("x-explain") != "1":
        return False
    scheme, _, token = request.header("authorization").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), admin_token)


def explained(outcome: BidOutcome) -> dict[str, Any]:
    """bid's answer to an explained one-slot request: the usual body (when something won) and
    ``explain``; 200 even without a winner, so the explanation can be read."""
    body: dict[str, Any] = {}
    if outcome.decision is not None:
        body = {**outcome.decision.to_response().to_json(), "impressionId": outcome.impression_id}
    return {**body, "explain": outcome.explanation}


def slots_answer(wins: Mapping[str, list[SlotWin]]) -> dict[str, Any]:
    """bid's 200 body: every slot's winners, in the one-slot answer's shape each."""
    return {
        "slots": {
            name: [
                {**w.decision.to_response().to_json(), "impressionId": w.impression_id} for w in won
            ]
            for name, won in wins.items()
        }
    }


def serve_slots_answer(
    request: SlotsRequest,
    slots: Mapping[str, list[tuple[BidResponse, str]]],
    click_url: Callable[[BidResponse, str, str], str],
) -> dict[str, Any]:
    """serve's 200 body: each slot's ads as the one-slot answer, with its own click URL
    (`click_url(bid, impression id, placementId)`); every slot asked for is named."""
    placements = {slot.name: slot.placement_id for slot in request.slots}
    return {
        "slots": {
            name: [
                ad_response(bid, impression_id, click_url(bid, impression_id, placement))
                for bid, impression_id in slots.get(name, [])
            ]
            for name, placement in placements.items()
        }
    }


def bid_slots(
    bidder: Bidder, slots: SlotsRequest, request: Request, *, explain: bool = False
) -> dict[str, Any]:
    """bid's answer to several slots: 200 with every slot's winners by name, 204 when none
    filled; counted in bid's decision metrics as one request. `explain` (an admin's question,
    `wants_explanation`) adds ``explain`` per slot and answers 200 even when none filled."""
    with metrics.deciding():
        outcome = bidder.bid_slots(
            slots, Correlation(request.request_id, request.traceparent), explain=explain
        )
    metrics.BID_DECISIONS.labels("bid" if outcome.filled else "no-candidate").inc()
    metrics.BID_SPEND_MICROS.inc(outcome.spend_micros)
    body = slots_answer(outcome.wins)
    if outcome.explanation is not None:
        return json_response(200, {**body, "explain": outcome.explanation}, request)
    if not outcome.filled:
        return no_content(request, {"X-No-Bid-Reason": "no-candidate"})
    return json_response(200, body, request)
