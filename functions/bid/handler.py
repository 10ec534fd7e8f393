"""bid: POST / with the specification's /bid request; the auction over this replica's campaign
snapshot.

The winner is the highest-CPM eligible campaign whose budget accepts the charge (one atomic Lua
script, `bidding.store.budget_ledger`), which also appends the impression event to the outbox
(`kernel.storage.outbox`) for the relay to drain to Kafka; the answer carries its impressionId.
Several slots: `bidding.service.slots`. 204 when nothing
is eligible, every budget, pacing curve or frequency cap refuses, or every bid is below the
placement's floor (the ``X-No-Bid-Reason`` header says which), and without an auction when serve's
deadline (``X-Bid-Deadline``, `bidding.domain.deadline`) has passed; 400/413 for bad input
(nothing charged); 503 when Redis cannot confirm a charge (serve then answers no fill).
"""

from __future__ import annotations

import time

from shared_layer.bidding import metrics
from shared_layer.bidding.domain.deadline import (
    DEADLINE_HEADER,
    NO_BID_REASON,
    parse_deadline,
    passed,
)
from shared_layer.bidding.domain.privacy_params import with_privacy
from shared_layer.bidding.service.bidder import Bidder
from shared_layer.bidding.service.slots import bid_slots, explained, wants_explanation
from shared_layer.composition.bidder import BidderSettings, start_bidder
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import AdServerError
from shared_layer.kernel.http import Handler, Request, Router, json_response, no_content
from shared_layer.kernel.models import BidRequest, SlotsRequest, is_slots_body, parse
from shared_layer.kernel.settings import load_settings


def build(settings: BidderSettings | None = None, *, clock: Clock = utc_now) -> Handler:
    """Connect and start this replica's bidder (`clock` sets the days of budgets and pacing)."""
    settings = settings or load_settings(BidderSettings)
    runtime = start_bidder(settings, clock=clock)
    return serve_bids(
        runtime.bidder, admin_token=settings.admin_token, vendor_id=settings.tcf_vendor_id
    )


def serve_bids(
    bidder: Bidder, *, admin_token: bytes | None = None, vendor_id: int | None = None
) -> Handler:
    """POST / over `bidder`, ready once its snapshot is; `admin_token` allows ``explain=1``, and
    the privacy query parameters (gdpr, gdpr_consent, us_privacy, coppa) apply the privacy
    rules with our TCF `vendor_id`."""
    router = Router()

    @router.route("POST", "/")
    def bid(request: Request) -> dict:
        try:
            several = is_slots_body(request.body)
            bid_request = with_privacy(
                parse(SlotsRequest if several else BidRequest, request.body),
                request.query,
                vendor_id=vendor_id,
                request_id=request.request_id,
            )
            deadline = parse_deadline(request.header(DEADLINE_HEADER) or None)
        except AdServerError:
            metrics.BID_DECISIONS.labels("invalid").inc()
            raise
        if passed(deadline, now_s=time.time()):  # serve has stopped waiting: charge nothing
            metrics.BID_DECISIONS.labels("late").inc()
            return no_content(request, {"X-No-Bid-Reason": NO_BID_REASON})
        explain = wants_explanation(request, admin_token)
        if isinstance(bid_request, SlotsRequest):
            return bid_slots(bidder, bid_request, request, explain=explain)
        with metrics.deciding():
            outcome = bidder.bid(
                bid_request, Correlation(request.request_id, request.traceparent), explain=explain
            )
        metrics.BID_DECISIONS.labels(outcome.label).inc()
        if outcome.decision is not None:
            metrics.BID_SPEND_MICROS.inc(outcome.decision.price.charge_micros)
        if outcome.explanation is not None:  # an admin's question: answered even without a bid
            return json_response(200, explained(outcome), request)
        if outcome.decision is None:
            return no_content(request, {"X-No-Bid-Reason": outcome.reason or "no-candidate"})
        body = {**outcome.decision.to_response().to_json(), "impressionId": outcome.impression_id}
        return json_response(200, body, request)

    return router.handler(service="bid", ready=bidder.ready)
