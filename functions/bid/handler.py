"""bid: POST / with the specification's /bid request; the auction over this replica's campaign
snapshot.

The winner is the highest-CPM eligible campaign whose budget accepts the charge (one atomic Lua
script in Redis, `bidding.store.budget_ledger`); the charge IS the impression: the same script
appends the impression event to the outbox (`kernel.storage.outbox`), which this replica's relay
(`pipeline.store.relay`) drains to Kafka, and the answer carries its impressionId. 204 when nothing
is eligible, every budget, pacing curve or frequency cap refuses, or every bid is below the
placement's floor (the ``X-No-Bid-Reason`` header says which); 400/413 for bad input (nothing
charged); 503 when Redis cannot confirm a charge (serve then answers no fill).
"""

from __future__ import annotations

import time

from shared_layer.composition.bidder import BidderSettings, start_bidder
from shared_layer.kernel import metrics
from shared_layer.kernel.clock import utc_now
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import AdServerError
from shared_layer.kernel.http import Request, Router, json_response, no_content
from shared_layer.kernel.models import BidRequest, parse
from shared_layer.kernel.settings import load_settings

SETTINGS = load_settings(BidderSettings)
CLOCK = utc_now  # the day boundaries of the daily budgets and pacing; tests replace it
RUNTIME = start_bidder(SETTINGS, clock=lambda: CLOCK())
LEDGER, SNAPSHOT, RELAY, BIDDER = RUNTIME.ledger, RUNTIME.snapshot, RUNTIME.relay, RUNTIME.bidder
router = Router()


def ready() -> bool:
    return BIDDER.ready()


@router.route("POST", "/")
def bid(request: Request) -> dict:
    try:
        bid_request = parse(BidRequest, request.body)
    except AdServerError:
        metrics.BID_DECISIONS.labels("invalid").inc()
        raise
    started = time.perf_counter()
    try:
        outcome = BIDDER.bid(bid_request, Correlation(request.request_id, request.traceparent))
    except AdServerError as exc:
        metrics.BID_DECISIONS.labels("invalid" if exc.status < 500 else "error").inc()
        raise
    finally:
        metrics.BID_DECISION_SECONDS.observe(time.perf_counter() - started)
    metrics.BID_DECISIONS.labels(outcome.label).inc()
    if outcome.decision is None:
        return no_content(request, {"X-No-Bid-Reason": outcome.reason or "no-candidate"})
    metrics.BID_SPEND_MICROS.inc(outcome.decision.price.charge_micros)
    body = {**outcome.decision.to_response().to_json(), "impressionId": outcome.impression_id}
    return json_response(200, body, request)


handle = router.handler(service="bid")
