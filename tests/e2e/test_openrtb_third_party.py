"""Third-party BidRequests through the gateway: what Prebid Server really sends gets a valid
BidResponse or a 204 from `openrtb`, never a 400, while an eligible campaign exists.

The requests come from Prebid Server's own source, the pinned archive in OPENFAAS_SOURCES_DIR
(its sha256 checked against the folder's SHA256SUMS; never the network): the sample requests
under endpoints/openrtb2/sample-requests/valid-whole/ (``mockBidRequest``, with
``imp[].ext.prebid`` removed, as Prebid Server removes it before a bidder sees the request), and
the bodies its adapters really send (``httpCalls[].expectedRequest.body`` of every adapter's
exemplary fixtures that are OpenRTB BidRequests; adapters with a format of their own are left
out and counted). The test prints how many of each it sent and what came back.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.test_bid_support import GATEWAY, Campaigns, campaign_body

OPENRTB = f"{GATEWAY}/function/openrtb"
ARCHIVE = "prebid-server-0ba352315253.tar.gz"
SAMPLES = re.compile(r"^[^/]+/endpoints/openrtb2/sample-requests/valid-whole/.+\.json$")
ADAPTERS = re.compile(r"^[^/]+/adapters/[^/]+/[^/]+test/exemplary/.+\.json$")


def _archive() -> Path:
    folder = os.environ.get("OPENFAAS_SOURCES_DIR")
    assert folder, "OPENFAAS_SOURCES_DIR must name the folder of the pinned upstream archives"
    path = Path(folder) / ARCHIVE
    sums = dict(
        reversed(line.split()) for line in (Path(folder) / "SHA256SUMS").read_text().splitlines()
    )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[ARCHIVE], "archive altered"
    return path


def third_party_requests() -> Iterator[tuple[str, str, dict]]:
    """(kind, file, BidRequest) for every sample request and adapter body in the archive."""
    with tarfile.open(_archive()) as archive:
        for member in archive:
            kind = (
                "sample"
                if SAMPLES.match(member.name)
                else "adapter"
                if ADAPTERS.match(member.name)
                else None
            )
            if kind is None or not member.isfile():
                continue
            try:
                fixture = json.load(io.BytesIO(archive.extractfile(member).read()))
            except ValueError:
                continue  # a fixture that is not JSON is no request
            if kind == "sample":
                request = fixture.get("mockBidRequest")
                for imp in (request or {}).get("imp", []):
                    if isinstance(imp, dict) and isinstance(imp.get("ext"), dict):
                        imp["ext"].pop("prebid", None)
                yield kind, member.name, request
            else:
                for call in fixture.get("httpCalls") or []:
                    yield kind, member.name, (call.get("expectedRequest") or {}).get("body")


def _is_bid_request(body: object) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("id"), str)
        and isinstance(body.get("imp"), list)
        and all(isinstance(imp, dict) and "id" in imp for imp in body["imp"])
    )


@pytest.fixture(scope="module")
def eligible_campaign() -> Iterator[str]:
    """An untargeted campaign any of these requests may win; paused afterwards, so that it never
    wins another suite's requests."""
    campaigns = Campaigns()
    campaign_id = campaigns.create(campaign_body(cpm="40", daily="100000", lifetime="100000"))
    yield campaign_id
    campaigns.pause(campaign_id)


def test_prebid_servers_requests_get_a_bid_response_or_a_204_never_a_400(eligible_campaign):
    sent: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    problems: list[str] = []
    ours = 0
    with requests.Session() as session:
        for kind, name, body in third_party_requests():
            if not _is_bid_request(body):
                seen[f"{kind}: not an OpenRTB BidRequest (left out)"] += 1
                continue
            sent[kind] += 1
            answer = session.post(OPENRTB, json=body, timeout=10)
            seen[f"{kind}: {answer.status_code}"] += 1
            if answer.status_code == 204:
                continue
            if answer.status_code != 200:
                problems.append(f"{name}: {answer.status_code} {answer.text[:200]}")
                continue
            response = answer.json()
            imp_ids = {imp["id"] for imp in body["imp"]}
            bids = [bid for seat in response.get("seatbid", []) for bid in seat["bid"]]
            if response.get("id") != body["id"] or not (bids or "nbr" in response):
                problems.append(f"{name}: not a BidResponse for it: {answer.text[:200]}")
            for bid in bids:
                if bid["impid"] not in imp_ids or bid["price"] <= 0 or bid["mtype"] != 1:
                    problems.append(f"{name}: a bid that is not for it: {bid}")
            ours += sum(bid["cid"] == eligible_campaign for bid in bids)
    print(f"\nthird-party BidRequests sent: {dict(sent)}; answers: {dict(sorted(seen.items()))};"
          f" bids of the eligible campaign: {ours}")  # fmt: skip
    assert problems == [], "\n".join(problems[:20])
    assert sent["sample"] >= 40 and sent["adapter"] >= 500, sent
    assert ours > 0
