"""openrtb.service.exchange with doubles of our own seams (the Bidder, the notice log): every
impression is mapped before any is charged, tmax stops further auctions, a failure after a win keeps
the win, and a notice is verified before it is recorded."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from shared_layer.bidding.domain.auction import Decision, Price
from shared_layer.bidding.domain.budget import ChargeOutcome, ChargeResult
from shared_layer.bidding.service.bidder import BidOutcome
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import InvalidToken, UpstreamUnavailable
from shared_layer.openrtb.service.exchange import (
    NoticeConfig,
    OpenRtbBidder,
    public_notice_base_url,
)
from tests.unit.auction_fixtures import make_campaign

CAMPAIGN = make_campaign("c-1", cpm_micros=2_500_000)
CONFIG = NoticeConfig(
    notice_base_url="https://ads.example.com/function/openrtb",
    notice_key=b"n" * 32,
    click_base_url="https://ads.example.com/function/click",
    click_key=b"k" * 32,
)
CORRELATION = Correlation("req-1", "00-" + "a" * 32 + "-" + "b" * 16 + "-01")


class FakeBidder:
    """Wins every auction at the campaign's CPM, or raises `fail_on` at that call."""

    def __init__(self, fail_on: int | None = None, delay_s: float = 0.0) -> None:
        self.requests: list = []
        self.fail_on, self.delay_s = fail_on, delay_s

    def bid(self, request, correlation=None, *, window_s=None) -> BidOutcome:
        self.requests.append(request)
        if self.fail_on == len(self.requests):
            raise UpstreamUnavailable("budget ledger unavailable")
        time.sleep(self.delay_s)
        charge = ChargeResult(ChargeOutcome.CHARGED, 2_500, 2_500)
        decision = Decision(CAMPAIGN, CAMPAIGN.ads[0], Price(2_500_000, 2_500), charge)
        return BidOutcome(decision, str(uuid.uuid4()), ())


class FakeSettlement:
    """Records each move; the real one's exactly-once is tested against Redis."""

    def __init__(self) -> None:
        self.moves: list[tuple] = []

    def settle(self, campaign_id, bid_id, price_micros):
        self.moves.append(("settle", bid_id, price_micros))

    def win(self, campaign_id, bid_id, price_micros):
        self.moves.append(("win", bid_id, price_micros))

    def release(self, campaign_id, bid_id):
        self.moves.append(("release", bid_id))


class FakeNotices:
    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], int] = {}

    def record(self, kind, claims, *, auction_price_micros, at) -> bool:
        first = (claims.bid_id, kind) not in self.seen
        self.seen.setdefault((claims.bid_id, kind), auction_price_micros)
        return first


def body(imps: int = 1, **changes) -> bytes:
    request = {
        "id": "r-1",
        "imp": [
            {"id": str(n), "tagid": "p-1", "banner": {"w": 300, "h": 250}} for n in range(imps)
        ],
        "site": {"id": "s-1"},
        "tmax": 1000,
    }
    return json.dumps({**request, **changes}).encode()


def test_every_banner_imp_gets_a_bid_with_signed_notices_and_a_click_url():
    bidder, notices = FakeBidder(), FakeNotices()
    openrtb = OpenRtbBidder(bidder, notices, CONFIG, FakeSettlement())
    outcome = openrtb.bid(body(imps=2), CORRELATION, started=time.perf_counter())
    bids = outcome.body["seatbid"][0]["bid"]
    assert (outcome.slots, outcome.bids, [b["impid"] for b in bids]) == (2, 2, ["0", "1"])
    assert "https://ads.example.com/function/click?t=v1." in bids[0]["adm"]
    win = bids[0]["nurl"].replace("${AUCTION_PRICE}", "2.1")
    query = {k: v[0] for k, v in parse_qs(urlsplit(win).query).items()}
    assert openrtb.notice("win", query) is True and openrtb.notice("win", query) is False
    assert notices.seen[(bids[0]["id"], "win")] == 2_100_000


