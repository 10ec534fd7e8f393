"""openrtb.domain.openrtb: an OpenRTB 2.6 BidRequest decoded strictly and mapped to our auction's
request; openrtb.domain.notice_token: win and billing notices nobody can forge."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared_layer.clicks.domain import clicktoken
from shared_layer.kernel.errors import (
    InvalidToken,
    PayloadTooLarge,
    TokenExpired,
    ValidationFailed,
)
from shared_layer.openrtb.domain import notice_token
from shared_layer.openrtb.domain.currency import USD_PER_UNIT, usd_floor_micros
from shared_layer.openrtb.domain.openrtb import (
    ALPHA3_TO_ALPHA2,
    DEVICE_TYPES_BY_ADCOM,
    MAX_OPENRTB_REQUEST_BYTES,
    MTYPE_BANNER,
    NBR_INVALID_REQUEST,
    NBR_UNSUPPORTED_CURRENCY,
    UNKNOWN_PLACEMENT,
    OpenRtbBid,
    auction_price_micros,
    bid_response,
    decode_bid_request,
    floor_micros,
    inflate,
    plan_auctions,
)
from tests.unit import tcf_vectors as tcf
from tests.unit.tcf_vectors import VENDOR

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
BANNER = {"w": 300, "h": 250}
SITE = {"domain": "news.example", "page": "https://other.example/"}


def request(**changes) -> dict:
    body = {
        "id": "req-1",
        "imp": [
            {
                "id": "1",
                "tagid": "placement-1",
                "banner": {"format": [{"w": 300, "h": 250}, {"w": 728, "h": 90}]},
                "bidfloor": 0.5,
                "bidfloorcur": "USD",
                "ext": {"prebid": {"anything": True}},
            }
        ],
        "site": {"id": "site-1", "domain": "news.example.com"},
        "device": {"devicetype": 4, "geo": {"country": "DEU"}, "ua": "Mozilla/5.0"},
        "user": {"id": "user-1", "yob": 1990, "keywords": "tech,games"},
        "tmax": 120,
        "regs": {"gdpr": 0},
    }
    body.update(changes)
    return body


def slots(body: dict) -> list:
    return list(plan(body).slots)


def plan(body: dict):
    return plan_auctions(decode_bid_request(json.dumps(body).encode()), now=NOW)


def test_a_banner_impression_maps_every_field_to_our_targeting():
    [slot] = slots(request())
    ours = slot.request
    assert (slot.imp_id, slot.w, slot.h) == ("1", 300, 250)
    assert ours.user_id == "user-1" and ours.placement_id == "placement-1"
    assert ours.country_code == "DE" and ours.device_type == "mobile"
    assert ours.age == 36 and ours.interests == {"tech", "games"}
    assert ours.floor_micros == 500_000


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"user": {"buyeruid": "buyer-9"}}, "user_id", "buyer-9"),
        ({"user": None}, "user_id", "anon:req-1"),
        ({"imp": [{"id": "1", "banner": BANNER}]}, "placement_id", "site-1"),
        (
            {"imp": [{"id": "1", "banner": BANNER}], "site": None, "app": {"id": "app-7"}},
            "placement_id",
            "app-7",
        ),
        ({"imp": [{"id": "1", "banner": BANNER}], "site": SITE}, "placement_id", "news.example"),
        (
            {"imp": [{"id": "1", "banner": BANNER}], "site": {"page": "https://m.example/a?b"}},
            "placement_id",
            "m.example",
        ),
        (
            {"imp": [{"id": "1", "banner": BANNER}], "site": None, "app": {"bundle": "com.x.y"}},
            "placement_id",
            "com.x.y",
        ),
        ({"device": {"devicetype": 2}}, "device_type", "desktop"),
        ({"device": {"devicetype": 5}}, "device_type", "tablet"),
        ({"device": {"devicetype": 3}}, "device_type", "ctv"),
        ({"device": {"devicetype": 7}}, "device_type", "ctv"),
        ({"device": {"devicetype": 6}}, "device_type", None),
        ({"device": {"devicetype": 99}}, "device_type", None),
        ({"device": None}, "country_code", None),
        ({"device": {"geo": {"country": "XKX"}}}, "country_code", "XK"),
        ({"device": {"geo": {"country": "US"}}}, "country_code", "US"),
        ({"device": {"geo": {"country": "TST"}}}, "country_code", None),
        ({"imp": [{"id": "1", "banner": BANNER}], "site": {}}, "placement_id", UNKNOWN_PLACEMENT),
        (
            {"user": {"id": "u" * 200}},
            "user_id",
            "sha256:" + hashlib.sha256(b"u" * 200).hexdigest(),
        ),
        ({"user": {"id": "u", "kwarray": ["a", "b", "a", ""]}}, "interests", frozenset({"a", "b"})),
    ],
)
def test_the_mapping_table(changes, field, expected):
    [slot] = slots(request(**changes))
    assert getattr(slot.request, field) == expected


def test_the_country_table_is_all_of_iso_3166_1():
    assert len(ALPHA3_TO_ALPHA2) == 250  # 249 codes and Kosovo's XKX
    assert all(len(a3) == 3 and a3.isupper() for a3 in ALPHA3_TO_ALPHA2)
    assert len(set(ALPHA3_TO_ALPHA2.values())) == len(ALPHA3_TO_ALPHA2)  # one to one
    samples = {"USA": "US", "GBR": "GB", "FRA": "FR", "JPN": "JP", "BRA": "BR", "ZAF": "ZA"}
    assert all(ALPHA3_TO_ALPHA2[a3] == a2 for a3, a2 in samples.items())
    assert set(DEVICE_TYPES_BY_ADCOM) == {1, 2, 3, 4, 5, 7}


@pytest.mark.parametrize(
    "changes",
    [
        {"imp": [{"id": "1", "banner": BANNER, "tagid": "p"}], "test": 1},
        {"imp": [{"id": "1", "banner": {"w": 0, "h": 0, "format": [{"w": 0, "h": 250}]}}]},
        {"imp": [{"id": "1", "banner": {}, "tagid": "p"}]},
        {"cur": ["EUR"]},
        {"imp": [{"id": "1", "video": {"mimes": ["video/mp4"]}, "tagid": "p"}]},
        {"imp": [{"id": "1", "banner": BANNER, "tagid": "p", "bidfloor": 1, "bidfloorcur": "XYZ"}]},
    ],
    ids=["test request", "no usable size", "no size", "no USD", "no banner", "floor in XYZ"],
)
def test_what_we_do_not_bid_on_is_no_slot_not_an_error(changes):
    assert slots(request(**changes)) == []


BAD = [
    ("not JSON", b"{", "not valid JSON"),
    ("no imp", {"imp": []}, "$.imp"),
    ("no id", {"id": ""}, "$.id"),
    ("imp id a number", {"imp": [{"id": 1, "banner": {}}]}, "$.imp[0].id"),
    ("floor as text", {"imp": [{"id": "1", "banner": {}, "bidfloor": "1"}]}, "bidfloor"),
    ("negative floor", {"imp": [{"id": "1", "banner": {}, "bidfloor": -1}]}, "bidfloor"),
    ("future yob", {"user": {"id": "u", "yob": 2030}}, "user.yob"),
    ("devicetype text", {"device": {"devicetype": "4"}}, "devicetype"),
    ("tmax zero", {"tmax": 0}, "tmax"),
    ("banner width -1", {"imp": [{"id": "1", "banner": {"w": -1, "h": 5}}]}, "banner.w"),
    ("21 imps", {"imp": [{"id": str(n), "banner": {}} for n in range(21)]}, "$.imp"),
]


@pytest.mark.parametrize(("label", "changes", "names"), BAD, ids=[b[0] for b in BAD])
def test_a_malformed_bid_request_is_a_400_naming_what_is_wrong(label, changes, names):
    body = changes if isinstance(changes, bytes) else json.dumps(request(**changes)).encode()
    with pytest.raises(ValidationFailed) as failure:
        plan_auctions(decode_bid_request(body), now=NOW)
    assert failure.value.status == 400
    assert names in str(failure.value), str(failure.value)


def test_floors_round_up_to_a_whole_micro():
    assert floor_micros(1.25) == 1_250_000
    assert floor_micros(0.0000001) == 1
    assert floor_micros(0.0) == 0


def test_the_response_echoes_the_request_and_carries_every_field_an_exchange_reads():
    decoded = decode_bid_request(json.dumps(request()).encode())
    bid = OpenRtbBid(
        "bid-1", "1", 2_500_000, "ad-1", "c-1", "https://shop.example.com/x", "<a></a>",
        "https://n/win", "https://n/bill", 300, 250,
    )  # fmt: skip
    body = bid_response(decoded, [bid], "ads")
    assert body["id"] == "req-1" and body["cur"] == "USD"
    [out] = body["seatbid"][0]["bid"]
    assert out["price"] == 2.5 and out["impid"] == "1" and out["adomain"] == ["shop.example.com"]
    assert out["crid"] == "ad-1" and (out["w"], out["h"]) == (300, 250)


@pytest.mark.parametrize(
    ("text", "message"),
    [("1e3", "plain"), ("-1", "plain"), ("2.6", "above our bid"), ("abc", "plain")],
)  # fmt: skip
def test_an_auction_price_that_cannot_be_ours_is_a_400(text, message):
    with pytest.raises(ValidationFailed, match=message):
        auction_price_micros(text, cpm_micros=2_500_000)


def test_the_auction_price_is_rounded_down_to_micros():
    assert auction_price_micros("1.2345678", cpm_micros=2_000_000) == 1_234_567
    assert auction_price_micros("2.5", cpm_micros=2_500_000) == 2_500_000
    assert auction_price_micros(None, cpm_micros=2_500_000) == 2_500_000  # our bid
    assert auction_price_micros("${AUCTION_PRICE}", cpm_micros=2_500_000) == 2_500_000


KEY = b"n" * 32
CLAIMS = notice_token.NoticeClaims("bid-1", "1", "c-1", "a-1", 2_500_000, 2_500, 2_000_000_000)


def test_a_notice_token_round_trips():
    assert notice_token.verify(KEY, notice_token.sign(KEY, CLAIMS), now=time.time()) == CLAIMS


def test_a_changed_character_or_another_key_is_a_forgery():
    token = notice_token.sign(KEY, CLAIMS)
    payload = token.split(".")[1]
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    for forged in (token.replace(payload, flipped), token[:-1] + "x", token + "x", "n1.a.b", ""):
        with pytest.raises(InvalidToken):
            notice_token.verify(KEY, forged, now=time.time())
    with pytest.raises(InvalidToken):
        notice_token.verify(b"m" * 32, token, now=time.time())


def test_an_expired_notice_is_a_410_and_a_click_token_is_no_notice():
    token = notice_token.sign(KEY, CLAIMS)
    with pytest.raises(TokenExpired) as expired:
        notice_token.verify(KEY, token, now=CLAIMS.expires_at)
    assert expired.value.status == 410
    click = clicktoken.sign(KEY, clicktoken.ClickClaims("i", "a", "c", "u", "p", 2_000_000_000))
    with pytest.raises(InvalidToken):
        notice_token.verify(KEY, click, now=time.time())


def test_each_imp_is_judged_alone_and_only_nothing_usable_is_a_400():
    good = {"id": "a", "tagid": "p", "banner": BANNER}
    mixed = plan(request(imp=[good, {"id": 7}, {**good, "id": "a"}, {"id": "b", "banner": {}}]))
    assert [s.imp_id for s in mixed.slots] == ["a"]
    assert [p.split(":")[0] for p in mixed.problems] == ["imp[1]", "imp[2].id"]
    with pytest.raises(ValidationFailed, match=r"imp\[0\].*imp\[1\]"):
        plan(request(imp=[{"id": 7}, {"id": "x", "bidfloor": "1"}]))


def test_a_banner_without_a_size_takes_the_first_usable_format_or_gets_no_bid():
    banner = {"w": 0, "h": 0, "format": [{"w": 0, "h": 90}, {"w": 728, "h": 90}]}
    [slot] = slots(request(imp=[{"id": "1", "tagid": "p", "banner": banner}]))
    assert (slot.w, slot.h) == (728, 90)


def test_site_and_app_together_is_a_no_bid_for_an_invalid_request_not_a_400():
    both = plan(request(app={"id": "a"}))
    assert both.slots == () and both.no_bid_reason == NBR_INVALID_REQUEST


def test_a_floor_in_a_currency_of_the_table_is_converted_up_and_another_is_an_nbr():
    imp = {"id": "1", "tagid": "p", "banner": BANNER, "bidfloor": 1.5, "bidfloorcur": "EUR"}
    [slot] = slots(request(imp=[imp]))
    assert slot.request.floor_micros == usd_floor_micros(Decimal("1.5"), "EUR") == 1_746_000
    unknown = plan(request(imp=[{**imp, "bidfloorcur": "XYZ"}]))
    assert unknown.slots == () and unknown.no_bid_reason == NBR_UNSUPPORTED_CURRENCY
    assert set(USD_PER_UNIT) >= {"USD", "EUR", "GBP", "JPY", "CAD", "AUD", "BRL", "INR"}


@pytest.mark.parametrize("where", ["root", "ignored ext", "imp ext"])
def test_a_body_nested_100000_deep_is_a_400_naming_the_depth(where):
    deep = b"[" * 100_000 + b"]" * 100_000
    body = {
        "root": b'{"id":"r","imp":' + deep + b"}",
        "ignored ext": b'{"id":"r","ext":' + deep + b',"imp":[{"id":"1"}]}',
        "imp ext": b'{"id":"r","imp":[{"id":"1","ext":' + deep + b"}]}",
    }[where]
    with pytest.raises(ValidationFailed, match="nested too deeply"):
        decode_bid_request(body)


def test_a_gzip_body_is_inflated_and_a_bomb_is_a_413():
    body = json.dumps(request()).encode()
    assert inflate(gzip.compress(body), "gzip") == body
    assert inflate(body, "") == body
    with pytest.raises(PayloadTooLarge):
        inflate(gzip.compress(b" " * (MAX_OPENRTB_REQUEST_BYTES + 1)), "gzip")
    for broken, encoding in ((b"not gzip", "gzip"), (gzip.compress(body)[:-9], "gzip"),
                             (body, "br")):  # fmt: skip
        with pytest.raises(ValidationFailed):
            inflate(broken, encoding)


def test_every_bid_carries_mtype():
    decoded = decode_bid_request(json.dumps(request()).encode())
    bid = OpenRtbBid("b", "1", 1, "ad", "c", "https://x.example", "", "n", "b", None, None)
    assert bid_response(decoded, [bid], "ads")["seatbid"][0]["bid"][0]["mtype"] == MTYPE_BANNER


SCHAIN = {"complete": 1, "ver": "1.0", "nodes": [{"asi": "ex.com", "sid": "1", "hp": 1}]}
EIDS = [{"source": "id5-sync.com", "uids": [{"id": "ID5-abc"}]}]
SHAPE_26 = {
    "regs": {"gdpr": 1, "us_privacy": "1YNN", "gpp": "DBABMA~CPXxRfA", "gpp_sid": [2], "coppa": 0},
    "user": {"id": "user-1", "yob": 1990, "consent": "CPXxRfAPXxRfA", "eids": EIDS},
    "source": {"schain": SCHAIN},
}
SHAPE_25 = {
    "regs": {"coppa": 0, "ext": {"gdpr": 1, "us_privacy": "1YNN", "gpp": "DBABMA~CPXxRfA",
                                 "gpp_sid": [2]}},
    "user": {"id": "user-1", "yob": 1990, "ext": {"consent": "CPXxRfAPXxRfA", "eids": EIDS}},
    "source": {"ext": {"schain": SCHAIN}},
}  # fmt: skip


def test_the_25_and_26_places_of_every_signal_give_the_same_plan():
    newer, older = plan(request(**SHAPE_26)), plan(request(**SHAPE_25))
    assert newer == older
    found, privacy = newer.signals, newer.signals.privacy
    assert (privacy.gdpr, privacy.consent, privacy.us_privacy) == (True, "CPXxRfAPXxRfA", "1YNN")
    assert (privacy.gpp, privacy.gpp_sid, privacy.coppa) == ("DBABMA~CPXxRfA", (2,), False)
    assert found.schain == SCHAIN and found.eids == tuple(EIDS)


def test_the_26_place_wins_when_both_are_sent():
    both = request(
        regs={"gdpr": 0, "us_privacy": "1NNN", "ext": {"gdpr": 1, "us_privacy": "1YYN"}},
        user={"id": "u", "consent": "NEW", "ext": {"consent": "OLD"}},
        device={"lmt": 1, "dnt": 0},
    )
    found = plan(both).signals.privacy
    assert (found.gdpr, found.us_privacy, found.consent) == (False, "1NNN", "NEW")
    assert (found.lmt, found.dnt) == (True, False)
    assert plan(request()).signals.privacy.gdpr is False  # the fixture's regs.gdpr


def privately(shape: dict, vendor_id: int | None = VENDOR):
    body = json.dumps(request(**shape)).encode()
    [slot] = plan_auctions(decode_bid_request(body), now=NOW, vendor_id=vendor_id).slots
    return slot.request


@pytest.mark.parametrize(
    ("regs", "user", "device", "stored", "personal"),
    [
        ({"gdpr": 1}, {"consent": tcf.ALL}, {}, True, True),
        ({"ext": {"gdpr": 1}}, {"ext": {"consent": tcf.ALL}}, {}, True, True),
        ({"gdpr": 1}, {"consent": tcf.STORAGE_ONLY}, {}, True, False),
        ({"gdpr": 1}, {"consent": tcf.PROFILE_ONLY}, {}, False, True),
        ({"gdpr": 1}, {}, {}, False, False),
        ({"ext": {"gdpr": 1}}, {"ext": {"consent": tcf.NOTHING}}, {}, False, False),
        ({"coppa": 1}, {}, {}, False, False),
        ({}, {}, {"lmt": 1}, False, True),
        ({}, {}, {"dnt": 1}, False, True),
        ({"us_privacy": "1YY-"}, {}, {}, False, False),
        ({"ext": {"us_privacy": "1YY-"}}, {}, {}, False, False),
        ({"us_privacy": "1YN-"}, {}, {}, True, True),
    ],
    ids=["tcf all", "tcf all 2.5", "purpose 1 only", "purposes 3 4 only", "gdpr no consent",
         "nothing consented 2.5", "coppa", "lmt", "dnt", "usp opt-out", "usp opt-out 2.5",
         "usp no opt-out"],
)  # fmt: skip
def test_privacy_signals_decide_what_the_auction_knows_of_the_user(
    regs, user, device, stored, personal
):
    ours = privately(
        {
            "regs": regs,
            "user": {"id": "user-1", "yob": 1990, "keywords": "tech", **user},
            "device": {"devicetype": 4, "geo": {"country": "DEU"}, **device},
        }
    )
    assert (ours.user_id == "user-1") is stored
    assert ours.user_id in ("user-1", "anon:req-1")
    assert (ours.age == 36 and ours.interests == {"tech"}) is personal
    if not personal:
        assert ours.age is None and ours.interests == frozenset()
    assert ours.country_code == "DE" and ours.device_type == "mobile"  # contextual stays


def test_an_ext_of_another_shape_is_ignored_but_unreadable_regulations_restrict():
    odd = plan(request(source={"ext": "x"}, user={"id": "u", "ext": []}))
    assert odd.signals.schain is None and odd.slots[0].request.user_id == "u"
    unreadable = plan(request(regs={"ext": {"gdpr": "yes"}}, user={"id": "u", "yob": 1990}))
    assert unreadable.signals.privacy.gdpr is True
    assert unreadable.slots[0].request.user_id == "anon:req-1"
