"""OpenRTB win and billing notices in Redis: each bid's notice of each kind is recorded once.

Why a record and no charge: the bid's impression was charged when we bid
(`openrtb.service.exchange`, docs/decisions.md "OpenRTB: the charge happens on the bid"), through
the one budget script. A notice tells us the exchange's clearing price (``${AUCTION_PRICE}``) and
that the impression was billed; exchanges retry notices, so the first one of each kind per bid is
kept and every
repeat is recognised and changes nothing. One ``SET NX`` per notice is atomic on its own::

    openrtb::notice::{<bidId>}::win    JSON {auctionPriceMicros, campaignId, at}  (TTL 30 days)
    openrtb::notice::{<bidId>}::bill   same

Example::

    notices = RedisNoticeLog(redis_client)
    first = notices.record("win", claims, auction_price_micros=1_200_000, at=now)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final, Literal

from redis import exceptions as redis_errors

from shared_layer.kernel.errors import UpstreamFailed, UpstreamUnavailable
from shared_layer.kernel.money import Micros
from shared_layer.openrtb.domain.notice_token import NoticeClaims

__all__ = ["NOTICE_TTL_SECONDS", "NoticeKind", "RedisNoticeLog", "notice_key"]

NoticeKind = Literal["win", "bill", "loss"]
NOTICE_TTL_SECONDS: Final = 30 * 24 * 3600  # longer than any notice token lives


def notice_key(bid_id: str, kind: NoticeKind) -> str:
    """``openrtb::notice::{<bidId>}::<kind>`` (the braces are a Redis Cluster hash tag)."""
    return f"openrtb::notice::{{{bid_id}}}::{kind}"


class RedisNoticeLog:
    """Records each bid's win and billing notice once (thread-safe as its client is)."""

    def __init__(self, redis_client: Any, *, ttl_s: int = NOTICE_TTL_SECONDS) -> None:
        self._client = redis_client
        self._ttl = ttl_s

    def record(
        self, kind: NoticeKind, claims: NoticeClaims, *, auction_price_micros: Micros, at: datetime
    ) -> bool:
        """True if this is the bid's first notice of `kind`; False for a repeat (kept as is)."""
        value = json.dumps(
            {
                "auctionPriceMicros": auction_price_micros,
                "campaignId": claims.campaign_id,
                "chargeMicros": claims.charge_micros,
                "at": at.isoformat(),
            },
            separators=(",", ":"),
        )
        try:
            return bool(
                self._client.set(notice_key(claims.bid_id, kind), value, nx=True, ex=self._ttl)
            )
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            raise UpstreamUnavailable("notice log unavailable: could not write to Redis") from exc
        except redis_errors.RedisError as exc:
            raise UpstreamFailed("notice log error: Redis refused the write") from exc

    def read(self, bid_id: str, kind: NoticeKind) -> dict[str, Any] | None:
        """The recorded notice, or None (for tests and reconciliation)."""
        try:
            raw = self._client.get(notice_key(bid_id, kind))
        except redis_errors.RedisError as exc:
            raise UpstreamUnavailable("notice log unavailable: could not read Redis") from exc
        return None if raw is None else json.loads(raw)
