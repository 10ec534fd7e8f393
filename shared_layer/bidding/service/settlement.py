"""Settling exchange bids: the use case over `bidding.store.reservations` that `openrtb` calls.

A bid made for an exchange reserves its price (`Bidder.bid(..., window_s=...)`); the exchange's
notices then settle, note the win of, or release that reservation, and `sweep` closes what no
notice reached within the window. Every move is exactly once (the store's script); this class
adds the window's sweep on a clock, and is the one door other features use.

Example::

    settlement = Settlement(RedisReservations(redis_client, shards=shards), clock=utc_now)
    settlement.settle("c-1", "bid-1", 1_200)   # the state after: "settled", or what it was
    settlement.sweep()                          # every replica may call it: exactly once still
"""

from __future__ import annotations

from shared_layer.bidding.store.reservations import DEFAULT_WINDOW_S, RedisReservations, Tally
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.money import Micros

__all__ = ["DEFAULT_WINDOW_S", "Settlement", "Tally"]


class Settlement:
    """Moves reservations on notices and at their window's end; thread-safe as its store is."""

    def __init__(self, reservations: RedisReservations, *, clock: Clock = utc_now) -> None:
        self._reservations = reservations
        self._clock = clock

    def settle(self, campaign_id: str, bid_id: str, price_micros: Micros) -> str:
        """The billing notice: the spend becomes `price_micros` and the impression is recorded."""
        return self._reservations.settle(campaign_id, bid_id, price_micros)

    def win(self, campaign_id: str, bid_id: str, price_micros: Micros) -> str:
        """The win notice: its price settles the reservation at the window's end, unless a
        billing or loss notice came first."""
        return self._reservations.win(campaign_id, bid_id, price_micros)

    def release(self, campaign_id: str, bid_id: str) -> str:
        """The loss notice: the whole amount returns to the budget."""
        return self._reservations.release(campaign_id, bid_id)

    def sweep(self) -> int:
        """Close every reservation whose window ended; how many this call closed."""
        return self._reservations.sweep(now_ms=int(self._clock().timestamp() * 1000))
