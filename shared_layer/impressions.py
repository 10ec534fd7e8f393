"""The seam through which serve publishes impression events.

Why a seam: serve must hand an impression over without waiting for it (DESIGN.md: "publish the
impression event without blocking", < 50 ms to Kafka), and serve should not know whether Kafka,
a log line or a test double receives it. `ImpressionPublisher` is the one-method contract;
`LoggingImpressionPublisher` is today's implementation (a debug log line, nothing else). The
pipeline issue brings the Kafka producer (idempotent, acks=all, keyed by campaignId) behind the
same contract, so serve does not change.

Note on money: bid has already charged the impression's price atomically in Redis when serve
publishes; the event is the record from which PostgreSQL's spend is built, not the charge.

Example::

    publisher: ImpressionPublisher = LoggingImpressionPublisher()
    publisher.publish(Impression.served(impression_id="...", bid=bid_response, request=req))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from .models import BidRequest, BidResponse
from .money import to_json_number

__all__ = ["Impression", "ImpressionPublisher", "LoggingImpressionPublisher"]


@dataclass(frozen=True, slots=True)
class Impression:
    """One served ad: the seed's impression event plus impressionId and priceMicros.

    `impression_id` is the event id (bid generated it with the charge, so a redelivered event
    counts once downstream).
    """

    impression_id: str
    timestamp: datetime
    campaign_id: str
    ad_id: str
    user_id: str
    placement_id: str
    bid_cpm_micros: int
    price_micros: int

    @classmethod
    def served(
        cls,
        *,
        impression_id: str,
        bid: BidResponse,
        request: BidRequest,
        at: datetime | None = None,
    ) -> Impression:
        return cls(
            impression_id=impression_id,
            timestamp=at or datetime.now(UTC),
            campaign_id=bid.campaign_id,
            ad_id=bid.ad_id,
            user_id=request.user_id,
            placement_id=request.placement_id,
            bid_cpm_micros=bid.bid_cpm_micros,
            price_micros=bid.price_micros,
        )

    def to_json(self) -> dict[str, Any]:
        """The event body (camelCase, money as the seed's decimal bidPrice plus exact micros)."""
        return {
            "eventId": self.impression_id,
            "eventType": "impression",
            "impressionId": self.impression_id,
            "timestamp": self.timestamp.astimezone(UTC).isoformat(timespec="milliseconds"),
            "campaignId": self.campaign_id,
            "adId": self.ad_id,
            "userId": self.user_id,
            "placementId": self.placement_id,
            "bidPrice": to_json_number(self.bid_cpm_micros),
            "priceMicros": self.price_micros,
        }


class ImpressionPublisher(Protocol):
    """Hands an impression to the event pipeline; must return at once (never block serve)."""

    def publish(self, impression: Impression) -> None: ...


class LoggingImpressionPublisher:
    """Publishes nothing: writes the event as a debug log line (visible with LOG_LEVEL=DEBUG)."""

    def __init__(self, logger: Logger | None = None) -> None:
        self._logger = logger or Logger(service="impressions")

    def publish(self, impression: Impression) -> None:
        self._logger.debug("impression", extra={"event": impression.to_json()})
