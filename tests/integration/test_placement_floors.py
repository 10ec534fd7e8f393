"""Placement floors and the campaigns' pacing fields against the test platform's PostgreSQL and
Redis: stored exactly, announced to every bid replica's snapshot within a second, and the
campaign view shows the live spend from the budget ledger."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import redis

from shared_layer.bidding.store.budget_ledger import RedisBudgetLedger, daily_spent_key
from shared_layer.campaigns.service.admin import CampaignWriteThrough
from shared_layer.campaigns.service.snapshot import CampaignSnapshot
from shared_layer.campaigns.store.cache import CampaignCache
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.campaigns.store.floors import PlacementFloorStore
from shared_layer.kernel.models import PlacementFloor
from shared_layer.kernel.storage.postgres import Database

from .campaign_support import campaign_request, flushed_redis, new_id, wait_until


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    yield from flushed_redis()


@pytest.fixture
def admin(db: Database, client: redis.Redis) -> CampaignWriteThrough:
    return CampaignWriteThrough(
        CampaignStore(db),
        CampaignCache(client),
        ledger=RedisBudgetLedger(client),
        floors=PlacementFloorStore(db),
    )


@pytest.fixture
def placement(db: Database) -> Iterator[str]:
    placement_id = f"floor-test-{new_id()[:8]}"
    yield placement_id
    PlacementFloorStore(db).delete(placement_id)


def test_a_floor_is_stored_exactly_and_reaches_the_snapshot_within_a_second(
    admin: CampaignWriteThrough, db: Database, client: redis.Redis, placement: str
) -> None:
    snapshot = CampaignSnapshot(
        client, CampaignStore(db), poll_interval_s=0.25, floor_source=PlacementFloorStore(db)
    )
    snapshot.load()
    snapshot.start()
    try:
        floor = PlacementFloor(
            placement_id=placement, floor_cpm_micros=1_250_100, clearing="second-price"
        )
        body = admin.put_floor(floor)
        assert (body["floorCpm"], body["clearing"]) == (1.2501, "second-price")
        wait_until(lambda: snapshot.floors.get(placement) == floor, timeout_s=1.0)
        assert admin.read_floor(placement)["placementId"] == placement
        assert placement in {item["placementId"] for item in admin.list_floors()}
        admin.delete_floor(placement)
        wait_until(lambda: placement not in snapshot.floors, timeout_s=1.0)
    finally:
        snapshot.stop()


def test_pacing_fields_round_trip_and_the_view_shows_todays_spend(
    admin: CampaignWriteThrough, client: redis.Redis
) -> None:
    request = campaign_request(
        new_id(),
        pacing="even",
        timeZone="Asia/Tokyo",
        frequencyCap={"impressions": 3, "windowSeconds": 86400},
    )
    record = admin.create(request)
    stored = admin.store.require(record.campaign.id).campaign
    assert (stored.pacing, stored.time_zone) == ("even", "Asia/Tokyo")
    assert stored.frequency_cap is not None and stored.frequency_cap.impressions == 3
    day = datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo")).date()
    client.set(daily_spent_key(stored.id, day), 12_340_000)
    view = admin.view(admin.store.require(stored.id))
    assert view["spentToday"] == 12.34
    assert 0 <= view["expectedSpendNow"] <= 100
    assert view["frequencyCap"] == {"impressions": 3, "windowSeconds": 86400}
    replaced = admin.replace(stored.id, campaign_request(stored.advertiser_id))
    assert (replaced.campaign.pacing, replaced.campaign.frequency_cap) == ("asap", None)