def test_a_bad_second_imp_costs_its_own_bid_only():
    bidder = FakeBidder()
    bad = body(imps=2, site={})  # no tagid on the second imp, no site id
    bad = bad.replace(b'"tagid": "p-1", "banner": {"w": 300, "h": 250}}]', b'"banner": {}}]')
    outcome = OpenRtbBidder(bidder, FakeNotices(), CONFIG, FakeSettlement()).bid(
        bad, CORRELATION, started=time.perf_counter()
    )
    assert outcome.bids == 1 and [b["impid"] for b in outcome.body["seatbid"][0]["bid"]] == ["0"]


def test_no_time_left_is_a_no_bid_with_nbr_15_before_any_auction():
    bidder = FakeBidder()
    openrtb = OpenRtbBidder(bidder, FakeNotices(), CONFIG, FakeSettlement())
    outcome = openrtb.bid(body(tmax=1), CORRELATION, started=time.perf_counter())
    assert outcome.body == {"id": "r-1", "nbr": 15} and bidder.requests == []


def test_notice_urls_sit_on_the_public_base_of_click_urls():
    assert public_notice_base_url("https://ads.example/function/click/") == (
        "https://ads.example/function/openrtb"
    )
    assert public_notice_base_url("https://click.example") == "https://click.example/openrtb"


def test_tmax_stops_further_auctions():
    bidder = FakeBidder(delay_s=0.03)
    openrtb = OpenRtbBidder(bidder, FakeNotices(), CONFIG, FakeSettlement())
    outcome = openrtb.bid(body(imps=5, tmax=50), CORRELATION, started=time.perf_counter())
    assert 1 <= outcome.bids < 5 and len(bidder.requests) == outcome.bids


def test_a_failure_after_a_win_answers_the_win_and_before_any_raises():
    openrtb = OpenRtbBidder(FakeBidder(fail_on=2), FakeNotices(), CONFIG, FakeSettlement())
    assert openrtb.bid(body(imps=3), CORRELATION, started=time.perf_counter()).bids == 1
    with pytest.raises(UpstreamUnavailable):
        OpenRtbBidder(FakeBidder(fail_on=1), FakeNotices(), CONFIG, FakeSettlement()).bid(
            body(), CORRELATION, started=time.perf_counter()
        )


def test_a_notice_without_a_genuine_token_records_nothing():
    notices = FakeNotices()
    openrtb = OpenRtbBidder(FakeBidder(), notices, CONFIG, FakeSettlement())
    for query in ({}, {"t": "n1.x.y", "price": "1"}, {"t": "", "price": "1"}):
        with pytest.raises(InvalidToken):
            openrtb.notice("bill", query)
    assert notices.seen == {}


def test_billing_settles_win_notes_loss_releases_and_a_macro_left_settles_at_our_bid():
    settlement = FakeSettlement()
    openrtb = OpenRtbBidder(FakeBidder(), FakeNotices(), CONFIG, settlement)
    [bid] = openrtb.bid(body(), CORRELATION, started=time.perf_counter()).body["seatbid"][0]["bid"]
    for url, price in ((bid["burl"], "2.1"), (bid["nurl"], "1.5"), (bid["lurl"], None)):
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        if price is not None:
            query["price"] = price
        openrtb.notice(urlsplit(url).path.rsplit("/", 1)[1], query)
    macro = {k: v[0] for k, v in parse_qs(urlsplit(bid["burl"]).query).items()}
    openrtb.notice("bill", macro)  # ${AUCTION_PRICE} left in place: our bid, 2.5 CPM
    bid_id = bid["id"]
    assert settlement.moves == [
        ("settle", bid_id, 2_100),
        ("win", bid_id, 1_500),
        ("release", bid_id),
        ("settle", bid_id, 2_500),
    ]
