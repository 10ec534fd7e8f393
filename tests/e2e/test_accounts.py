"""Advertiser accounts through the gateway: every route of campaigns and analytics, for every
kind of caller (admin key, advertiser A, advertiser B, A's reporting key, a revoked key, none).

What a user relies on: another advertiser's campaign is a 404 (as an unknown id), a role that
may not do something gets a 403, a key that is unknown or revoked a 401; an advertiser cannot
read, change, pause or report on another's campaign by id, by list filter or by bulk import; a
key is shown once and never appears in any log; writes are limited per key (429 with
Retry-After).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from localplatform import demo_data, secrets
from localplatform.components.postgres import connect

CALLERS = ("admin", "a", "b", "a_reporting", "revoked", "none")


@dataclass
class World:
    gateway: str
    keys: dict[str, str | None]  # caller -> key
    advertisers: dict[str, str]  # "a", "b" -> advertiser id
    campaign_a: str
    campaign_b: str

    def call(self, caller: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        key = self.keys[caller]
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return requests.request(
            method, f"{self.gateway}/function{path}", headers=headers, timeout=30, **kwargs
        )


def campaign(advertiser: str, name: str = "accounts e2e") -> dict[str, Any]:
    return {
        "advertiserId": advertiser,
        "name": name,
        "cpmBid": 1.5,
        "dailyBudget": 10,
        "lifetimeBudget": 100,
        "targetingRules": [{"ruleType": "placement", "ruleValue": f"accounts-{uuid.uuid4()}"}],
        "ads": [
            {
                "title": "t",
                "imageUrl": "https://cdn.example.com/a.jpg",
                "redirectUrl": "https://example.com/",
            }
        ],
    }


@pytest.fixture(scope="module")
def world(platform) -> Iterator[World]:
    bootstrap = secrets.read(platform.profile, "campaigns-admin-token")
    base = f"{platform.gateway}/function/campaigns"
    auth = {"Authorization": f"Bearer {bootstrap}"}

    def post(path: str, body: dict[str, Any], headers: dict[str, str] = auth) -> dict[str, Any]:
        r = requests.post(base + path, json=body, headers=headers, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()

    advertisers = {
        name: post("/advertisers", {"name": f"Advertiser {name} {uuid.uuid4().hex[:6]}"})["id"]
        for name in ("a", "b")
    }
    keys: dict[str, str | None] = {
        "admin": post("/keys", {"role": "admin", "label": "e2e admin"})["key"],
        "a": post("/keys", {"role": "advertiser", "advertiserId": advertisers["a"]})["key"],
        "b": post("/keys", {"role": "advertiser", "advertiserId": advertisers["b"]})["key"],
        "a_reporting": post("/keys", {"role": "reporting", "advertiserId": advertisers["a"]})[
            "key"
        ],
        "none": None,
    }
    revoked = post("/keys", {"role": "advertiser", "advertiserId": advertisers["a"]})
    r = requests.delete(f"{base}/keys/{revoked['id']}", headers=auth, timeout=30)
    assert r.status_code == 204, r.text
    keys["revoked"] = revoked["key"]
    campaign_a = post("/", campaign(advertisers["a"]), {"Authorization": f"Bearer {keys['a']}"})
    campaign_b = post("/", campaign(advertisers["b"]))
    ids = [campaign_a["id"], campaign_b["id"]]
    # Each has figures this hour, so that a report that leaked another's rows would show them.
    conn = connect(platform.profile)
    try:
        for made in (campaign_a, campaign_b):
            conn.run(
                "INSERT INTO hourly_metrics (hour, campaign_id, ad_id, placement_id, impressions,"
                " clicks, spend) VALUES (date_trunc('hour', now() AT TIME ZONE 'UTC'),"
                " CAST(:c AS uuid), CAST(:a AS uuid), 'accounts-e2e', 10, 1, 0.02)",
                c=made["id"],
                a=made["ads"][0]["id"],
            )
        world = World(platform.gateway, keys, advertisers, campaign_a["id"], campaign_b["id"])
        yield world
    finally:
        conn.run("DELETE FROM hourly_metrics WHERE campaign_id = ANY(CAST(:c AS uuid[]))", c=ids)
        conn.close()
        for campaign_id in ids:
            requests.delete(f"{base}/{campaign_id}", headers=auth, timeout=30)


def expect(statuses: str) -> dict[str, int]:
    """'200 200 404 200 401 401' -> the status for each caller, in CALLERS order."""
    return dict(zip(CALLERS, (int(s) for s in statuses.split()), strict=True))


# (method, path, body, expected per caller: admin a b a_reporting revoked none). {A} is
# advertiser A's campaign; bodies name advertiser A. A's key owns {A}; B's key must get 404.
# {placement} has a floor and {key} is a fresh key, both made by the admin for the one call.
# DELETE /campaigns/{id} has its own test below (each call needs a campaign of its own).
MATRIX = [
    ("GET", "/campaigns/me", None, "200 200 200 200 401 401"),
    ("GET", "/campaigns", "list", "200 200 200 200 401 401"),
    ("GET", "/campaigns/{A}", None, "200 200 404 200 401 401"),
    ("GET", "/campaigns/{B}", None, "200 404 200 404 401 401"),
    ("PUT", "/campaigns/{A}", "A", "200 200 404 403 401 401"),
    ("PUT", "/campaigns/{B}", "B", "200 404 200 403 401 401"),
    ("POST", "/campaigns/{A}/pause", None, "200 200 404 403 401 401"),
    ("POST", "/campaigns/{A}/resume", None, "200 200 404 403 401 401"),
    ("POST", "/campaigns/{B}/pause", None, "200 404 200 403 401 401"),
    ("POST", "/campaigns/{B}/resume", None, "200 404 200 403 401 401"),
    ("POST", "/campaigns", "A", "201 201 403 403 401 401"),
    ("POST", "/campaigns/bulk", "bulk A", "201 201 403 403 401 401"),
    ("GET", "/campaigns/floors", None, "200 403 403 403 401 401"),
    ("GET", "/campaigns/floors/{placement}", None, "200 403 403 403 401 401"),
    ("PUT", "/campaigns/floors/{placement}", "floor", "200 403 403 403 401 401"),
    ("DELETE", "/campaigns/floors/{placement}", None, "204 403 403 403 401 401"),
    ("GET", "/campaigns/keys", None, "200 403 403 403 401 401"),
    ("POST", "/campaigns/keys", "key", "201 403 403 403 401 401"),
    ("DELETE", "/campaigns/keys/{key}", None, "204 403 403 403 401 401"),
    ("GET", "/campaigns/advertisers", None, "200 403 403 403 401 401"),
    ("POST", "/campaigns/advertisers", "advertiser", "201 403 403 403 401 401"),
    ("GET", "/analytics/campaign/{A}", "dates", "200 200 404 200 401 401"),
    ("GET", "/analytics/campaign/{B}", "dates", "200 404 200 404 401 401"),
    ("GET", "/analytics/report", "report", "200 200 200 200 401 401"),
    ("GET", "/analytics/report", "report csv", "200 200 200 200 401 401"),
]


def body_for(kind: str | None, world: World) -> dict[str, Any]:
    a = world.advertisers["a"]
    return {
        None: {},
        "list": {"params": {"limit": "5"}},
        "A": {"json": campaign(a)},
        "B": {"json": campaign(world.advertisers["b"])},
        "bulk A": {"json": {"campaigns": [campaign(a)]}},
        "floor": {"json": {"floorCpm": 0.5}},
        "key": {"json": {"role": "reporting", "advertiserId": a}},
        "advertiser": {"json": {"name": "made in the matrix"}},
        "dates": {"params": {"startDate": today(), "endDate": today()}},
        "report": {"params": {"startDate": today(), "endDate": today(), "groupBy": "campaign"}},
        "report csv": {"params": {"startDate": today(), "endDate": today(), "format": "csv"}},
    }[kind]


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@pytest.mark.parametrize(("method", "path", "body", "statuses"), MATRIX)
@pytest.mark.parametrize("caller", CALLERS)
def test_every_route_answers_each_caller_as_its_role_and_advertiser_allow(
    world, caller, method, path, body, statuses
):
    placement = f"accounts-floor-{uuid.uuid4().hex[:8]}"
    floor = f"/campaigns/floors/{placement}"
    if "{placement}" in path:
        assert world.call("admin", "PUT", floor, json={"floorCpm": 0.25}).status_code == 200
    key = ""
    if "{key}" in path:
        made = world.call("admin", "POST", "/campaigns/keys", json={"role": "reporting",
                          "advertiserId": world.advertisers["a"]})  # fmt: skip
        key = made.json()["id"]
    target = path.format(A=world.campaign_a, B=world.campaign_b, placement=placement, key=key)
    r = world.call(caller, method, target, **body_for(body, world))
    assert r.status_code == expect(statuses)[caller], (caller, method, target, r.text[:300])
    if r.status_code >= 400:
        assert set(r.json()) == {"error", "message", "requestId"}
    if r.status_code == 201 and path in ("/campaigns", "/campaigns/bulk"):
        for made in r.json().get("ids", [r.json().get("id")]):
            world.call("admin", "DELETE", f"/campaigns/{made}")
    if "floors/" in path:
        world.call("admin", "DELETE", floor)
    if key:
        world.call("admin", "DELETE", f"/campaigns/keys/{key}")


@pytest.mark.parametrize("caller", CALLERS)
def test_delete_is_for_the_owner_and_admin_only(world, caller):
    made = world.call("admin", "POST", "/campaigns", json=campaign(world.advertisers["a"]))
    assert made.status_code == 201
    target = f"/campaigns/{made.json()['id']}"
    r = world.call(caller, "DELETE", target)
    assert r.status_code == expect("204 204 404 403 401 401")[caller], r.text
    if r.status_code != 204:
        assert world.call("admin", "GET", target).json()["status"] != "ended"
        world.call("admin", "DELETE", target)


def test_lists_show_only_the_keys_own_campaigns_whatever_the_filter(world):
    a, b = world.advertisers["a"], world.advertisers["b"]

    def ids(caller: str, **query: str) -> set[str]:
        r = world.call(caller, "GET", "/campaigns", params={"limit": "100", **query})
        assert r.status_code == 200, r.text
        own = {"a": a, "b": b, "a_reporting": a}.get(caller)
        if own is not None:  # a key's list holds its own advertiser's campaigns only
            assert {c["advertiserId"] for c in r.json()["items"]} <= {own}
        return {c["id"] for c in r.json()["items"]}

    assert world.campaign_a in ids("a") and world.campaign_b not in ids("a")
    assert ids("a", advertiserId=b) == set()  # another advertiser's filter shows nothing
    assert ids("b", advertiserId=a) == set()
    assert world.campaign_a in ids("a_reporting", advertiserId=a)
    assert world.campaign_b in ids("admin", advertiserId=b)
    assert world.campaign_a not in ids("admin", advertiserId=b)
    everything = ids("a", status="active") | ids("a", status="paused")
    assert world.campaign_b not in everything


def test_an_advertiser_cannot_import_or_move_campaigns_into_another_account(world):
    b = world.advertisers["b"]
    r = world.call("a", "POST", "/campaigns/bulk", json={"campaigns": [campaign(b)]})
    assert r.status_code == 403
    mixed = [campaign(world.advertisers["a"]), campaign(b)]
    assert world.call("a", "POST", "/campaigns/bulk", json={"campaigns": mixed}).status_code == 403
    r = world.call("a", "PUT", f"/campaigns/{world.campaign_a}", json=campaign(b))
    assert r.status_code == 403
    listed = world.call("admin", "GET", "/campaigns", params={"advertiserId": b, "limit": "100"})
    assert {c["id"] for c in listed.json()["items"]} == {world.campaign_b}


def test_a_key_is_shown_once_listed_without_secret_and_revocable(world):
    made = world.call(
        "admin",
        "POST",
        "/campaigns/keys",
        json={"role": "reporting", "advertiserId": world.advertisers["b"], "label": "once"},
    )
    assert made.status_code == 201
    key, key_id = made.json()["key"], made.json()["id"]
    assert key.startswith(f"adk_{key_id}_")
    scope = {"advertiserId": world.advertisers["b"]}
    listed = world.call("admin", "GET", "/campaigns/keys", params=scope)
    row = next(k for k in listed.json()["items"] if k["id"] == key_id)
    assert "key" not in row and key not in listed.text and row["revokedAt"] is None
    me = requests.get(
        f"{world.gateway}/function/campaigns/me",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ).json()
    assert me["role"] == "reporting" and me["advertiserId"] == world.advertisers["b"]
    assert world.call("admin", "DELETE", f"/campaigns/keys/{key_id}").status_code == 204
    again = requests.get(
        f"{world.gateway}/function/campaigns/me",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert again.status_code == 401


def test_writes_past_the_keys_rate_are_429_with_retry_after(world, platform):
    limit = platform.profile.campaigns_writes_per_minute
    made = world.call(
        "admin",
        "POST",
        "/campaigns/keys",
        json={"role": "advertiser", "advertiserId": world.advertisers["a"]},
    )
    caller_key = made.json()["key"]
    headers = {"Authorization": f"Bearer {caller_key}"}
    target = f"{world.gateway}/function/campaigns/{world.campaign_a}/resume"
    answers: list[requests.Response] = []
    # Two fixed windows at most: within 2 x limit + 1 writes, one of them is over its limit.
    while len(answers) <= 2 * limit and not any(r.status_code == 429 for r in answers):
        answers.append(requests.post(target, headers=headers, timeout=30))
    refused = [r for r in answers if r.status_code == 429]
    assert refused, [r.status_code for r in answers]
    assert all(r.status_code == 200 for r in answers[: limit // 2])
    assert 1 <= int(refused[0].headers["Retry-After"]) <= 61
    assert refused[0].json()["error"] == "RATE_LIMITED"
    # Reads are not limited, and other keys keep their own budget.
    assert requests.get(target.removesuffix("/resume"), headers=headers, timeout=30).ok
    assert world.call("a", "POST", f"/campaigns/{world.campaign_a}/resume").status_code == 200


def test_a_report_holds_only_the_keys_own_rows_and_its_csv_equals_its_json(world):
    """Both campaigns have figures this hour; each key's report, JSON or CSV, shows its own."""
    a, b = world.advertisers["a"], world.advertisers["b"]
    params = {"startDate": today(), "endDate": today(), "groupBy": "campaign,placement"}
    callers = [
        ("a", world.campaign_a, world.campaign_b, b),
        ("a_reporting", world.campaign_a, world.campaign_b, b),
        ("b", world.campaign_b, world.campaign_a, a),
    ]
    for caller, own, other, other_advertiser in callers:
        r = world.call(caller, "GET", "/analytics/report", params=params)
        assert r.status_code == 200, r.text
        assert [(x["campaignId"], x["impressions"]) for x in r.json()["rows"]] == [(own, 10)]
        as_csv = world.call(caller, "GET", "/analytics/report", params={**params, "format": "csv"})
        assert as_csv.headers["Content-Type"].startswith("text/csv")
        lines = as_csv.text.splitlines()
        assert lines[0].split(",")[:4] == ["day", "campaignId", "placementId", "impressions"]
        assert [line.split(",")[1:4] for line in lines[1:]] == [[own, "accounts-e2e", "10"]]
        # Asking for the other advertiser's campaign or account by filter: nothing of it.
        for asked in ({"campaignId": other}, {"advertiserId": other_advertiser}):
            for output in ("json", "csv"):
                query = {**params, **asked, "format": output}
                scoped = world.call(caller, "GET", "/analytics/report", params=query)
                assert scoped.status_code == 200, scoped.text
                assert other not in scoped.text
    both = {world.campaign_a, world.campaign_b}
    query = {**params, "campaignId": ",".join(sorted(both))}
    everyone = world.call("admin", "GET", "/analytics/report", params=query)
    assert {x["campaignId"] for x in everyone.json()["rows"]} == both
    bad = world.call("a", "GET", "/analytics/report", params={**params, "groupBy": "user"})
    assert bad.status_code == 400 and bad.json()["error"] == "INVALID_REQUEST"


