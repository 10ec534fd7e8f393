"""openrtb: an OpenRTB 2.6 bidder. POST / BidRequest -> BidResponse or 204; GET /win, /bill.

Thin on purpose: decoding and the mapping to our targeting live in
shared_layer.openrtb.domain.openrtb, the auction (the same as bid's, charged by the same budget
script) and the notices in shared_layer.openrtb.service.exchange. The charge happens on the bid; win
(nurl) and billing (burl) notices are signed, recorded once per bid and move no money
(docs/decisions.md). A malformed BidRequest is a 400 before anything is charged; a forged notice a
400, an expired one a 410.
"""

from __future__ import annotations

import time

from shared_layer.clicks.domain.clicktoken import MIN_KEY_BYTES
from shared_layer.composition.bidder import BidderSettings, start_bidder
from shared_layer.kernel import metrics
from shared_layer.kernel.clock import utc_now
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import AdServerError
from shared_layer.kernel.http import Request, Router, json_response, no_content
from shared_layer.kernel.settings import env, load_settings, min_length, positive, secret
from shared_layer.kernel.settings import settings_class as settings
from shared_layer.openrtb.domain.openrtb import MAX_OPENRTB_REQUEST_BYTES
from shared_layer.openrtb.service.exchange import NoticeConfig, OpenRtbBidder
from shared_layer.openrtb.store.notices import RedisNoticeLog


@settings
class OpenRtbSettings(BidderSettings):
    gateway_url: str = env("GATEWAY_URL")
    click_base_url: str | None = env("CLICK_BASE_URL", default=None)
    notice_base_url: str | None = env("OPENRTB_NOTICE_BASE_URL", default=None)
    notice_ttl_s: int = env("OPENRTB_NOTICE_TTL_S", default=7 * 86_400, check=positive)
    click_signing_key: bytes = secret("click-signing-key", check=min_length(MIN_KEY_BYTES))
    notice_key: bytes = secret("openrtb-notice-key", check=min_length(MIN_KEY_BYTES))


SETTINGS = load_settings(OpenRtbSettings)
CLOCK = utc_now  # tests replace it
RUNTIME = start_bidder(SETTINGS, clock=lambda: CLOCK())
_gateway = SETTINGS.gateway_url.rstrip("/")
OPENRTB = OpenRtbBidder(
    RUNTIME.bidder,
    RedisNoticeLog(RUNTIME.redis),
    NoticeConfig(
        notice_base_url=SETTINGS.notice_base_url or f"{_gateway}/function/openrtb",
        notice_key=SETTINGS.notice_key,
        click_base_url=SETTINGS.click_base_url or f"{_gateway}/function/click",
        click_key=SETTINGS.click_signing_key,
        notice_ttl_s=SETTINGS.notice_ttl_s,
    ),
    clock=lambda: CLOCK(),
)
router = Router()
_VERSION = {"x-openrtb-version": "2.6"}


def ready() -> bool:
    return RUNTIME.bidder.ready()


@router.route("POST", "/")
def bid(request: Request) -> dict:
    started = time.perf_counter()
    try:
        outcome = OPENRTB.bid(
            request.body, Correlation(request.request_id, request.traceparent), started=started
        )
    except AdServerError as exc:
        metrics.OPENRTB_REQUESTS.labels("invalid" if exc.status < 500 else "error").inc()
        raise
    finally:
        metrics.OPENRTB_SECONDS.observe(time.perf_counter() - started)
    request.annotate(imps=outcome.slots, bids=outcome.bids)
    if outcome.body is None:
        metrics.OPENRTB_REQUESTS.labels("no-bid").inc()
        return no_content(request, _VERSION)
    metrics.OPENRTB_REQUESTS.labels("bid").inc()
    return json_response(200, outcome.body, request, _VERSION)


@router.route("GET", "/win")
@router.route("GET", "/bill")
def notice(request: Request) -> dict:
    kind = request.path.strip("/")
    try:
        first = OPENRTB.notice(kind, request.query)
    except AdServerError as exc:
        metrics.OPENRTB_NOTICES.labels(kind, "refused" if exc.status < 500 else "error").inc()
        raise
    metrics.OPENRTB_NOTICES.labels(kind, "recorded" if first else "repeat").inc()
    return no_content(request, {"X-Notice-Recorded": "true" if first else "false"})


handle = router.handler(service="openrtb", max_body_bytes=MAX_OPENRTB_REQUEST_BYTES)
