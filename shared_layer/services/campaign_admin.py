"""The admin API's writes: PostgreSQL commits first, then the Redis cache and every bid replica.

`CampaignWriteThrough` is what the campaigns function writes through: the store
(`stores.campaign_store`, the record) and then the cache (`stores.campaign_cache`: entries, the
active set, the version and the change notification that every bid replica's snapshot follows).

Example::

    admin = CampaignWriteThrough(CampaignStore(database), CampaignCache(redis_client))
    record = admin.create(parse_campaign(body))     # stored, cached, announced
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from prometheus_client import Counter

from shared_layer.core.campaign_requests import BulkRequest, CampaignRecord, CampaignRequest
from shared_layer.core.errors import AdServerError, ValidationFailed
from shared_layer.core.models import Campaign
from shared_layer.stores.campaign_cache import CampaignCache
from shared_layer.stores.campaign_store import CampaignStore

__all__ = ["CampaignWriteThrough"]

_LOG = logging.getLogger(__name__)
_CACHE_WRITE_FAILURES = Counter(
    "campaign_cache_write_failures_total",
    "Campaign writes committed to PostgreSQL whose Redis step failed (healed by the TTL reload)",
)


class CampaignWriteThrough:
    """The admin API's writes: PostgreSQL commits first, then the cache and the bid replicas.

    Reads go straight to the store (an admin wants the record, not a cache). If Redis fails
    after the commit, the write is still done (PostgreSQL is the record): the failure is logged
    and counted, and every bid replica's periodic full reload from PostgreSQL repairs the cache.
    """

    def __init__(self, store: CampaignStore, cache: CampaignCache) -> None:
        self.store = store
        self.cache = cache

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
        try:
            self.cache.publish(campaigns, bulk=bulk)
        except AdServerError as exc:
            _CACHE_WRITE_FAILURES.inc()
            _LOG.warning(
                "campaign change saved, but the cache update failed (%s); bid replicas pick it "
                "up at their next full reload",
                exc,
            )
