"""bid: POST / with the seed's /bid request; the auction over this replica's campaign snapshot.

The winner is the highest-CPM eligible campaign whose budget accepts the charge (one atomic Lua
script in Redis, `budget.RedisBudgetLedger`); the charge IS the impression: the same script
appends the impression event to the outbox (`shared_layer.outbox`), which this replica's relay
drains to Kafka, and the answer carries its impressionId. 204 when nothing is eligible or every
budget refuses; 400/413 for bad input (nothing charged); 503 when Redis cannot confirm a charge
(serve then answers no fill).
"""

from __future__ import annotations

import logging
import time
import uuid

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared_layer import metrics
from shared_layer.auction import decide
from shared_layer.budget import (
    ChargeResult,
    LedgerNotReady,
    RedisBudgetLedger,
    RefusalMemo,
    utc_now,
)
from shared_layer.budget_recovery import BudgetRecovery, KafkaPipelineProgress
from shared_layer.campaign_snapshot import CampaignSnapshot
from shared_layer.campaign_store import CampaignStore
from shared_layer.db import Database
from shared_layer.errors import AdServerError, UpstreamUnavailable
from shared_layer.http import Request, Router, json_response, no_content
from shared_layer.models import BidRequest, Campaign, parse
from shared_layer.outbox import impression_recorder, start_relay
from shared_layer.settings import env, load_settings, positive, secret, settings_class
from shared_layer.targeting import ELIGIBILITY_CHECKS

MAX_CHARGE_ATTEMPTS = 50  # Redis round trips per request, at most


@settings_class
class BidSettings:
    redis_url: str = env("REDIS_URL")
    database_url: str = env("DATABASE_URL")
    kafka_brokers: str = env("KAFKA_BROKERS")
    postgres_password: str | None = secret("postgres-password", default=None)
    snapshot_ttl_s: float = env("CAMPAIGN_SNAPSHOT_TTL_S", default=300.0, check=positive)
    ledger_timeout_s: float = env("BID_REDIS_TIMEOUT_S", default=0.25, check=positive)
    pipeline_group: str = env("EVENTS_CONSUMER_GROUP", default="ads-kafka-connector")


SETTINGS = load_settings(BidSettings)
CLOCK = utc_now  # the UTC day boundary of the daily budgets; tests replace it
# A charge is not idempotent: no automatic retries on the ledger's connection (see budget.py).
LEDGER = RedisBudgetLedger(
    redis.Redis.from_url(
        SETTINGS.redis_url,
        socket_timeout=SETTINGS.ledger_timeout_s,
        socket_connect_timeout=SETTINGS.ledger_timeout_s,
        retry=Retry(NoBackoff(), 0),
    ),
    clock=lambda: CLOCK(),
)
DATABASE = Database.from_url(SETTINGS.database_url, password=SETTINGS.postgres_password)
REDIS = redis.Redis.from_url(SETTINGS.redis_url, socket_timeout=5, socket_connect_timeout=2)
SNAPSHOT = CampaignSnapshot(REDIS, CampaignStore(DATABASE), ttl_s=SETTINGS.snapshot_ttl_s)
# After Redis lost its data, spend is rebuilt from PostgreSQL before anything is charged again.
RECOVERY = BudgetRecovery(
    REDIS,
    DATABASE,
    KafkaPipelineProgress(SETTINGS.kafka_brokers, SETTINGS.pipeline_group),
    clock=lambda: CLOCK(),
)
RECOVERY.ensure()
try:
    SNAPSHOT.load()
except AdServerError as exc:  # not ready yet; the refresher keeps trying
    logging.getLogger("bid").warning("campaign snapshot not loaded at start: %s", exc)
SNAPSHOT.start()
RELAY = start_relay(SETTINGS.redis_url, SETTINGS.kafka_brokers)

REFUSED = RefusalMemo(clock=lambda: CLOCK())  # campaigns whose budget refused today
CHECKS = (*ELIGIBILITY_CHECKS, REFUSED.eligible)
router = Router()


def ready() -> bool:
    return SNAPSHOT.ready()


@router.route("POST", "/")
def bid(request: Request) -> dict:
    try:
        bid_request = parse(BidRequest, request.body)
        if not SNAPSHOT.ready():
            raise UpstreamUnavailable("the campaign snapshot is not loaded yet")
    except AdServerError as exc:
        metrics.BID_DECISIONS.labels("invalid" if exc.status < 500 else "error").inc()
        raise
    refused: list[str] = []

    def on_refused(campaign: Campaign, charge: ChargeResult) -> None:
        refused.append(campaign.id)
        REFUSED.remember(campaign, charge)

    impression_id = str(uuid.uuid4())  # one per request: at most one candidate is charged
    record = impression_recorder(bid_request, impression_id, at=CLOCK())

    started = time.perf_counter()
    try:
        decision = decide(
            SNAPSHOT.index,
            bid_request,
            LEDGER,
            checks=CHECKS,
            on_refused=on_refused,
            max_attempts=MAX_CHARGE_ATTEMPTS,
            record=record,
        )
    except AdServerError as exc:
        metrics.BID_DECISIONS.labels("error").inc()
        if isinstance(exc, LedgerNotReady):
            RECOVERY.ensure()
        raise
    finally:
        metrics.BID_DECISION_SECONDS.observe(time.perf_counter() - started)
    if decision is None:
        metrics.BID_DECISIONS.labels("budget-exhausted" if refused else "no-candidate").inc()
        return no_content(request)
    metrics.BID_DECISIONS.labels("bid").inc()
    body = {**decision.to_response().to_json(), "impressionId": impression_id}
    return json_response(200, body, request)


handle = router.handler(service="bid", access_log=False)
