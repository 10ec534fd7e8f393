"""Privacy signals on the real platform: after each request, Redis and events_log hold exactly what
the rules allow (docs/openrtb.md "Privacy signals"). The log-level export is written from
events_log row by row (shared_layer/export/store/export_ledger.py), so what events_log holds is
what the export carries.

Each case bids for a campaign with a frequency cap (which would keep the user's impression time
in Redis), wins, and is settled by its billing notice (which records the impression). With no
signal, or TCF v2 consent to purposes 1, 3 and 4 for our vendor (the test platform's
TCF_VENDOR_ID), the user's id is in the frequency key and in events_log; with GDPR and no
consent, with consent to purposes 3 and 4 only or for another vendor, with
COPPA, with ``lmt`` and with a US privacy opt-out of sale, in the 2.6 and the 2.5 places, the
user's id is in neither: we assert its absence, not only the decision.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from localplatform.components.postgres import connect
from tests.e2e.test_bid_support import (
    GATEWAY,
    PROFILE,
    Campaigns,
    campaign_body,
    redis_client,
    unique_placement,
)
from tests.support import wait_for
from tests.unit import tcf_vectors as tcf

OPENRTB = f"{GATEWAY}/function/openrtb"
CASES = {
    "no signal": ({}, {}, {}),
    "tcf purposes 1 3 4": ({"gdpr": 1}, {"consent": tcf.ALL}, {}),
    "tcf purposes 1 3 4, 2.5": ({"ext": {"gdpr": 1}}, {"ext": {"consent": tcf.ALL}}, {}),
    "tcf purposes 3 4 only": ({"gdpr": 1}, {"consent": tcf.PROFILE_ONLY}, {}),
    "tcf another vendor": ({"gdpr": 1}, {"consent": tcf.NOT_OUR_VENDOR}, {}),
    "gdpr without consent": ({"gdpr": 1}, {}, {}),
    "gdpr without consent, 2.5": ({"ext": {"gdpr": 1}}, {"ext": {"consent": "garbage"}}, {}),
    "coppa": ({"coppa": 1}, {}, {}),
    "lmt": ({}, {}, {"lmt": 1}),
    "us privacy 1YY-": ({"us_privacy": "1YY-"}, {}, {}),
    "us privacy 1YY-, 2.5": ({"ext": {"us_privacy": "1YY-"}}, {}, {}),
}


STORED = {"no signal", "tcf purposes 1 3 4", "tcf purposes 1 3 4, 2.5"}


@pytest.fixture(scope="module")
def campaign() -> tuple[str, str]:
    placement = unique_placement("privacy")
    body = campaign_body(cpm="1700", daily="500", rules=[("placement", placement)])
    body["frequencyCap"] = {"impressions": 100, "windowSeconds": 3600}
    return placement, Campaigns().create(body)


def _impression_user(event_id: str) -> str | None:
    conn = connect(PROFILE)
    try:
        rows = conn.run(
            "SELECT user_id FROM events_log WHERE event_id = CAST(:id AS uuid)", id=event_id
        )
    finally:
        conn.close()
    return rows[0][0] if rows else None


@pytest.mark.parametrize("case", list(CASES))
def test_redis_and_events_log_hold_no_user_id_without_the_right_to_store_it(campaign, case):
    placement, campaign_id = campaign
    regs, user, device = CASES[case]
    user_id = f"privacy-user-{uuid.uuid4().hex[:8]}"
    body = {
        "id": f"privacy-{uuid.uuid4().hex[:8]}",
        "imp": [{"id": "1", "tagid": placement, "banner": {"w": 300, "h": 250}}],
        "site": {"id": "site-privacy"},
        "device": {"devicetype": 4, "geo": {"country": "DEU"}, **device},
        "user": {"id": user_id, **user},
        "regs": regs,
    }
    answer = requests.post(OPENRTB, json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    [bid] = answer.json()["seatbid"][0]["bid"]
    assert bid["cid"] == campaign_id
    settled = requests.get(bid["burl"].replace("${AUCTION_PRICE}", "1500"), timeout=10)
    assert settled.status_code == 204
    assert wait_for(lambda: _impression_user(bid["id"]) is not None, timeout_s=30)
    stored_user = _impression_user(bid["id"])
    in_redis = [k for k in redis_client().scan_iter(match=f"frequency::*{user_id}*")]
    if case in STORED:
        assert stored_user == user_id and len(in_redis) == 1
    else:
        assert stored_user == f"anon:{body['id']}", stored_user
        assert in_redis == [], in_redis
        assert not [k for k in redis_client().scan_iter(match=f"*{user_id}*")]
