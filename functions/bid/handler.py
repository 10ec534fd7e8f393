"""bid: POST / with the seed's /bid request; the auction over this replica's campaign snapshot.

The winner is the highest-CPM eligible campaign whose budget accepts the charge (one atomic Lua
script in Redis, `stores.budget_ledger`); the charge IS the impression: the same script appends the
impression event to the outbox (`stores.outbox`), which this replica's relay (`events.outbox_relay`)
drains to Kafka, and the answer carries its impressionId. 204 when nothing is eligible or every
budget refuses; 400/413 for bad input (nothing charged); 503 when Redis cannot confirm a charge
(serve then answers no fill).
"""

from __future__ import annotations

import logging
import time

from shared_layer.core.clock import utc_now
from shared_layer.core.correlation import Correlation
from shared_layer.core.errors import AdServerError
from shared_layer.core.models import BidRequest, parse
from shared_layer.edge import metrics
from shared_layer.edge.http import Request, Router, json_response, no_content
from shared_layer.edge.settings import env, load_settings, positive, secret, settings_class
from shared_layer.events.outbox_relay import start_relay
from shared_layer.events.pipeline_progress import KafkaPipelineProgress
from shared_layer.services.bidding import Bidder
from shared_layer.services.budget_recovery import BudgetRecovery
from shared_layer.services.campaign_snapshot import CampaignSnapshot
from shared_layer.stores.budget_ledger import RedisBudgetLedger
from shared_layer.stores.campaign_store import CampaignStore
from shared_layer.stores.postgres import Database
from shared_layer.stores.redis_connection import connect, key_layout


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
# A charge is not idempotent: no automatic retries on the ledger's connection.
LEDGER_REDIS = connect(SETTINGS.redis_url, timeout_s=SETTINGS.ledger_timeout_s, retries=0)
LEDGER = RedisBudgetLedger(LEDGER_REDIS, lambda: CLOCK(), shards=key_layout(SETTINGS.redis_url))
DATABASE = Database.from_url(SETTINGS.database_url, password=SETTINGS.postgres_password)
REDIS = connect(SETTINGS.redis_url, timeout_s=5, connect_timeout_s=2)
SNAPSHOT = CampaignSnapshot(REDIS, CampaignStore(DATABASE), ttl_s=SETTINGS.snapshot_ttl_s)
# After Redis lost its data, spend is rebuilt from PostgreSQL before anything is charged again.
RECOVERY = BudgetRecovery(
    REDIS,
    DATABASE,
    KafkaPipelineProgress(SETTINGS.kafka_brokers, SETTINGS.pipeline_group),
    clock=lambda: CLOCK(),
    shards=key_layout(SETTINGS.redis_url),
)
RECOVERY.ensure()
try:
    SNAPSHOT.load()
except AdServerError as exc:  # not ready yet; the refresher keeps trying
    logging.getLogger("bid").warning("campaign snapshot not loaded at start: %s", exc)
SNAPSHOT.start()
RELAY = start_relay(SETTINGS.redis_url, SETTINGS.kafka_brokers)
BIDDER = Bidder(SNAPSHOT, LEDGER, RECOVERY, clock=lambda: CLOCK())
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
        return no_content(request)
    metrics.BID_SPEND_MICROS.inc(outcome.decision.price.charge_micros)
    body = {**outcome.decision.to_response().to_json(), "impressionId": outcome.impression_id}
    return json_response(200, body, request)


handle = router.handler(service="bid")