def test_make_up_leaves_a_demo_admin_key_and_a_demo_advertisers_key(platform):
    """What `make up` runs after the demo campaigns: run twice, it keeps the working keys."""
    admin_file, advertiser_file = demo_data.ensure_demo_keys(platform.profile)
    first = (admin_file.read_text(), advertiser_file.read_text())
    assert demo_data.ensure_demo_keys(platform.profile) == (admin_file, advertiser_file)
    assert (admin_file.read_text(), advertiser_file.read_text()) == first
    assert oct(advertiser_file.stat().st_mode & 0o777) == "0o600"

    def me(path) -> dict[str, Any]:
        r = requests.get(
            f"{platform.gateway}/function/campaigns/me",
            headers={"Authorization": f"Bearer {path.read_text().strip()}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return r.json()

    assert me(admin_file)["role"] == "admin"
    advertiser = me(advertiser_file)
    assert advertiser["role"] == "advertiser"
    assert advertiser["advertiserId"] == demo_data.generate(1)[0]["advertiserId"]
    assert advertiser["advertiser"]["currency"] == "USD"


def test_keys_never_appear_in_any_log(world, platform):
    """Last in the module: every key above has been used by then."""
    logs = [p for p in (platform.profile.state_dir / "provider").rglob("*") if p.is_file()]
    logs += [p for p in (platform.profile.state_dir / "logs").rglob("*") if p.is_file()]
    assert logs
    secrets_ = [k for k in world.keys.values() if k]
    for path in logs:
        data = path.read_bytes()
        for key in secrets_:
            assert key.encode() not in data, f"a key appears in {path}"
            secret = key[len("adk_") + 16 + 1 :]
            assert secret.encode() not in data, f"a key's secret appears in {path}"
