"""Privacy signals on the real platform: after each request, Redis, events_log and the log-level
export's files hold exactly what the rules allow (docs/openrtb.md "Privacy signals").

Each case bids for a campaign with a frequency cap (which would keep the user's impression time
in Redis), wins, and is settled by its billing notice (which records the impression). With no
signal, or TCF v2 consent to purposes 1, 3 and 4 for our vendor (the test platform's
TCF_VENDOR_ID), or to purpose 1 alone, the user's id is in the frequency key, in events_log and
in the export; with GDPR and no consent, with consent to purposes 3 and 4 only or for another
vendor, with COPPA, with ``lmt`` and with a US privacy opt-out of sale, in the 2.6 and the 2.5
places, the user's id is in none of them: we assert its absence, not only the decision. A
campaign that targets an interest and an age range bids only where personalising is allowed
(no signal, purposes 3 and 4, ``lmt``), never with purpose 1 alone, COPPA or an opt-out.

The export's files are read as a user reads them: every object under the prefix, from the S3
bucket, unzipped. The hours that hold the cases' impressions are written by the export's own code
(LogExport and its ledger's SQL) into a prefix of this run, without waiting for the hour to
close; the ledger rows it made are removed afterwards, so the platform's export still writes
those hours when they close.
"""

from __future__ import annotations

import gzip
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from localplatform.components.postgres import connect
from localplatform.components.s3 import BUCKET, S3
from shared_layer.export.domain.log_export import ExportHour
from shared_layer.export.service.log_export import LogExport
from shared_layer.export.store.export_ledger import ExportLedger
from tests.e2e.test_bid_support import (
    GATEWAY,
    PROFILE,
    Campaigns,
    campaign_body,
    redis_client,
    unique_placement,
)
from tests.integration.campaign_support import database
from tests.integration.log_export_support import bucket
from tests.support import wait_for
from tests.unit import tcf_vectors as tcf

OPENRTB = f"{GATEWAY}/function/openrtb"
CASES = {
    "no signal": ({}, {}, {}),
    "tcf purposes 1 3 4": ({"gdpr": 1}, {"consent": tcf.ALL}, {}),
    "tcf purposes 1 3 4, 2.5": ({"ext": {"gdpr": 1}}, {"ext": {"consent": tcf.ALL}}, {}),
    "tcf purpose 1 only": ({"gdpr": 1}, {"consent": tcf.STORAGE_ONLY}, {}),
    "tcf purposes 3 4 only": ({"gdpr": 1}, {"consent": tcf.PROFILE_ONLY}, {}),
    "tcf another vendor": ({"gdpr": 1}, {"consent": tcf.NOT_OUR_VENDOR}, {}),
    "gdpr without consent": ({"gdpr": 1}, {}, {}),
    "gdpr without consent, 2.5": ({"ext": {"gdpr": 1}}, {"ext": {"consent": "garbage"}}, {}),
    "coppa": ({"coppa": 1}, {}, {}),
    "lmt": ({}, {}, {"lmt": 1}),
    "us privacy 1YY-": ({"us_privacy": "1YY-"}, {}, {}),
    "us privacy 1YY-, 2.5": ({"ext": {"us_privacy": "1YY-"}}, {}, {}),
}


STORED = {"no signal", "tcf purposes 1 3 4", "tcf purposes 1 3 4, 2.5", "tcf purpose 1 only"}
PERSONALISED = {"no signal", "tcf purposes 1 3 4", "tcf purposes 1 3 4, 2.5",
                "tcf purposes 3 4 only", "lmt"}  # fmt: skip


@pytest.fixture(scope="module")
def campaign() -> tuple[str, str]:
    placement = unique_placement("privacy")
    body = campaign_body(cpm="1700", daily="500", rules=[("placement", placement)])
    body["frequencyCap"] = {"impressions": 100, "windowSeconds": 3600}
    return placement, Campaigns().create(body)


@dataclass(frozen=True)
class Outcome:
    user_id: str  # the id the request carried
    request_id: str
    impression_id: str  # the bid's id, which is the impression event's id


@pytest.fixture(scope="module")
def outcomes(campaign: tuple[str, str]) -> dict[str, Outcome]:
    """Every case bid on, won and settled; then each impression waited for in events_log."""
    placement, campaign_id = campaign
    made: dict[str, Outcome] = {}
    for case, (regs, user, device) in CASES.items():
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
        assert answer.status_code == 200, (case, answer.text)
        [bid] = answer.json()["seatbid"][0]["bid"]
        assert bid["cid"] == campaign_id, case
        settled = requests.get(bid["burl"].replace("${AUCTION_PRICE}", "1500"), timeout=10)
        assert settled.status_code == 204, case
        made[case] = Outcome(user_id, body["id"], bid["id"])
    ids = [o.impression_id for o in made.values()]
    assert wait_for(lambda: len(_logged(ids)) == len(ids), timeout_s=60), _logged(ids)
    return made


