"""POST /function/openrtb through the gateway, checked by a real OpenRTB client: a Go program on
the Prebid project's openrtb types (tests/e2e/openrtb_client) builds the BidRequests, parses
each BidResponse and validates every field it reads, and fires every win and billing notice
twice. Here: the ledger in Redis moved exactly once per bid, malformed BidRequests and forged
notices are refused and move nothing."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from localplatform import toolchain
from shared_layer.openrtb.store.notices import RedisNoticeLog
from tests.e2e.test_bid_support import (
    GATEWAY,
    Campaigns,
    campaign_body,
    redis_client,
    spent,
    unique_placement,
)

OPENRTB = f"{GATEWAY}/function/openrtb"
CLIENT_SOURCE = Path(__file__).parent / "openrtb_client"
CPM = "1500"  # per the isolation rule of test_bid_support: far above other suites' campaigns
CHARGE = 1_500_000  # one impression at a CPM of 1500: 1.5 units


@pytest.fixture(scope="module")
def campaign():
    placement = unique_placement("ortb")
    rules = [("placement", placement), ("country", "US"), ("device_type", "mobile")]
    rules.append(("age_range", "25-45"))
    campaign_id = Campaigns().create(
        campaign_body(cpm=CPM, daily="500", lifetime="600", rules=rules)
    )
    return placement, campaign_id


@pytest.fixture(scope="module")
def client() -> Path:
    return toolchain.ensure_go_command(CLIENT_SOURCE, "openrtb-client")


def run_client(client: Path, cases: list[dict]) -> list[dict]:
    run = subprocess.run(
        [str(client)],
        input=json.dumps({"endpoint": OPENRTB, "cases": cases}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"the OpenRTB client found problems:\n{run.stderr}"
    return json.loads(run.stdout)


def wanted(placement: str, campaign_id: str, **changes) -> dict:
    case = {
        "name": "match",
        "tagid": placement,
        "siteId": "site-e2e",
        "country": "USA",
        "devicetype": 4,  # AdCOM: phone
        "userId": "ortb-user-1",
        "yob": 1990,
        "bidfloor": 1.25,
        "formats": [[300, 250], [320, 50]],
        "tmax": 500,
        "expect": "bid",
        "campaignId": campaign_id,
    }
    return {**case, **changes}


def test_a_real_openrtb_client_gets_valid_bids_and_its_repeated_notices_charge_once(
    campaign, client
):
    placement, campaign_id = campaign
    before = spent(campaign_id)
    results = run_client(
        client,
        [
            wanted(placement, campaign_id, notices=True, clearingPrice=1200.5),
            wanted(placement, campaign_id, name="two imps", imps=2, notices=True),
            wanted(placement, campaign_id, name="app", siteId="", appId="app-e2e"),
        ],
    )
    bids = [bid for result in results for bid in result["bids"]]
    assert [len(r["bids"]) for r in results] == [1, 2, 1]
    # Each bid reserved its price; the billing notices (each twice, with win notices) settled
    # the first at its clearing price of 1200.5 and the two-imp ones at our bid (no clearing
    # price given); the app bid, without notices, holds its reservation until its window ends.
    held = 1_200_500 + 3 * CHARGE
    assert spent(campaign_id) == (before[0] + held, before[1] + held)
    assert {bid["price"] for bid in bids} == {1500.0}
    notices = RedisNoticeLog(redis_client())
    first = bids[0]["id"]
    assert notices.read(first, "win")["auctionPriceMicros"] == 1_200_500_000
    assert notices.read(first, "bill")["chargeMicros"] == CHARGE
    app_bid = results[2]["bids"][0]
    assert requests.get(app_bid["lurl"], timeout=10).status_code == 204  # lost: released
    assert spent(campaign_id) == (before[0] + held - CHARGE, before[1] + held - CHARGE)
    assert all(len(r["notices"]) == 4 * len(r["bids"]) for r in results if r["name"] != "app")


def test_what_nothing_matches_is_a_204_for_the_client(campaign, client):
    placement, campaign_id = campaign
    before = spent(campaign_id)
    run_client(
        client,
        [
            # Campaigns of other suites may be untargeted; these requests exclude any winner.
            # 1300 EUR is above our bid of 1500 USD once converted by the currency table.
            wanted(
                placement, "", name="EUR floor", expect="nobid", bidfloor=1300, bidfloorcur="EUR"
            ),
        ],
    )
    assert spent(campaign_id) == before


def test_a_floor_just_below_our_bid_is_cleared_and_one_just_above_is_not(campaign, client):
    placement, campaign_id = campaign
    [result] = run_client(client, [wanted(placement, campaign_id, bidfloor=1499.999999)])
    assert [bid["price"] for bid in result["bids"]] == [1500.0]
    before = spent(campaign_id)
    above = _body(placement, imp=[_imp(placement, bidfloor=1500.000001)])
    r = requests.post(OPENRTB, json=above, timeout=10)
    assert r.status_code == 204 or all(
        bid["cid"] != campaign_id and bid["price"] >= 1500.000001
        for bid in r.json()["seatbid"][0]["bid"]
    ), r.text
    assert spent(campaign_id) == before


def test_our_campaign_does_not_win_outside_its_targeting(campaign, client):
    placement, campaign_id = campaign
    before = spent(campaign_id)
    for changes in ({"country": "FRA"}, {"devicetype": 2}, {"yob": 1950}):
        r = requests.post(OPENRTB, json=_body(placement, **changes), timeout=10)
        assert r.status_code == 204 or all(
            bid["cid"] != campaign_id for bid in r.json()["seatbid"][0]["bid"]
        ), (changes, r.text)
    assert spent(campaign_id) == before


def _body(placement: str, **changes) -> dict:
    device = {
        "devicetype": changes.pop("devicetype", 4),
        "geo": {"country": changes.pop("country", "USA")},
    }
    return {
        "id": "py-1",
        "imp": [_imp(placement)],
        "site": {"id": "site-e2e"},
        "device": device,
        "user": {"id": "ortb-user-2", "yob": changes.pop("yob", 1990)},
        **changes,
    }


def _imp(placement: str, **changes) -> dict:
    return {"id": "1", "tagid": placement, "banner": {"w": 300, "h": 250}, **changes}


def _valid(placement: str) -> dict:
    return _body(placement)


IMP = {"id": "1", "tagid": "@placement", "banner": {}}
MALFORMED = [
    ("not JSON", b'{"id": "x", "imp": ['),
    ("empty body", b""),
    ("a JSON array", b"[]"),
    ("no imp", {"imp": []}),
    ("imp id a number", {"imp": [{**IMP, "id": 1}]}),
    ("bidfloor as text", {"imp": [{**IMP, "bidfloor": "1"}]}),
    ("yob in the future", {"user": {"id": "u", "yob": 3000}}),
    ("nested 100,000 deep in an ext", b'{"id":"x","ext":' + b"[" * 100_000 + b"]" * 100_000),
]


def _malformed(placement: str, changes: bytes | dict) -> bytes:
    if isinstance(changes, bytes):
        return changes
    return json.dumps({**_valid(placement), **changes}).replace("@placement", placement).encode()


@pytest.mark.parametrize(("label", "changes"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_bid_request_is_a_400_that_moves_no_money(campaign, label, changes):
    placement, campaign_id = campaign
    before = spent(campaign_id)
    r = requests.post(
        OPENRTB,
        data=_malformed(placement, changes),
        headers={"Content-Type": "application/json", "X-Request-Id": "ortb-bad-1"},
        timeout=10,
    )
    assert r.status_code == 400, (label, r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error", "message", "requestId"} and body["requestId"] == "ortb-bad-1"
    assert body["error"] == "INVALID_REQUEST" and body["message"]
    assert spent(campaign_id) == before


def test_forged_and_unusable_notices_are_refused_and_record_nothing(campaign):
    placement, campaign_id = campaign
    r = requests.post(OPENRTB, json=_valid(placement), timeout=10)
    assert r.status_code == 200, r.text
    [bid] = r.json()["seatbid"][0]["bid"]
    after_bid = spent(campaign_id)
    win = bid["nurl"]
    token = parse_qs(urlsplit(win).query)["t"][0]
    notices = RedisNoticeLog(redis_client())
    refused = [
        (win.replace("${AUCTION_PRICE}", "1"), None),  # sanity: the genuine one, last
        (win.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB")), 400),
        (win.replace("t=", "x="), 400),
        (win.replace("${AUCTION_PRICE}", "1600"), 400),  # above our bid of 1500
        (win.replace("${AUCTION_PRICE}", "1e3"), 400),
    ]
    for url, status in refused[1:]:
        answer = requests.get(url, timeout=10)
        assert answer.status_code == status, (url, answer.text)
        assert set(answer.json()) == {"error", "message", "requestId"}
    assert notices.read(bid["id"], "win") is None
    genuine = requests.get(refused[0][0], timeout=10)
    assert genuine.status_code == 204 and genuine.headers["X-Notice-Recorded"] == "true"
    # A billing notice with ${AUCTION_PRICE} left in place is never refused: it settles the
    # reservation at our bid, which is what it held.
    assert requests.get(bid["burl"], timeout=10).status_code == 204
    assert spent(campaign_id) == after_bid


def _post(body: dict | bytes, **headers: str) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **headers}
    return requests.post(OPENRTB, data=data, headers=headers, timeout=10)


def _our_bids(response: requests.Response, campaign_id: str) -> list[dict]:
    assert response.status_code == 200, response.text[:300]
    seats = response.json().get("seatbid", [])
    return [bid for seat in seats for bid in seat["bid"] if bid["cid"] == campaign_id]


def test_what_exchanges_really_send_is_bid_on_imp_by_imp(campaign):
    placement, campaign_id = campaign
    good, zero = _imp(placement), {"id": "2", "tagid": placement, "banner": {"w": 0, "h": 0}}
    mixed = _body(placement, imp=[good, zero, {"id": 3}])
    [bid] = _our_bids(_post(mixed), campaign_id)
    assert bid["impid"] == "1" and bid["mtype"] == 1 and (bid["w"], bid["h"]) == (300, 250)
    # Notices sit on the public base URL, the one click URLs use, never the internal address.
    assert urlsplit(bid["nurl"]).netloc == urlsplit(GATEWAY).netloc
    assert urlsplit(bid["burl"]).path.endswith("/function/openrtb/bill")
    gzipped = gzip.compress(json.dumps(_body(placement)).encode())
    assert _our_bids(_post(gzipped, **{"Content-Encoding": "gzip"}), campaign_id)
    bomb = gzip.compress(b" " * (1024 * 1024))
    assert _post(bomb, **{"Content-Encoding": "gzip"}).status_code == 413


def test_a_placement_is_derived_from_the_site_domain_when_no_id_is_sent(campaign):
    placement, campaign_id = campaign
    body = _body(placement, site={"domain": placement, "page": "https://x.example/"})
    body["imp"] = [{"id": "1", "banner": {"format": [{"w": 320, "h": 50}]}}]
    [bid] = _our_bids(_post(body), campaign_id)
    assert (bid["w"], bid["h"]) == (320, 50)


def test_no_time_site_and_app_or_an_unknown_currency_is_a_no_bid_with_its_reason(campaign):
    placement, campaign_id = campaign
    before = spent(campaign_id)
    unknown = _body(placement, imp=[_imp(placement, bidfloor=1, bidfloorcur="XYZ")])
    for body, nbr in (
        (_body(placement, tmax=1), 15),
        (_body(placement, app={"id": "a"}), 2),
        (unknown, 500),
    ):
        answer = _post(body)
        assert answer.status_code == 200 and answer.json() == {"id": "py-1", "nbr": nbr}
    assert spent(campaign_id) == before
