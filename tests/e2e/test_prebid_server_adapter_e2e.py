"""The Prebid Server adapter (infra/prebid-server) against our real openrtb function
through the gateway: a probe built in Prebid Server's tree (tests/e2e/prebid_adapter_probe) runs
the adapter's MakeRequests, sends what it produces, and runs MakeBids on the answers, as Prebid
Server does. Here: our function answers the adapter's requests with valid BidResponses, the bids
the adapter makes of them carry mtype and resolved prices, and their resolved notices are
accepted; a no-bid is no bid, and a request we refuse is the adapter's bad-input error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from localplatform import toolchain
from tests.e2e.test_bid_support import GATEWAY, Campaigns, campaign_body, unique_placement

OPENRTB = f"{GATEWAY}/function/openrtb"
REPO = Path(__file__).resolve().parents[2]
PROBE_SOURCE = Path(__file__).parent / "prebid_adapter_probe" / "main.go"
CPM = "1500"  # per the isolation rule of test_bid_support: far above other suites' campaigns


@pytest.fixture(scope="module")
def probe() -> Path:
    """The probe, built in the pinned Prebid Server tree with the adapter installed."""
    prepared = subprocess.run(
        [sys.executable, str(REPO / "infra" / "prebid-server" / "pbs_tree.py")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert prepared.returncode == 0, prepared.stderr
    tree = Path(prepared.stdout.strip())
    (tree / "cmd" / "openfaasads-probe").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROBE_SOURCE, tree / "cmd" / "openfaasads-probe" / "main.go")
    out = toolchain.bin_path("openfaasads-probe")
    build = subprocess.run(
        ["go", "build", "-o", str(out), "./cmd/openfaasads-probe"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr
    return out


@pytest.fixture(scope="module")
def placement() -> str:
    placement = unique_placement("pbs")
    Campaigns().create(
        campaign_body(cpm=CPM, daily="500", lifetime="600", rules=[("placement", placement)])
    )
    return placement


def run_probe(probe: Path, *bid_requests: dict) -> list[dict]:
    run = subprocess.run(
        [str(probe)],
        input=json.dumps({"endpoint": OPENRTB, "requests": list(bid_requests)}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def bid_request(request_id: str, imps: list[dict], **changes) -> dict:
    """A BidRequest as Prebid Server hands it to the adapter: imp.ext.bidder holds our params."""
    body = {
        "id": request_id,
        "tmax": 500,
        "cur": ["USD"],
        "imp": imps,
        "site": {"page": "https://news.example.com/a", "domain": "news.example.com"},
        "device": {"devicetype": 4, "ua": "Mozilla/5.0", "geo": {"country": "USA"}},
        "user": {"id": "pbs-user-1"},
    }
    return {**body, **changes}


def banner(imp_id: str, placement: str, **changes) -> dict:
    imp = {
        "id": imp_id,
        "banner": {"format": [{"w": 300, "h": 250}, {"w": 320, "h": 50}]},
        "ext": {"bidder": {"placementId": placement}},
    }
    return {**imp, **changes}


def test_our_function_bids_on_what_the_adapter_sends_and_the_adapter_makes_typed_priced_bids(
    probe, placement
):
    video = {"id": "v", "video": {"mimes": ["video/mp4"]}, "ext": banner("v", placement)["ext"]}
    [result] = run_probe(
        probe, bid_request("pbs-e2e-1", [banner("1", placement), banner("2", placement), video])
    )
    assert result["makeRequestsErrors"] == ["imp v: openfaasads bids on banner impressions only"]
    # One request for both banner imps, each with its placement as tagid; the video imp unsent.
    [call] = result["calls"]
    assert [(imp["id"], imp["tagid"]) for imp in call["body"]["imp"]] == [
        ("1", placement),
        ("2", placement),
    ]
    assert call["status"] == 200, call["answer"]
    answer = json.loads(call["answer"])
    assert answer["id"] == "pbs-e2e-1"
    answered = [bid for seat in answer["seatbid"] for bid in seat["bid"]]
    assert sorted(bid["impid"] for bid in answered) == ["1", "2"]
    for bid in answered:
        assert bid["id"] and bid["crid"] and bid["price"] == 1500 and bid["adm"]
        assert (bid["w"], bid["h"]) == (300, 250)

    assert result["makeBidsErrors"] == [] and result["currencies"] == ["USD"]
    assert sorted(bid["bid"]["impid"] for bid in result["bids"]) == ["1", "2"]
    for typed in result["bids"]:
        bid = typed["bid"]
        assert typed["type"] == "banner" and bid["mtype"] == 1
        for field in ("nurl", "burl", "adm"):
            assert "${" not in bid[field], (field, bid[field])
        for notice in (bid["nurl"], bid["burl"]):
            assert parse_qs(urlsplit(notice).query)["price"] == ["1500"]
            # What Prebid Server's caller would fire: our function takes it as it is.
            fired = requests.get(notice, timeout=10)
            assert 200 <= fired.status_code < 300, (notice, fired.status_code, fired.text)


def test_a_no_bid_from_our_function_is_no_bid_and_no_error(probe, placement):
    [result] = run_probe(probe, bid_request("pbs-e2e-2", [banner("1", placement, bidfloor=10**6)]))
    [call] = result["calls"]
    assert (call["status"], call["answer"]) == (204, "")
    assert result["bids"] == [] and result["makeBidsErrors"] == []


def test_a_request_our_function_refuses_is_the_adapters_bad_input_error(probe, placement):
    # A birth year in the future: each imp is judged alone, but a bad user is the whole request's.
    future = {"id": "pbs-user-1", "yob": 3000}
    [result] = run_probe(probe, bid_request("pbs-e2e-3", [banner("1", placement)], user=future))
    [call] = result["calls"]
    assert call["status"] == 400, call["answer"]
    assert result["bids"] == []
    [error] = result["makeBidsErrors"]
    assert error.startswith("openfaasads refused the request: status 400, "), error
    assert json.loads(call["answer"])["message"] in error
