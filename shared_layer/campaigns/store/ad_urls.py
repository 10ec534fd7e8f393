"""Where an ad sends its clicks: the campaign cache entry in Redis (``campaign::{campaignId}``),
else PostgreSQL's ``ads`` row.

PostgreSQL also answers for ads that were removed from their campaign, and for paused or ended
campaigns: an ad that was shown may still be clicked, and that click must land and count.

Example::

    urls = RegisteredAdUrls(CampaignCache(redis_client), database)
    urls.redirect_url(campaign_id, ad_id)    # None: no such ad in that campaign
"""

from __future__ import annotations

from shared_layer.campaigns.domain.requests import is_uuid
from shared_layer.campaigns.store.cache import CampaignCache
from shared_layer.kernel.errors import AdServerError
from shared_layer.kernel.storage.postgres import Database

__all__ = ["RegisteredAdUrls"]


class RegisteredAdUrls:
    """The campaign cache first (one Redis read), PostgreSQL's ads table otherwise."""

    def __init__(self, cache: CampaignCache, db: Database) -> None:
        self._cache = cache
        self._db = db

    def redirect_url(self, campaign_id: str, ad_id: str) -> str | None:
        try:
            campaign = self._cache.read([campaign_id])[campaign_id]
        except AdServerError:  # the cache is down: PostgreSQL still knows
            campaign = None
        if campaign is not None:
            for ad in campaign.ads:
                if ad.id == ad_id:
                    return ad.redirect_url
        return self._from_database(campaign_id, ad_id)

    def _from_database(self, campaign_id: str, ad_id: str) -> str | None:
        # Any status, removed ads included: what was shown may still be clicked.
        if not (is_uuid(campaign_id) and is_uuid(ad_id)):
            return None
        rows = self._db.run(
            "SELECT redirect_url FROM ads "
            "WHERE id = CAST(:ad AS uuid) AND campaign_id = CAST(:campaign AS uuid)",
            ad=ad_id,
            campaign=campaign_id,
        )
        return str(rows[0][0]) if rows else None
