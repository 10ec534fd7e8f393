"""click: GET /?t=TOKEN -> 302 to the ad's registered URL; POST / (seed JSON + token) -> 204.

Thin on purpose: verification, the registered-URL lookup and the one-click-per-impression record
live in shared_layer.clicks.service.tracker. A forged or tampered token is a 400, an expired one a
410, and neither is counted; a genuine click is counted once per impression (``X-Click-Counted``
says whether this request counted it). Redis unavailable: GET still redirects, uncounted; POST
answers 503. The click event goes to the Redis outbox in the same atomic step as the dedupe key, and
this replica's outbox relay drains it to Kafka's ``clicks`` topic.
"""

from __future__ import annotations

from collections.abc import Callable

from shared_layer.campaigns.store.ad_urls import RegisteredAdUrls
from shared_layer.campaigns.store.cache import CampaignCache
from shared_layer.clicks.domain.clicks import (
    MAX_CLICK_BODY_BYTES,
    ClickResult,
    error_outcome,
    parse_click_request,
    token_from_query,
)
from shared_layer.clicks.domain.clicktoken import MIN_KEY_BYTES
from shared_layer.clicks.metrics import CLICKS
from shared_layer.clicks.service.tracker import ClickTracker
from shared_layer.clicks.store.click_ledger import RedisClickRecorder
from shared_layer.kernel.http import Handler, Request, Router, no_content
from shared_layer.kernel.settings import (
    env,
    load_settings,
    min_length,
    positive,
    secret,
    settings_class,
)
from shared_layer.kernel.storage.redis_connection import connect, key_layout
from shared_layer.kernel.storage.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared_layer.pipeline.store.relay import start_relay


@settings_class
class ClickSettings(PostgresSettings, RedisSettings, KafkaSettings):
    click_signing_key: bytes = secret("click-signing-key", check=min_length(MIN_KEY_BYTES))
    redis_timeout_s: float = env("CLICK_REDIS_TIMEOUT_S", default=0.5, check=positive)


def build(settings: ClickSettings | None = None) -> Handler:
    """Connect to Redis and PostgreSQL and start this replica's outbox relay."""
    settings = settings or load_settings(ClickSettings)
    # Short timeouts and no automatic retries: with Redis away, a user waits a moment, not
    # seconds, before being redirected uncounted.
    redis_client = connect(settings.redis_url, timeout_s=settings.redis_timeout_s, retries=0)
    database = settings.database(size=4)
    tracker = ClickTracker(
        settings.click_signing_key,
        RegisteredAdUrls(CampaignCache(redis_client), database),
        RedisClickRecorder(redis_client, shards=key_layout(settings.redis_url)),
    )
    start_relay(settings.redis_url, settings.kafka_brokers)
    return serve_clicks(tracker)


def _headers(request: Request, result: ClickResult) -> dict[str, str]:
    CLICKS.labels(str(result.outcome)).inc()
    request.annotate(adRequestId=result.claims.request_id, outcome=str(result.outcome))
    return {"X-Click-Counted": "true" if result.counted else "false", "Cache-Control": "no-store"}


def _counted(step: Callable[[], ClickResult]) -> ClickResult:
    """`step`'s result; a failure is counted by its outcome before it propagates."""
    try:
        return step()
    except Exception as exc:
        CLICKS.labels(error_outcome(exc)).inc()
        raise


def serve_clicks(tracker: ClickTracker) -> Handler:
    """GET / (a click link followed) and POST / (a click reported) through `tracker`."""
    router = Router()

    @router.route("GET", "/")
    def follow(request: Request) -> dict:
        result = _counted(lambda: tracker.follow(token_from_query(request.query)))
        headers = {"Location": result.redirect_url, **_headers(request, result)}
        return {**no_content(request, headers), "statusCode": 302}

    @router.route("POST", "/")
    def submit(request: Request) -> dict:
        result = _counted(lambda: tracker.submit(parse_click_request(request.body)))
        return no_content(request, _headers(request, result))

    return router.handler(service="click", max_body_bytes=MAX_CLICK_BODY_BYTES)
