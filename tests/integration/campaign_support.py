"""Shared helpers for the campaign integration tests: the test platform's PostgreSQL and Redis.

PostgreSQL is shared by the whole suite, so every test makes its own ids and advertiser. Redis
tests use database CAMPAIGN_TEST_REDIS_DB, not the platform's database 0, so that emptying the
cache here never disturbs the deployed functions (pub/sub channels are server-wide, so the bid
replicas may see our notifications: they only make them reload).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import redis

from localplatform.components.postgres import password
from localplatform.profile import PROFILES
from shared_layer.campaigns.domain.requests import CampaignRequest
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.storage.postgres import Database
from shared_layer.pipeline.domain.events import AdEvent

CAMPAIGN_TEST_REDIS_DB = 7
# Every campaign made here targets a placement no other test asks for, and is ended at teardown
# (`end_test_campaigns`): the bid function's tests share this database.
TEST_PLACEMENT = f"campaign-it-{uuid.uuid4().hex[:12]}"
_ADVERTISERS: set[str] = set()


def database() -> Database:
    profile = PROFILES["test"]
    url = os.environ.get("DATABASE_URL", profile.host_env()["DATABASE_URL"])
    return Database.from_url(url, password=password(profile), size=4)


def redis_client(db: int = CAMPAIGN_TEST_REDIS_DB, timeout_s: float = 5) -> redis.Redis:
    """The test platform's Redis, database `db` (each module that writes keeps to its own)."""
    url = os.environ.get("REDIS_URL", PROFILES["test"].host_env()["REDIS_URL"])
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return redis.Redis.from_url(f"{base}/{db}", socket_timeout=timeout_s)


def flushed_redis() -> Iterator[redis.Redis]:
    """`redis_client()` emptied first, closed afterwards (a fixture's body: `yield from`)."""
    connection = redis_client()
    connection.flushdb()
    yield connection
    connection.close()


def new_id() -> str:
    return str(uuid.uuid4())


def campaign_fields(advertiser_id: str, **overrides: Any) -> dict[str, Any]:
    """A campaign as a client sends it (JSON-ready), targeting the test placement."""
    fields: dict[str, Any] = {
        "advertiserId": advertiser_id,
        "name": "Integration campaign",
        "cpmBid": 2,
        "dailyBudget": 100,
        "targetingRules": [
            {"ruleType": "country", "ruleValue": "US"},
            {"ruleType": "placement", "ruleValue": TEST_PLACEMENT},
        ],
        "ads": [
            {
                "title": "An ad",
                "imageUrl": "https://cdn.example.com/a.png",
                "redirectUrl": "https://example.com/offer",
            }
        ],
    }
    fields.update(overrides)
    _ADVERTISERS.add(advertiser_id)
    return fields


def campaign_request(advertiser_id: str, **overrides: Any) -> CampaignRequest:
    return CampaignRequest.model_validate(campaign_fields(advertiser_id, **overrides))


def campaign(advertiser_id: str, **overrides: Any) -> Campaign:
    return campaign_request(advertiser_id, **overrides).to_campaign()


def wait_until(predicate: Callable[[], Any], timeout_s: float, interval_s: float = 0.005) -> float:
    """Seconds until `predicate()` was true; raises AssertionError after `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval_s)
    raise AssertionError(f"not true within {timeout_s}s")


def end_test_campaigns(db: Database) -> None:
    """End every campaign the tests of this process made (they stay, as ended, for the record)."""
    if _ADVERTISERS:
        db.run(
            "UPDATE campaigns SET status = 'ended' WHERE advertiser_id = ANY(CAST(:a AS uuid[]))",
            a=sorted(_ADVERTISERS),
        )


def unknown_campaign_impression() -> AdEvent:
    """An impression of a campaign and an ad that do not exist (set aside when counted)."""
    return AdEvent.impression(
        impression_id=new_id(),
        campaign_id=new_id(),
        ad_id=new_id(),
        user_id="u",
        placement_id="p",
        bid_cpm_micros=1_000_000,
        price_micros=1_000,
    )
