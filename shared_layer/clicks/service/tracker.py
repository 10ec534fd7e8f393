"""Clicks: a signed click becomes at most one counted click event and a redirect to the ad's URL.

The use case of the click function, in three steps:

1. **Verify** the token serve put in the click-tracking URL (`clicks.domain.clicktoken.verify`:
signature,
   expiry). A forged, tampered or expired token stops here: nothing is read or written. A POST
   body must also agree with its token (adId, campaignId, userId).
2. **Look up** where the ad sends its clicks (`campaigns.store.ad_urls.RegisteredAdUrls`): the
campaign
   cache entry in Redis (``campaign::{campaignId}``), else PostgreSQL's ``ads`` row. PostgreSQL also
   answers for ads that were removed from their campaign, and for paused or ended campaigns: an ad
   that was shown may still be clicked, and that click must land and count. The ad must belong to
   the token's campaign. The redirect goes to that URL and nowhere else: no request parameter is
   ever used as a destination, so there is no open redirect.
3. **Record** the click (`clicks.store.click_ledger.RedisClickRecorder`): ONE Lua script checks
   ``click::seen::{impressionId}``, appends the click event to the event outbox (the stream
   the relay drains to Kafka, `outbox`) and sets the key with a TTL. Check, append and mark
   are one atomic step, so concurrent repeats count once and nothing is half-written (the
   append comes before the mark: if it fails, nothing was written at all). The key lives as
   long as the token could still be used, plus a margin, so a replay is never counted twice
   in the live counters; the event id (`events.click_event_id`) makes a second copy harmless
   in PostgreSQL anyway.

Redis unavailable: a GET still redirects the user (they reach the advertiser; the click is not
counted, reported as ``X-Click-Counted: false``, logged and counted in
``click_requests_total{outcome="unrecorded"}``). A POST is an API call: it answers 503, and the
caller may retry safely (the dedupe key makes a retry count once).

Example::

    tracker = ClickTracker(key, RegisteredAdUrls(CampaignCache(r), db), RedisClickRecorder(r))
    result = tracker.follow(token_from_query(request.query))   # GET: 302 to result.redirect_url
    result = tracker.submit(parse_click_request(request.body))  # POST: 204
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from shared_layer.clicks.domain.clicks import (
    ClickOutcome,
    ClickRecorder,
    ClickRequest,
    ClickResult,
    RedirectDirectory,
    check_agreement,
    click_event,
    dedupe_ttl_s,
    location_header,
)
from shared_layer.clicks.domain.clicktoken import ClickClaims, verify
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import NotFound, UpstreamFailed, UpstreamUnavailable
from shared_layer.kernel.log import get_logger

__all__ = ["ClickTracker"]

_LOGGER = get_logger("clicks")


class ClickTracker:
    """Verify, look up, record: GET (`follow`) and POST (`submit`) differ only on Redis failure."""

    def __init__(
        self,
        key: bytes,
        directory: RedirectDirectory,
        recorder: ClickRecorder,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._directory = directory
        self._recorder = recorder
        self._clock = clock

    def follow(self, token: str) -> ClickResult:
        """A click on the tracking URL: the user is redirected even if Redis cannot count it."""
        now = self._clock()
        claims = verify(self._key, token, now=now)
        url = self._destination(claims)
        try:
            return ClickResult(url, self._record(claims, now), claims)
        except (UpstreamUnavailable, UpstreamFailed) as exc:
            _LOGGER.warning(
                "click not counted: Redis could not record it",
                extra={"impressionId": claims.impression_id, "error": exc.message},
            )
            return ClickResult(url, ClickOutcome.UNRECORDED, claims)

    def submit(self, request: ClickRequest) -> ClickResult:
        """A click reported by API: it must agree with its token; Redis failures are a 5xx."""
        now = self._clock()
        claims = verify(self._key, request.click_token, now=now)
        check_agreement(request, claims)
        url = self._destination(claims)
        return ClickResult(url, self._record(claims, now), claims)

    def _destination(self, claims: ClickClaims) -> str:
        url = self._directory.redirect_url(claims.campaign_id, claims.ad_id)
        if url is None:
            raise NotFound(f"ad {claims.ad_id} of campaign {claims.campaign_id} does not exist")
        return location_header(url)

    def _record(self, claims: ClickClaims, now: float) -> ClickOutcome:
        event = click_event(claims, datetime.fromtimestamp(now, UTC))
        ad = Correlation(claims.request_id) if claims.request_id else None  # serve's request
        recorded = self._recorder.record(event, dedupe_ttl_s(claims, now), ad)
        return ClickOutcome.COUNTED if recorded else ClickOutcome.REPEAT
