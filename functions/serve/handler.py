"""serve: GET /?userId&placementId[&countryCode&deviceType&age&interests&gdpr...] -> ad or 204.

Several slots: ``slot=name:placementId[:sizes[:count]]`` (repeated) or a POST body, answered by
slot name (`bidding.service.slots`). Validates (400), asks bid at its own address or through the
gateway with a deadline and a circuit breaker (`bidding.service.bid_client`), signs the click URL;
bid recorded the impression with the charge (`kernel.storage.outbox`). Bid slow, failing or its
circuit open: 204 within the deadline, the reason in ``X-No-Fill-Reason``; never a hang or a 500.
``explain=1`` (or ``X-Explain: 1``) with the admin token is passed on to bid, whose explainer
comes back in ``explain``.
"""

from __future__ import annotations

from shared_layer.bidding.metrics import SERVE_REQUESTS
from shared_layer.bidding.service.bid_client import BidClient, ClickSigner, bid_request_from_query
from shared_layer.bidding.service.slots import read_slots, serve_ad, serve_slots
from shared_layer.clicks.domain.clicktoken import MIN_KEY_BYTES
from shared_layer.kernel.errors import AdServerError
from shared_layer.kernel.http import Handler, Request, Router
from shared_layer.kernel.settings import (
    env,
    load_settings,
    min_length,
    positive,
    secret,
    settings_class,
)


@settings_class
class ServeSettings:
    gateway_url: str = env("GATEWAY_URL")
    # bid's own address (its Service on Kubernetes, the provider's invocation listener on
    # `make up`); unset or empty: through the gateway, as any function may call another.
    bid_url: str = env("BID_URL", default="")
    bid_timeout_ms: int = env("BID_TIMEOUT_MS", default=80, check=positive)
    breaker_failures: int = env("BID_BREAKER_FAILURES", default=5, check=positive)
    breaker_reset_s: float = env("BID_BREAKER_RESET_S", default=3.0, check=positive)
    click_base_url: str | None = env("CLICK_BASE_URL", default=None)
    click_token_ttl_s: int = env("CLICK_TOKEN_TTL_S", default=86_400, check=positive)
    click_signing_key: bytes = secret("click-signing-key", check=min_length(MIN_KEY_BYTES))
    tcf_vendor_id: int | None = env("TCF_VENDOR_ID", default=None)  # kernel.privacy

    @property
    def bid_function_url(self) -> str:
        return self.bid_url or f"{self.gateway_url.rstrip('/')}/function/bid"

    @property
    def click_url(self) -> str:
        return self.click_base_url or f"{self.gateway_url.rstrip('/')}/function/click"


def build(settings: ServeSettings | None = None) -> Handler:
    """A bid client (timeout, circuit breaker) to the bid function, at its own address or
    behind the gateway."""
    settings = settings or load_settings(ServeSettings)
    bids = BidClient(
        settings.bid_function_url,
        timeout_s=settings.bid_timeout_ms / 1000,
        failure_threshold=settings.breaker_failures,
        reset_timeout_s=settings.breaker_reset_s,
    )
    click_url = ClickSigner(
        settings.click_url, settings.click_signing_key, settings.click_token_ttl_s
    )
    router = Router()
    vendor_id = settings.tcf_vendor_id

    @router.route("POST", "/")
    def serve_body(request: Request) -> dict:
        return serve_slots(bids, read_slots(request, vendor_id=vendor_id), request, click_url)

    @router.route("GET", "/")
    def serve(request: Request) -> dict:
        if "slot" in request.query:
            return serve_slots(bids, read_slots(request, vendor_id=vendor_id), request, click_url)
        try:
            bid_request = bid_request_from_query(
                request.query, vendor_id=vendor_id, request_id=request.request_id
            )
        except AdServerError:
            SERVE_REQUESTS.labels("invalid").inc()
            raise
        return serve_ad(bids, bid_request, request, click_url)

    return router.handler(service="serve")
