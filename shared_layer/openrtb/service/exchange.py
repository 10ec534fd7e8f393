"""The OpenRTB bidder use case: a BidRequest answered by our auction, and its notices recorded.

`OpenRtbBidder.bid` decodes and maps the whole request first (`openrtb.domain.openrtb`: a bad field
is a 400 before anything is charged), then runs the same auction `bid` runs
(`bidding.service.bidder`) for each banner impression, in order, while the request's ``tmax``
allows. Each win is charged by the one budget script and its impression recorded in the outbox in
the same step, exactly as a
`serve` impression: the charge happens on the bid (docs/decisions.md says why). The answer's
``nurl`` and ``burl`` carry a signed token (`openrtb.domain.notice_token`); `notice` verifies it and
records the first win and the first billing notice of each bid (`openrtb.store.notices`);
repeats and forgeries move nothing.

Example::

    openrtb = OpenRtbBidder(bidder, notices, config, clock=utc_now)
    answer = openrtb.bid(body, correlation, started=time.perf_counter())   # None: 204
    first = openrtb.notice("win", query)
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from shared_layer.bidding.domain.auction import Decision
from shared_layer.bidding.service.bid_client import click_tracking_url
from shared_layer.bidding.service.bidder import Bidder
from shared_layer.bidding.service.settlement import DEFAULT_WINDOW_S, Settlement
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import AdServerError, InvalidToken
from shared_layer.kernel.money import impression_price
from shared_layer.openrtb.domain import notice_token
from shared_layer.openrtb.domain.openrtb import (
    AUCTION_PRICE_MACRO,
    NBR_INSUFFICIENT_TIME,
    AuctionSlot,
    OpenRtbBid,
    auction_price_micros,
    bid_response,
    decode_bid_request,
    inflate,
    no_bid_response,
    plan_auctions,
)
from shared_layer.openrtb.store.notices import NoticeKind, RedisNoticeLog

__all__ = [
    "DEFAULT_TMAX_MS",
    "DEFAULT_WINDOW_S",
    "MIN_DECISION_S",
    "NoticeConfig",
    "OpenRtbBidder",
    "OpenRtbOutcome",
    "public_notice_base_url",
]

DEFAULT_TMAX_MS: Final = 100
# Share of tmax spent bidding: what is left is for the answer to travel back to the exchange.
_TMAX_SHARE: Final = 0.8
# Less time than this left of the share: no auction is started (a decision's p99 is far below).
MIN_DECISION_S: Final = 0.002


@dataclass(frozen=True, slots=True)
class NoticeConfig:
    """Where notices and clicks go, and the keys that sign them."""

    notice_base_url: str  # the openrtb function as exchanges reach it, e.g. .../function/openrtb
    notice_key: bytes
    click_base_url: str
    click_key: bytes
    notice_ttl_s: int = 7 * 24 * 3600
    click_ttl_s: int = 86_400
    seat: str = "ads"
    window_s: int = DEFAULT_WINDOW_S  # how long a bid's reservation waits for a notice
    vendor_id: int | None = None  # our TCF v2 vendor id (kernel.privacy)


def public_notice_base_url(click_base_url: str) -> str:
    """Our notice URLs' base, on the public address exchanges reach: the one click URLs use.

    ``https://ads.example.com/function/click`` gives ``https://ads.example.com/function/openrtb``
    (a click base of another shape gets ``/openrtb`` beside it). Never the gateway's internal
    address, which no exchange can reach.

    >>> public_notice_base_url("https://ads.example.com/function/click")
    'https://ads.example.com/function/openrtb'
    """
    base = click_base_url.rstrip("/")
    parent, _, last = base.rpartition("/")
    return f"{parent}/openrtb" if last == "click" and parent else f"{base}/openrtb"


@dataclass(frozen=True, slots=True)
class OpenRtbOutcome:
    """The BidResponse body (None: no bid, 204; a body without ``seatbid``: a no-bid with its
    reason, ``nbr``) and what the metrics count."""

    body: dict[str, Any] | None
    slots: int
    bids: int


class OpenRtbBidder:
    """Answers OpenRTB BidRequests with `bidder`'s auctions; thread-safe as its parts are."""

    def __init__(
        self,
        bidder: Bidder,
        notices: RedisNoticeLog,
        config: NoticeConfig,
        settlement: Settlement,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._bidder = bidder
        self._notices = notices
        self._settlement = settlement
        self._config = config
        self._clock = clock

    def bid(
        self,
        body: bytes,
        correlation: Correlation,
        *,
        started: float,
        encoding: str = "",
    ) -> OpenRtbOutcome:
        """Bid on every banner impression of the BidRequest in `body` within its tmax.

        `started` is the request's `time.perf_counter()` at arrival, `encoding` its
        Content-Encoding (gzip or none). When too little of tmax is
        left to decide (`MIN_DECISION_S`), or it ran out before any bid, the answer is a no-bid
        with ``nbr`` 15 (insufficient time), never a late bid. A failure after a win (Redis went
        away on the second impression) answers the wins already made.
        """
        request = decode_bid_request(inflate(body, encoding))
        plan = plan_auctions(request, now=self._clock(), vendor_id=self._config.vendor_id)
        deadline = started + (request.tmax or DEFAULT_TMAX_MS) / 1000 * _TMAX_SHARE
        if plan.slots and time.perf_counter() + MIN_DECISION_S >= deadline:
            return _no_bid(request.id, len(plan.slots), NBR_INSUFFICIENT_TIME)
        bids: list[OpenRtbBid] = []
        late, config = False, self._config
        for slot in plan.slots:
            if time.perf_counter() >= deadline:
                late = True
                break
            try:
                outcome = self._bidder.bid(slot.request, correlation, window_s=config.window_s)
            except AdServerError:
                if bids:
                    break
                raise
            if outcome.decision is not None:
                bids.append(self._answer(slot, outcome.decision, outcome.impression_id))
        if bids:
            body_out = bid_response(request, bids, self._config.seat)
            return OpenRtbOutcome(body_out, len(plan.slots), len(bids))
        reason = NBR_INSUFFICIENT_TIME if late else plan.no_bid_reason
        return _no_bid(request.id, len(plan.slots), reason)

    def notice(self, kind: NoticeKind, query: Mapping[str, str]) -> bool:
        """Settle (``burl``), note the win of (``nurl``) or release (``lurl``) the bid's
        reservation, at most once whatever the order and repeats; False if the notice of this
        kind was seen before. The price is the exchange's ``${AUCTION_PRICE}``, or our bid when
        the macro was left in place."""
        token = query.get("t")
        if not token:
            raise InvalidToken("the notice has no token (t=): not a bid of ours")
        claims = notice_token.verify(self._config.notice_key, token, now=time.time())
        price = auction_price_micros(query.get("price"), cpm_micros=claims.cpm_micros)
        charge = impression_price(price)
        if kind == "bill":
            self._settlement.settle(claims.campaign_id, claims.bid_id, charge)
        elif kind == "win":
            self._settlement.win(claims.campaign_id, claims.bid_id, charge)
        else:
            self._settlement.release(claims.campaign_id, claims.bid_id)
        return self._notices.record(kind, claims, auction_price_micros=price, at=self._clock())

    def _answer(self, slot: AuctionSlot, decision: Decision, bid_id: str) -> OpenRtbBid:
        config, now = self._config, int(time.time())
        claims = notice_token.NoticeClaims(
            bid_id=bid_id,
            imp_id=slot.imp_id,
            campaign_id=decision.campaign.id,
            ad_id=decision.ad.id,
            cpm_micros=decision.price.bid_cpm_micros,
            charge_micros=decision.price.charge_micros,
            expires_at=now + config.notice_ttl_s,
        )
        token = notice_token.sign(config.notice_key, claims)
        base = config.notice_base_url.rstrip("/")
        click_url = click_tracking_url(
            config.click_base_url,
            config.click_key,
            impression_id=bid_id,
            bid=decision.to_response(),
            user_id=slot.request.user_id,
            placement_id=slot.request.placement_id,
            expires_at=now + config.click_ttl_s,
        )
        return OpenRtbBid(
            bid_id=bid_id,
            imp_id=slot.imp_id,
            cpm_micros=decision.price.bid_cpm_micros,
            ad_id=decision.ad.id,
            campaign_id=decision.campaign.id,
            redirect_url=decision.ad.redirect_url,
            adm=_markup(decision, click_url, slot),
            nurl=f"{base}/win?t={quote(token)}&price={AUCTION_PRICE_MACRO}",
            burl=f"{base}/bill?t={quote(token)}&price={AUCTION_PRICE_MACRO}",
            lurl=f"{base}/loss?t={quote(token)}",
            w=slot.w,
            h=slot.h,
        )


def _markup(decision: Decision, click_url: str, slot: AuctionSlot) -> str:
    """The banner's HTML: the ad's image, linked through our signed click URL."""
    size = "" if slot.w is None or slot.h is None else f' width="{slot.w}" height="{slot.h}"'
    return (
        f'<a href="{html.escape(click_url)}" target="_blank" rel="noopener">'
        f'<img src="{html.escape(decision.ad.image_url)}"'
        f' alt="{html.escape(decision.ad.title)}"{size}></a>'
    )


def _no_bid(request_id: str, slots: int, reason: int | None) -> OpenRtbOutcome:
    body = None if reason is None else no_bid_response(request_id, reason)
    return OpenRtbOutcome(body, slots, 0)
