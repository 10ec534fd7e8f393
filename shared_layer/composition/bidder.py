"""What a replica that runs auctions starts with: the ledger, the snapshot, recovery, the relay.

`bid` and `openrtb` run the same auction against the same budgets (one ledger in Redis, one
event outbox), so they are assembled here, once, from the same settings. A function's settings
class extends `BidderSettings` with its own fields.

Example::

    def build(settings: BidSettings | None = None, *, clock: Clock = utc_now) -> Handler:
        runtime = start_bidder(settings or load_settings(BidSettings), clock=clock)
        ...                                        # routes over runtime.bidder
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared_layer.bidding.service.bidder import Bidder
from shared_layer.bidding.service.budget_recovery import BudgetRecovery
from shared_layer.bidding.service.settlement import Settlement
from shared_layer.bidding.store.budget_ledger import RedisBudgetLedger
from shared_layer.bidding.store.reservations import RedisReservations
from shared_layer.campaigns.service.snapshot import CampaignSnapshot
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.campaigns.store.floors import PlacementFloorStore
from shared_layer.kernel.background import periodic
from shared_layer.kernel.clock import Clock
from shared_layer.kernel.errors import AdServerError
from shared_layer.kernel.log import get_logger
from shared_layer.kernel.settings import env, positive, secret, settings_class
from shared_layer.kernel.storage.redis_connection import connect, key_layout
from shared_layer.kernel.storage.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.store.progress import KafkaPipelineProgress
from shared_layer.pipeline.store.relay import start_relay

__all__ = ["BidderRuntime", "BidderSettings", "start_bidder", "start_settlement"]


@settings_class
class BidderSettings(PostgresSettings, RedisSettings, KafkaSettings):
    snapshot_ttl_s: float = env("CAMPAIGN_SNAPSHOT_TTL_S", default=300.0, check=positive)
    ledger_timeout_s: float = env("BID_REDIS_TIMEOUT_S", default=0.25, check=positive)
    pipeline_group: str = env("EVENTS_CONSUMER_GROUP", default="ads-kafka-connector")
    # The decision explainer answers only requests with this bearer token (none: never).
    admin_token: bytes | None = secret("campaigns-admin-token", default=None)
    # Our TCF v2 vendor id (kernel.privacy): without one no GDPR consent names us.
    tcf_vendor_id: int | None = env("TCF_VENDOR_ID", default=None)


@dataclass(frozen=True)
class BidderRuntime:
    bidder: Bidder
    ledger: RedisBudgetLedger
    snapshot: CampaignSnapshot
    recovery: BudgetRecovery
    relay: Any
    redis: Any  # a client with retries, for anything but the charge
    shards: Shards = SINGLE


def start_bidder(settings: BidderSettings, *, clock: Clock) -> BidderRuntime:
    """Connect, rebuild the ledger if Redis lost it, load the snapshot, start the relay."""
    # A charge is not idempotent: no automatic retries on the ledger's connection.
    shards = key_layout(settings.redis_url)
    ledger = RedisBudgetLedger(
        connect(settings.redis_url, timeout_s=settings.ledger_timeout_s, retries=0),
        clock=clock,
        shards=shards,
    )
    database = settings.database()
    redis_client = connect(settings.redis_url, timeout_s=5, connect_timeout_s=2)
    snapshot = CampaignSnapshot(
        redis_client,
        CampaignStore(database),
        ttl_s=settings.snapshot_ttl_s,
        floor_source=PlacementFloorStore(database),
    )
    # After Redis lost its data, spend is rebuilt from PostgreSQL before anything is charged.
    recovery = BudgetRecovery(
        redis_client,
        database,
        KafkaPipelineProgress(settings.kafka_brokers, settings.pipeline_group),
        clock=clock,
        shards=shards,
    )
    recovery.ensure()
    try:
        snapshot.load()
    except AdServerError as exc:  # not ready yet; the refresher keeps trying
        get_logger("bidder").warning("campaign snapshot not loaded at start: %s", exc)
    snapshot.start()
    relay = start_relay(settings.redis_url, settings.kafka_brokers)
    bidder = Bidder(snapshot, ledger, recovery, clock=clock)
    return BidderRuntime(bidder, ledger, snapshot, recovery, relay, redis_client, shards)


def start_settlement(runtime: BidderRuntime, *, clock: Clock, sweep_every_s: float) -> Settlement:
    """The settlement of exchange bids, and its sweep of ended windows every `sweep_every_s`.

    Its script is exactly once and idempotent, so its client may retry (unlike the charge's),
    and every replica sweeps: a replica killed mid-sweep leaves nothing half-done.
    """
    settlement = Settlement(RedisReservations(runtime.redis, shards=runtime.shards), clock=clock)

    def sweep() -> float:
        settlement.sweep()
        return sweep_every_s

    periodic(
        sweep,
        name="reservation-sweep",
        logger=get_logger("bidder"),
        failure="reservation sweep failed; retrying",
        retry_s=sweep_every_s,
    )
    return settlement
