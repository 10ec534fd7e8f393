"""The campaigns admin API through the gateway: CRUD, bulk import, auth, validation, limits.

Every campaign made here targets a placement no other test asks for and is ended (DELETE) at the
end of the session, so the bid function's tests never meet it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests

from localplatform import demo_data, secrets
from shared_layer.campaigns.store.cache import ACTIVE_SET_KEY, VERSION_KEY, entry_key

PLACEMENT = f"campaigns-e2e-{uuid.uuid4().hex[:12]}"
_MADE: list[str] = []


@pytest.fixture(scope="module")
def api(platform) -> Iterator[Any]:
    token = secrets.read(platform.profile, "campaigns-admin-token")
    base = f"{platform.gateway}/function/campaigns"

    def call(method: str, path: str = "/", *, auth: str | None = token, **kwargs) -> Any:
        headers = kwargs.pop("headers", {})
        if auth is not None:
            headers["Authorization"] = f"Bearer {auth}"
        r = requests.request(method, base + path, headers=headers, timeout=30, **kwargs)
        if r.status_code == 201 and method == "POST":
            body = r.json()
            _MADE.extend(body.get("ids", [body.get("id")]))
        return r

    yield call
    for campaign_id in _MADE:
        call("DELETE", f"/{campaign_id}")


def fields(advertiser: str | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "advertiserId": advertiser or str(uuid.uuid4()),
        "name": "E2E campaign",
        "cpmBid": 2.5,
        "dailyBudget": 100.00,
        "lifetimeBudget": 1000.50,
        "targetingRules": [
            {"ruleType": "country", "ruleValue": "US"},
            {"ruleType": "placement", "ruleValue": PLACEMENT},
        ],
        "ads": [
            {
                "title": "Amazing Product",
                "imageUrl": "https://cdn.example.com/ads/image.jpg",
                "redirectUrl": "https://example.com/offer?utm_source=ads",
            }
        ],
    }
    body.update(overrides)
    return body


def listed(api, advertiser: str, **query: str) -> list[dict[str, Any]]:
    r = api("GET", "/", params={"advertiserId": advertiser, "limit": "100", **query})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def assert_error(r: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error", "message", "requestId"} and body["error"] == code, body
    return body


def test_create_read_list_update_pause_resume_delete(api, platform):
    advertiser = str(uuid.uuid4())
    r = api("POST", "/", json=fields(advertiser))
    assert r.status_code == 201, r.text
    created = r.json()
    cid = created["id"]
    assert r.headers["Location"] == f"/function/campaigns/{cid}"
    assert (created["cpmBid"], created["dailyBudget"], created["lifetimeBudget"]) == (
        2.5,
        100,
        1000.5,
    )
    assert created["status"] == "active" and created["ads"][0]["campaignId"] == cid
    assert api("GET", f"/{cid}").json() == created
    assert [c["id"] for c in listed(api, advertiser)] == [cid]

    update = fields(advertiser, cpmBid=3.1234, ads=[{**created["ads"][0], "title": "Renamed"}])
    update["ads"][0].pop("campaignId")
    r = api("PUT", f"/{cid}", json=update)
    assert r.status_code == 200, r.text
    assert r.json()["cpmBid"] == 3.1234 and r.json()["ads"][0]["title"] == "Renamed"
    assert r.json()["ads"][0]["id"] == created["ads"][0]["id"]

    assert api("POST", f"/{cid}/pause").json()["status"] == "paused"
    assert [c["id"] for c in listed(api, advertiser, status="paused")] == [cid]
    assert listed(api, advertiser, status="active") == []
    assert api("POST", f"/{cid}/resume").json()["status"] == "active"

    cache = redis.Redis.from_url(platform.profile.host_env()["REDIS_URL"])
    version = int(cache.get(VERSION_KEY) or 0)
    assert api("DELETE", f"/{cid}").status_code == 204
    assert int(cache.get(VERSION_KEY)) > version
    assert json.loads(cache.get(entry_key(cid)))["status"] == "ended"
    assert not cache.sismember(ACTIVE_SET_KEY, cid)
    assert api("GET", f"/{cid}").json()["status"] == "ended"
    assert api("DELETE", f"/{cid}").status_code == 204
    assert_error(api("POST", f"/{cid}/resume"), 409, "CONFLICT")


def test_bulk_import_and_pagination(api):
    advertiser = str(uuid.uuid4())
    batch = [fields(advertiser, name=f"Bulk {i}") for i in range(25)]
    r = api("POST", "/bulk", json={"campaigns": batch})
    assert r.status_code == 201, r.text
    assert r.json()["imported"] == 25
    seen, cursor = [], None
    while True:
        params = {
            "advertiserId": advertiser,
            "limit": "10",
            **({"cursor": cursor} if cursor else {}),
        }
        page = api("GET", "/", params=params).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(r.json()["ids"]) and len(set(seen)) == 25


def test_bulk_import_is_all_or_nothing(api):
    advertiser = str(uuid.uuid4())
    batch = [fields(advertiser) for _ in range(10)]
    batch[7]["cpmBid"] = 0
    body = assert_error(api("POST", "/bulk", json={"campaigns": batch}), 400, "INVALID_REQUEST")
    assert "campaigns.7.cpmBid" in body["message"]
    assert listed(api, advertiser) == []

    existing = api("POST", "/", json=fields(advertiser)).json()["id"]
    batch = [fields(advertiser) for _ in range(5)] + [fields(advertiser, id=existing)]
    assert_error(api("POST", "/bulk", json={"campaigns": batch}), 409, "CONFLICT")
    assert [c["id"] for c in listed(api, advertiser)] == [existing]

    too_many = {"campaigns": [fields(advertiser) for _ in range(1001)]}
    assert_error(api("POST", "/bulk", json=too_many), 400, "INVALID_REQUEST")
    assert len(listed(api, advertiser)) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/"),
        ("GET", "/"),
        ("PUT", "/{id}"),
        ("POST", "/{id}/pause"),
        ("DELETE", "/{id}"),
        ("POST", "/bulk"),
    ],
)
def test_missing_or_wrong_token_is_refused_and_nothing_is_written(api, method, path):
    advertiser = str(uuid.uuid4())
    existing = api("POST", "/", json=fields(advertiser)).json()
    target = path.replace("{id}", existing["id"])
    body = {"campaigns": [fields(advertiser)]} if path == "/bulk" else fields(advertiser)
    assert_error(api(method, target, auth=None, json=body), 401, "UNAUTHORIZED")
    assert_error(api(method, target, auth="not-the-token", json=body), 401, "UNAUTHORIZED")
    assert_error(
        api(method, target, auth=None, json=body, headers={"Authorization": "Basic YTpi"}),
        401,
        "UNAUTHORIZED",
    )
    assert listed(api, advertiser) == [existing]  # unchanged, nothing added


def _long(n: int) -> str:
    return "x" * n


BAD_CAMPAIGNS = [
    ("cpm zero", {"cpmBid": 0}, "cpmBid"),
    ("cpm negative", {"cpmBid": -1}, "cpmBid"),
    ("cpm as text", {"cpmBid": "2.50"}, "cpmBid"),
    ("cpm too precise", {"cpmBid": 1.00001}, "cpmBid"),
    ("cpm boolean", {"cpmBid": True}, "cpmBid"),
    ("daily negative", {"dailyBudget": -0.01}, "dailyBudget"),
    ("daily missing", {"dailyBudget": None}, "dailyBudget"),
    ("lifetime below daily", {"lifetimeBudget": 50}, "lifetimeBudget"),
    (
        "unknown rule type",
        {"targetingRules": [{"ruleType": "city", "ruleValue": "Paris"}]},
        "ruleType",
    ),
    ("bad country", {"targetingRules": [{"ruleType": "country", "ruleValue": "usa"}]}, "ruleValue"),
    (
        "bad device",
        {"targetingRules": [{"ruleType": "device_type", "ruleValue": "phone"}]},
        "ruleValue",
    ),
    (
        "bad age range",
        {"targetingRules": [{"ruleType": "age_range", "ruleValue": "30-18"}]},
        "ruleValue",
    ),
    (
        "ftp image",
        {
            "ads": [
                {"title": "t", "imageUrl": "ftp://x.test/a.png", "redirectUrl": "https://x.test/"}
            ]
        },
        "imageUrl",
    ),
    (
        "javascript redirect",
        {
            "ads": [
                {
                    "title": "t",
                    "imageUrl": "https://x.test/a.png",
                    "redirectUrl": "javascript:alert(1)",
                }
            ]
        },
        "redirectUrl",
    ),
    (
        "too many ads",
        {
            "ads": [
                {"title": "t", "imageUrl": "https://x.test/a.png", "redirectUrl": "https://x.test/"}
            ]
            * 51
        },
        "ads",
    ),
    ("name too long", {"name": _long(256)}, "name"),
    ("name empty", {"name": ""}, "name"),
    ("advertiser not a uuid", {"advertiserId": "adv-1"}, "advertiserId"),
    ("advertiser missing", {"advertiserId": None}, "advertiserId"),
    ("unknown field", {"cpm": 2}, "cpm"),
    ("status ended", {"status": "ended"}, "status"),
    ("rules not a list", {"targetingRules": "US"}, "targetingRules"),
]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [(o, f) for _, o, f in BAD_CAMPAIGNS],
    ids=[n for n, _, _ in BAD_CAMPAIGNS],
)
def test_invalid_campaigns_are_400_naming_the_field_and_nothing_is_written(api, overrides, field):
    advertiser = str(uuid.uuid4())
    body = {k: v for k, v in fields(advertiser, **overrides).items() if v is not None}
    message = assert_error(api("POST", "/", json=body), 400, "INVALID_REQUEST")["message"]
    assert field in message, message
    assert listed(api, advertiser) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/{id}"),
        ("PUT", "/{id}"),
        ("POST", "/{id}/pause"),
        ("POST", "/{id}/resume"),
        ("DELETE", "/{id}"),
        ("GET", "/not-a-uuid"),
        ("DELETE", "/not-a-uuid"),
    ],
)
def test_unknown_campaigns_are_404(api, method, path):
    target = path.replace("{id}", str(uuid.uuid4()))
    assert_error(api(method, target, json=fields()), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/", b"{not json", 400),
        ("/", b"[1, 2]", 400),
        ("/", b"", 400),
        ("/", b'{"cpmBid": 1e999999}', 400),
        ("/", b"[" * 100_000 + b"]" * 100_000, 400),
        ("/bulk", b'{"campaigns": {}}', 400),
        ("/bulk", b'{"campaigns": []}', 400),
        ("/", b'{"name": "' + b"x" * 300_000 + b'"}', 413),
        ("/bulk", b'{"campaigns": ["' + b"x" * (17 * 1024 * 1024) + b'"]}', 413),
    ],
    ids=[
        "malformed",
        "array",
        "empty",
        "huge exponent",
        "deep nesting",
        "bulk not a list",
        "bulk empty",
        "oversized campaign",
        "oversized bulk",
    ],
)
def test_malformed_or_huge_bodies_are_4xx_never_500(api, path, body, status):
    r = api("POST", path, data=body, headers={"Content-Type": "application/json"})
    assert_error(r, status, "INVALID_REQUEST" if status == 400 else "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    "query",
    [
        {"status": "deleted"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"cursor": "garbage"},
        {"status": ""},
        {"advertiserId": "adv-1"},
    ],
)
def test_bad_list_parameters_are_400(api, query):
    assert_error(api("GET", "/", params=query), 400, "INVALID_REQUEST")


def test_demo_data_loads_through_the_bulk_endpoint(api, platform):
    # Paused, so that the demo campaigns never bid while the rest of the suite runs.
    campaigns = demo_data.generate(40, seed=uuid.uuid4().int % 10**9)
    for campaign in campaigns:
        campaign["status"] = "paused"
    assert demo_data.load(platform.profile, campaigns) == 40
    _MADE.extend(c["id"] for c in campaigns)
    stored = api("GET", f"/{campaigns[0]['id']}").json()
    assert stored["name"] == campaigns[0]["name"]
    assert stored["cpmBid"] == float(campaigns[0]["cpmBid"])
    assert len(stored["ads"]) == len(campaigns[0]["ads"])