def _logged(event_ids: list[str]) -> dict[str, tuple[str, datetime]]:
    """events_log's user id and time of each of `event_ids` it holds."""
    conn = connect(PROFILE)
    try:
        rows = conn.run(
            "SELECT CAST(event_id AS text), user_id, timestamp FROM events_log"
            " WHERE event_id = ANY(CAST(:ids AS uuid[]))",
            ids=event_ids,
        )
    finally:
        conn.close()
    return {row[0]: (row[1], row[2].replace(tzinfo=UTC)) for row in rows}  # a UTC TIMESTAMP


@pytest.mark.parametrize("case", list(CASES))
def test_redis_and_events_log_hold_no_user_id_without_the_right_to_store_it(outcomes, case):
    made = outcomes[case]
    stored_user, _ = _logged([made.impression_id])[made.impression_id]
    in_redis = [k for k in redis_client().scan_iter(match=f"frequency::*{made.user_id}*")]
    if case in STORED:
        assert stored_user == made.user_id and len(in_redis) == 1
    else:
        assert stored_user == f"anon:{made.request_id}", stored_user
        assert in_redis == [], in_redis
        assert not [k for k in redis_client().scan_iter(match=f"*{made.user_id}*")]


@pytest.fixture(scope="module")
def personal_campaign() -> tuple[str, str, str]:
    """A campaign that targets an interest and an age range only (and its own placement)."""
    placement, interest = unique_placement("privacy-personal"), unique_placement("interest")
    rules = [("placement", placement), ("interest", interest), ("age_range", "25-34")]
    body = campaign_body(cpm="1750", daily="500", rules=rules)
    return placement, interest, Campaigns().create(body)


@pytest.mark.parametrize("case", list(CASES))
def test_interest_and_age_target_only_with_the_right_to_personalise(personal_campaign, case):
    placement, interest, campaign_id = personal_campaign
    regs, user, device = CASES[case]
    body = {
        "id": f"privacy-{uuid.uuid4().hex[:8]}",
        "imp": [{"id": "1", "tagid": placement, "banner": {"w": 300, "h": 250}}],
        "site": {"id": "site-privacy"},
        "device": {"devicetype": 4, "geo": {"country": "DEU"}, **device},
        "user": {"id": f"privacy-user-{uuid.uuid4().hex[:8]}", "keywords": interest,
                 "yob": datetime.now(UTC).year - 30, **user},
        "regs": regs,
    }  # fmt: skip
    answer = requests.post(OPENRTB, json=body, timeout=10)
    assert answer.status_code in (200, 204), answer.text
    bids = answer.json().get("seatbid", []) if answer.status_code == 200 else []
    ours = [b for seat in bids for b in seat["bid"] if b["cid"] == campaign_id]
    assert bool(ours) == (case in PERSONALISED), (case, answer.text)


def test_the_export_files_hold_no_user_id_without_the_right_to_store_it(outcomes):
    logged = _logged([o.impression_id for o in outcomes.values()])
    hours = {ExportHour("impression", at.replace(minute=0, second=0, microsecond=0))
             for _, at in logged.values()}  # fmt: skip
    files = _exported(hours, prefix=f"privacy-{uuid.uuid4().hex[:8]}/")
    records = {
        record["eventId"]: record
        for key, text in files.items()
        if key.endswith(".json.gz")
        for record in map(json.loads, text.splitlines())
    }
    for case, made in outcomes.items():
        exported = records[made.impression_id]  # every impression is in the files
        if case in STORED:
            assert exported["userId"] == made.user_id, case
        else:
            assert exported["userId"] == f"anon:{made.request_id}", (case, exported)
            holding = [key for key, text in files.items() if made.user_id in text]
            assert holding == [], (case, holding)


def _exported(hours: set[ExportHour], prefix: str) -> dict[str, str]:
    """Export `hours` with the export's own code into `prefix`, then read back every file under
    `prefix` from the bucket as a user would: key -> its text (parts unzipped)."""
    pool = database()

    class TheseHours(ExportLedger):  # the real ledger, asked for these hours only
        def pending(self, since: datetime, until: datetime) -> list[ExportHour]:
            return sorted(hours, key=lambda h: h.start)

    try:
        export = LogExport(TheseHours(pool), bucket(), prefix=prefix, records_per_part=1_000,
                           grace=timedelta(0))  # fmt: skip
        report = export.run(max(h.end for h in hours))
        assert {e.hour for e in report.exported} == hours, report
    finally:
        pool.run("DELETE FROM log_export_hours WHERE manifest_key LIKE :p", p=f"{prefix}%")
        pool.close()
    s3: Any = S3(PROFILE).client()  # boto3, as a user of the bucket reads it
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    files = {}
    for entry in listed:
        body = s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
        files[entry["Key"]] = (gzip.decompress(body) if entry["Key"].endswith(".gz") else body
                               ).decode()  # fmt: skip
    assert len(files) > len(hours), files.keys()  # every hour: its parts and its manifest
    return files
