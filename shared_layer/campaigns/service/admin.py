"""The admin API's writes: PostgreSQL commits first, then the Redis cache and every bid replica.

`CampaignWriteThrough` is what the campaigns function writes through: the store
(`campaigns.store.campaigns`, the record) and then the cache (`campaigns.store.cache`: entries, the
active set, the version and the change notification that every bid replica's snapshot follows).
Placement floors (`campaigns.store.floors`) go the same way: PostgreSQL, then a version bump
with a `*` notification, on which every bid replica reloads its snapshot and floors.
`view` and `view_many` add each campaign's live spend and pacing curve
(`bidding.store.budget_ledger`).

Example::

    admin = CampaignWriteThrough(CampaignStore(database), CampaignCache(redis_client))
    record = admin.create(parse_campaign(body))     # stored, cached, announced
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from shared_layer.bidding.domain.pacing import campaign_day, expected_spend
from shared_layer.campaigns.domain.requests import (
    BulkRequest,
    CampaignRecord,
    CampaignRequest,
    LiveSpend,
    SpendReader,
    campaign_json,
    floor_json,
)
from shared_layer.campaigns.metrics import CACHE_WRITE_FAILURES
from shared_layer.campaigns.store.cache import CampaignCache
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.campaigns.store.floors import PlacementFloorStore
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.errors import AdServerError, NotFound, ValidationFailed
from shared_layer.kernel.log import get_logger
from shared_layer.kernel.models import Campaign, PlacementFloor

__all__ = ["CampaignWriteThrough"]

_LOG = get_logger("campaigns")


class CampaignWriteThrough:
    """The admin API's writes: PostgreSQL commits first, then the cache and the bid replicas.

    Reads go straight to the store (an admin wants the record, not a cache). If Redis fails
    after the commit, the write is still done (PostgreSQL is the record): the failure is logged
    and counted, and every bid replica's periodic full reload from PostgreSQL repairs the cache.
    """

    def __init__(
        self,
        store: CampaignStore,
        cache: CampaignCache,
        *,
        ledger: SpendReader | None = None,
        floors: PlacementFloorStore | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.cache = cache
        self._ledger = ledger
        self._floors = floors
        self._clock = clock

    # --- reads with live spend ---

    def view(self, record: CampaignRecord) -> dict[str, Any]:
        """The campaign's API view with ``spentToday`` and ``expectedSpendNow``."""
        return self.view_many([record])[0]

    def view_many(self, records: Sequence[CampaignRecord]) -> list[dict[str, Any]]:
        """API views of several campaigns; their spend is read in one round trip (null when
        Redis cannot be read: the record still answers)."""
        now = self._clock()
        days = [(r.campaign.id, campaign_day(r.campaign, now).day) for r in records]
        try:
            spent = self._ledger.spent_many(days) if self._ledger is not None else None
        except AdServerError as exc:
            _LOG.warning("campaign spend not read from the budget ledger: %s", exc)
            spent = None
        if spent is None:
            return [campaign_json(r) for r in records]
        return [
            campaign_json(r, LiveSpend(daily, expected_spend(r.campaign, now)))
            for r, (daily, _lifetime) in zip(records, spent, strict=True)
        ]

    # --- placement floors ---

    def list_floors(self) -> list[dict[str, Any]]:
        return [floor_json(r.floor, r.updated_at) for r in self._floor_store().all()]

    def read_floor(self, placement_id: str) -> dict[str, Any]:
        record = self._floor_store().get(placement_id)
        if record is None:
            raise NotFound(f"placement {placement_id} has no floor")
        return floor_json(record.floor, record.updated_at)

    def put_floor(self, floor: PlacementFloor) -> dict[str, Any]:
        record = self._floor_store().put(floor)
        self._announce(self.cache.announce)
        return floor_json(record.floor, record.updated_at)

    def delete_floor(self, placement_id: str) -> None:
        if not self._floor_store().delete(placement_id):
            raise NotFound(f"placement {placement_id} has no floor")
        self._announce(self.cache.announce)

    def _floor_store(self) -> PlacementFloorStore:
        if self._floors is None:
            raise NotFound("placement floors are not managed here")
        return self._floors

    def create(self, request: CampaignRequest) -> CampaignRecord:
        record = self.store.create(request.to_campaign())
        self._notify([record.campaign])
        return record

    def replace(self, campaign_id: str, request: CampaignRequest) -> CampaignRecord:
        if request.id is not None and request.id.lower() != campaign_id.lower():
            raise ValidationFailed("id: does not match the id in the path", ["id"])
        campaign = request.to_campaign(campaign_id=campaign_id)
        record = self.store.replace(campaign, keep_status=request.status is None)
        self._notify([record.campaign])
        return record

    def set_status(self, campaign_id: str, status: Literal["active", "paused"]) -> CampaignRecord:
        record = self.store.set_status(campaign_id, status)
        self._notify([record.campaign])
        return record

    def delete(self, campaign_id: str) -> CampaignRecord:
        record = self.store.delete(campaign_id)
        self._notify([record.campaign])
        return record

    def bulk_import(self, bulk: BulkRequest) -> list[Campaign]:
        campaigns = [request.to_campaign() for request in bulk.campaigns]
        self.store.bulk_import(campaigns)
        self._notify(campaigns, bulk=True)
        return campaigns

    def _notify(self, campaigns: Sequence[Campaign], *, bulk: bool = False) -> None:
        self._announce(lambda: self.cache.publish(campaigns, bulk=bulk))

    def _announce(self, write: Callable[[], object]) -> None:
        try:
            write()
        except AdServerError as exc:
            CACHE_WRITE_FAILURES.inc()
            _LOG.warning(
                "campaign change saved, but the cache update failed (%s); bid replicas pick it "
                "up at their next full reload",
                exc,
            )
