"""openrtb: an OpenRTB 2.6 bidder. POST / BidRequest -> BidResponse or 204; GET /win /bill /loss.

Thin on purpose: decoding and mapping in shared_layer.openrtb.domain.openrtb; the reserving
auction and the notices that settle or release in shared_layer.openrtb.service.exchange.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared_layer.clicks.domain.clicktoken import MIN_KEY_BYTES
from shared_layer.composition.bidder import BidderSettings, start_bidder, start_settlement
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import AdServerError
from shared_layer.kernel.http import Handler, Request, Router, json_response, no_content
from shared_layer.kernel.settings import env, load_settings, min_length, positive, secret
from shared_layer.kernel.settings import settings_class as settings
from shared_layer.openrtb import metrics
from shared_layer.openrtb.domain.openrtb import MAX_OPENRTB_REQUEST_BYTES
from shared_layer.openrtb.service.exchange import NoticeConfig, OpenRtbBidder
from shared_layer.openrtb.service.exchange import public_notice_base_url as public_base
from shared_layer.openrtb.store.notices import RedisNoticeLog


@settings
class OpenRtbSettings(BidderSettings):
    gateway_url: str = env("GATEWAY_URL")
    click_base_url: str | None = env("CLICK_BASE_URL", default=None)
    notice_base_url: str | None = env("OPENRTB_NOTICE_BASE_URL", default=None)
    notice_ttl_s: int = env("OPENRTB_NOTICE_TTL_S", default=7 * 86_400, check=positive)
    window_s: int = env("OPENRTB_RESERVATION_WINDOW_S", default=300, check=positive)
    click_signing_key: bytes = secret("click-signing-key", check=min_length(MIN_KEY_BYTES))
    notice_key: bytes = secret("openrtb-notice-key", check=min_length(MIN_KEY_BYTES))


_VERSION = {"x-openrtb-version": "2.6"}


def build(settings: OpenRtbSettings | None = None, *, clock: Clock = utc_now) -> Handler:
    """Connect and start this replica's bidder, and sign notices and click links with its keys."""
    settings = settings or load_settings(OpenRtbSettings)
    runtime = start_bidder(settings, clock=clock)
    gateway = settings.gateway_url.rstrip("/")
    click_base_url = settings.click_base_url or f"{gateway}/function/click"
    notices = NoticeConfig(
        notice_base_url=settings.notice_base_url or public_base(click_base_url),
        notice_key=settings.notice_key,
        click_base_url=click_base_url,
        click_key=settings.click_signing_key,
        notice_ttl_s=settings.notice_ttl_s,
        window_s=settings.window_s,
        vendor_id=settings.tcf_vendor_id,
    )
    settlement = start_settlement(runtime, clock=clock, sweep_every_s=min(5, settings.window_s))
    log = RedisNoticeLog(runtime.redis)
    exchange = OpenRtbBidder(runtime.bidder, log, notices, settlement, clock=clock)
    return serve_openrtb(exchange, ready=runtime.bidder.ready)


def serve_openrtb(exchange: OpenRtbBidder, ready: Callable[[], bool]) -> Handler:
    """POST / and the win and billing notices over `exchange`."""
    router = Router()

    @router.route("POST", "/")
    def bid(request: Request) -> dict:
        started = request.started  # tmax counts from the request's arrival
        correlation = Correlation(request.request_id, request.traceparent)
        encoding = request.header("content-encoding")
        try:
            outcome = exchange.bid(request.body, correlation, started=started, encoding=encoding)
        except AdServerError as exc:
            metrics.OPENRTB_REQUESTS.labels("invalid" if exc.status < 500 else "error").inc()
            raise
        finally:
            metrics.OPENRTB_SECONDS.observe(time.perf_counter() - started)
        request.annotate(imps=outcome.slots, bids=outcome.bids)
        if outcome.bids == 0:
            metrics.OPENRTB_REQUESTS.labels("no-bid").inc()
            if outcome.body is None:
                return no_content(request, _VERSION)
        else:
            metrics.OPENRTB_REQUESTS.labels("bid").inc()
        return json_response(200, outcome.body, request, _VERSION)

    @router.route("GET", "/win")
    @router.route("GET", "/bill")
    @router.route("GET", "/loss")
    def notice(request: Request) -> dict:
        kind = request.path.strip("/")
        try:
            first = exchange.notice(kind, request.query)
        except AdServerError as exc:
            metrics.OPENRTB_NOTICES.labels(kind, "refused" if exc.status < 500 else "error").inc()
            raise
        metrics.OPENRTB_NOTICES.labels(kind, "recorded" if first else "repeat").inc()
        return no_content(request, {"X-Notice-Recorded": "true" if first else "false"})

    return router.handler(service="openrtb", max_body_bytes=MAX_OPENRTB_REQUEST_BYTES, ready=ready)
