"""The analytics API through the gateway: auth, the specification's shape, exact numbers, the
cache, 4xx, and the whole path: an ad served and clicked shows in analytics within a second.

Apart from that last test, numbers are planted where the pipeline would put them:
daily_metrics rows in PostgreSQL for closed days, the live counters (``stats::*``) in Redis
database 0 for today; those campaigns are created paused through the campaigns API (no auction
ever picks them). Every campaign is ended afterwards and the Redis keys made here are removed.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import redis
import requests

from localplatform import secrets
from localplatform.components.postgres import connect
from localplatform.profile import PROFILES
from shared_layer.pipeline.store.live_counters import READY_KEY, stats_key
from tests.e2e.test_bid_support import GATEWAY, Campaigns, campaign_body, unique_placement
from tests.support import wait_for

PROFILE = PROFILES[os.environ.get("ADS_PROFILE", "test")]
ADVERTISER = "6f1c2a0e-8e4b-4c1e-9a57-3f1f2b8d9c10"
_MADE: list[str] = []


@pytest.fixture(scope="module")
def token(platform) -> str:
    return secrets.read(platform.profile, "campaigns-admin-token")


@pytest.fixture(scope="module")
def rdb(platform) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(platform.profile.host_env()["REDIS_URL"], socket_timeout=5)
    yield client
    for campaign_id in _MADE:
        for pattern in (f"analytics::{campaign_id}::*", f"stats::*::{campaign_id}::*"):
            keys = list(client.scan_iter(pattern))
            if keys:
                client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def campaigns(platform, token) -> Iterator[Any]:
    base = f"{platform.gateway}/function/campaigns"
    headers = {"Authorization": f"Bearer {token}"}

    def create() -> str:
        body = {
            "advertiserId": ADVERTISER,
            "name": f"analytics e2e {uuid.uuid4().hex[:6]}",
            "status": "paused",
            "cpmBid": 2.5,
            "dailyBudget": 100,
            "targetingRules": [{"ruleType": "placement", "ruleValue": "analytics-e2e-never"}],
            "ads": [
                {
                    "title": "Analytics",
                    "imageUrl": "https://cdn.example.com/a.png",
                    "redirectUrl": "https://example.com/a",
                }
            ],
        }
        r = requests.post(f"{base}/", json=body, headers=headers, timeout=10)
        assert r.status_code == 201, r.text
        _MADE.append(r.json()["id"])
        return r.json()["id"]

    def end(campaign_id: str) -> None:
        r = requests.delete(f"{base}/{campaign_id}", headers=headers, timeout=10)
        assert r.status_code == 204, r.text

    create.end = end  # type: ignore[attr-defined]
    yield create
    for campaign_id in _MADE:
        end(campaign_id)


@pytest.fixture(scope="module")
def analytics(platform, token) -> Any:
    base = f"{platform.gateway}/function/analytics"

    def get(path: str, auth: str | None = f"Bearer {token}", **params: str) -> requests.Response:
        headers = {"Authorization": auth} if auth is not None else {}
        return requests.get(base + path, params=params, headers=headers, timeout=10)

    return get


def today() -> date:
    """Today (UTC), away from midnight, so that "today" is the same day for test and function."""
    now = datetime.now(UTC)
    to_midnight = datetime.combine(now.date() + timedelta(1), datetime.min.time(), UTC) - now
    if to_midnight < timedelta(seconds=20):
        time.sleep(to_midnight.total_seconds() + 1)
    return datetime.now(UTC).date()


def plant_rows(campaign_id: str, rows: dict[date, tuple[int, int, str]]) -> None:
    conn = connect(PROFILE)
    try:
        for day, (impressions, clicks, spend) in rows.items():
            conn.run(
                "INSERT INTO daily_metrics (campaign_id, date, impressions, clicks, spend)"
                " VALUES (CAST(:c AS uuid), :d, :i, :k, CAST(:s AS numeric))"
                " ON CONFLICT (campaign_id, date) DO UPDATE SET impressions = EXCLUDED.impressions,"
                " clicks = EXCLUDED.clicks, spend = EXCLUDED.spend",
                c=campaign_id,
                d=day,
                i=impressions,
                k=clicks,
                s=spend,
            )
    finally:
        conn.close()


def assert_error(r: requests.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "message", "requestId"} and body["error"] == code
    assert body["requestId"] == r.headers["X-Request-Id"]


def test_without_a_key_or_with_an_unknown_one_401(analytics):
    path = f"/campaign/{uuid.uuid4()}"
    dates = {"startDate": "2025-11-01", "endDate": "2025-11-29"}
    assert_error(analytics(path, auth=None, **dates), 401, "UNAUTHORIZED")
    assert_error(analytics(path, auth="Basic YWRtaW46YWRtaW4=", **dates), 401, "UNAUTHORIZED")
    assert_error(analytics(path, auth="Bearer ", **dates), 401, "UNAUTHORIZED")
    assert_error(analytics(path, auth="Bearer not-the-token", **dates), 401, "UNAUTHORIZED")


def test_a_report_has_the_seeds_shape_and_exact_numbers(analytics, campaigns, rdb):
    day = today()
    campaign_id = campaigns()
    plant_rows(
        campaign_id,
        {day - timedelta(3): (1000, 25, "2.500000"), day - timedelta(1): (3, 1, "0.007501")},
    )
    rdb.set(stats_key("impressions", campaign_id, day), 40)
    rdb.set(stats_key("clicks", campaign_id, day), 1)
    rdb.set(stats_key("spend", campaign_id, day), 100_000)
    # On a fresh platform no batch has yet made the counters ready (nothing lost to rebuild):
    # planted counters are served only once they are.
    rdb.set(READY_KEY, "e2e", nx=True)
    start, end = day - timedelta(4), day + timedelta(1)

    r = analytics(f"/campaign/{campaign_id}", startDate=start.isoformat(), endDate=end.isoformat())

    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json(parse_float=Decimal)
    assert body["campaignId"] == campaign_id
    assert body["dateRange"] == {"start": start.isoformat(), "end": end.isoformat()}
    assert body["summary"] == {
        "totalImpressions": 1043,
        "houseImpressions": 0,  # a standard campaign's
        "totalClicks": 27,
        "ctr": Decimal("2.5887"),  # 27 / 1043, in percent, half up
        "totalSpend": Decimal("2.607501"),
        "totalSpendMicros": 2_607_501,
        "cpc": Decimal("0.096574"),
        "cpm": Decimal("2.500001"),
    }
    assert body["partial"] is False and body["missingDates"] == []
    daily = {d["date"]: d for d in body["dailyMetrics"]}
    assert list(daily) == [(start + timedelta(n)).isoformat() for n in range(6)]
    assert daily[(day - timedelta(3)).isoformat()] == {
        "date": (day - timedelta(3)).isoformat(),
        "impressions": 1000,
        "clicks": 25,
        "ctr": Decimal("2.5"),
        "spend": Decimal("2.5"),
        "spendMicros": 2_500_000,
        "cpc": Decimal("0.1"),
        "cpm": Decimal("2.5"),
        "houseImpressions": 0,
    }
    quiet = daily[(day - timedelta(2)).isoformat()]
    assert (quiet["impressions"], quiet["clicks"], quiet["spendMicros"]) == (0, 0, 0)
    assert (quiet["ctr"], quiet["cpc"], quiet["cpm"]) == (None, None, None)
    live = daily[day.isoformat()]  # today: the live counters
    assert body["source"] == "live"
    assert (live["impressions"], live["clicks"], live["spendMicros"]) == (40, 1, 100_000)
    tomorrow = daily[(day + timedelta(1)).isoformat()]
    assert (tomorrow["impressions"], tomorrow["spendMicros"]) == (0, 0)


def test_closed_days_are_served_from_the_cache_until_it_expires(analytics, campaigns, rdb):
    closed = today() - timedelta(5)
    campaign_id = campaigns()
    plant_rows(campaign_id, {closed: (10, 1, "0.010000")})
    one_day = {"startDate": closed.isoformat(), "endDate": closed.isoformat()}

    def impressions() -> int:
        r = analytics(f"/campaign/{campaign_id}", **one_day)
        assert r.status_code == 200, r.text
        return r.json()["summary"]["totalImpressions"]

    assert impressions() == 10
    key = f"analytics::{campaign_id}::{closed.isoformat()}"
    assert 0 < rdb.ttl(key) <= 3600
    plant_rows(campaign_id, {closed: (99, 1, "0.010000")})
    assert impressions() == 10  # cached
    rdb.delete(key)
    assert impressions() == 99


def test_ids_are_case_insensitive_and_ended_campaigns_still_report(analytics, campaigns):
    closed = today() - timedelta(2)
    campaign_id = campaigns()
    plant_rows(campaign_id, {closed: (7, 0, "0.000700")})
    campaigns.end(campaign_id)
    r = analytics(
        f"/campaign/{campaign_id.upper()}",
        startDate=closed.isoformat(),
        endDate=closed.isoformat(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["campaignId"] == campaign_id
    assert r.json()["summary"]["totalSpendMicros"] == 700


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"startDate": "2025-11-01"},
        {"endDate": "2025-11-01"},
        {"startDate": "2025-11-31", "endDate": "2025-12-01"},
        {"startDate": "11/01/2025", "endDate": "2025-12-01"},
        {"startDate": "2025-11-30", "endDate": "2025-11-29"},
        {"startDate": "2024-01-01", "endDate": "2025-01-01"},  # 367 days
    ],
)
def test_bad_ranges_are_a_400(analytics, params):
    r = analytics(f"/campaign/{uuid.uuid4()}", **params)
    assert_error(r, 400, "INVALID_REQUEST")


@pytest.mark.parametrize("campaign_id", [str(uuid.uuid4()), "campaign-456", "%20"])
def test_an_unknown_campaign_is_a_404(analytics, campaign_id):
    r = analytics(f"/campaign/{campaign_id}", startDate="2025-11-01", endDate="2025-11-29")
    assert_error(r, 404, "NOT_FOUND")


def test_the_longest_range_lists_every_day(analytics, campaigns):
    campaign_id = campaigns()
    r = analytics(f"/campaign/{campaign_id}", startDate="2024-01-01", endDate="2024-12-31")
    assert r.status_code == 200, r.text
    assert len(r.json()["dailyMetrics"]) == 366
    assert r.json()["summary"]["ctr"] is None  # no impressions: no rate


def test_a_served_ad_and_its_click_show_in_analytics_within_a_second(analytics, campaigns):
    placement = unique_placement("analytics-flow")
    campaign_id = Campaigns().create(
        campaign_body(cpm="1500", daily="1000", rules=[("placement", placement)])
    )
    _MADE.append(campaign_id)  # ended and its keys removed with the others
    day = today().isoformat()
    served = requests.get(
        f"{GATEWAY}/function/serve",
        params={"userId": "analytics-flow-user", "placementId": placement},
        timeout=10,
    )
    assert served.status_code == 200, (served.status_code, served.headers, served.text)
    ad = served.json()
    assert ad["campaignId"] == campaign_id
    clicked = requests.get(ad["clickTrackingUrl"], allow_redirects=False, timeout=10)
    assert clicked.status_code == 302, clicked.text
    clicked_at = time.monotonic()

    def both_counted() -> dict | None:
        r = analytics(f"/campaign/{campaign_id}", startDate=day, endDate=day)
        summary = r.json()["summary"] if r.status_code == 200 else {}
        counted = (summary.get("totalImpressions"), summary.get("totalClicks")) == (1, 1)
        return summary if counted else None

    summary = wait_for(both_counted, timeout_s=1.0, interval_s=0.05)
    waited = time.monotonic() - clicked_at
    assert summary is not None, f"not both counted {waited:.2f} s after the click"
    assert summary["totalSpendMicros"] == 1_500_000  # a CPM of 1500 / 1000 = 1.5 units
