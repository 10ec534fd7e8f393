"""The campaigns function's writer, wired: the one place a campaign feature meets the ledger.

Example::

    admin = campaign_admin(database, redis_client)
"""

from __future__ import annotations

from typing import Any

from shared_layer.bidding.store.budget_ledger import RedisBudgetLedger
from shared_layer.campaigns.service.admin import CampaignWriteThrough
from shared_layer.campaigns.store.cache import CampaignCache
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.campaigns.store.floors import PlacementFloorStore
from shared_layer.kernel.storage.postgres import Database

__all__ = ["campaign_admin"]


def campaign_admin(database: Database, redis_client: Any) -> CampaignWriteThrough:
    """Campaigns and floors in `database`, the cache and the budget ledger (read only here) in
    `redis_client`."""
    return CampaignWriteThrough(
        CampaignStore(database),
        CampaignCache(redis_client),
        ledger=RedisBudgetLedger(redis_client),
        floors=PlacementFloorStore(database),
    )
