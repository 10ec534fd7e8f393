"""Helpers for the decisioning e2e tests (serve, bid): campaigns, spend, replicas. No tests here.

Campaigns are created through the `campaigns` admin API when the stack deploys it, otherwise
through PostgreSQL rows and the cache module it uses (`CampaignCache.publish`
in Redis), so the bid replicas learn of them exactly as they would from the API.

Isolation: every campaign made here targets a placement unique to its test, and bids a CPM far
above any demo or other test campaign (>= 1,000), so that campaigns other suites create on the
same platform never win these tests' requests, and these never win theirs.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
import requests

from localplatform import gateway_api, images, secrets
from localplatform.profile import PROFILES, Profile
from shared_layer.bidding.store.budget_ledger import daily_spent_key, lifetime_spent_key
from shared_layer.campaigns.domain.requests import parse_campaign
from shared_layer.campaigns.store.cache import VERSION_KEY, CampaignCache
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.money import to_decimal

__test__ = False  # helpers only

PROFILE: Profile = PROFILES[os.environ.get("ADS_PROFILE", "test")]
GATEWAY = PROFILE.gateway_url
ADVERTISER = "6f1c2a0e-8e4b-4c1e-9a57-3f1f2b8d9c10"
# ADS_E2E_CAMPAIGNS=rows: write PostgreSQL rows and the cache directly, not through the API.
USE_API = os.environ.get("ADS_E2E_CAMPAIGNS", "api") == "api"
HAS_CAMPAIGNS_API = any(fn.name == "campaigns" for fn in images.read_stack(images.STACKS[0]))


def unique_placement(label: str = "e2e") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def gateway_invocations(function: str) -> float:
    """Calls the gateway has proxied to `function`, from the gateway's own metrics."""
    url = f"http://127.0.0.1:{PROFILE.ports.gateway_metrics}/metrics"
    label = f'function_name="{function}.openfaas-fn"'
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in requests.get(url, timeout=5).text.splitlines()
        if line.startswith("gateway_function_invocation_total{") and label in line
    )


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(PROFILE.host_env()["REDIS_URL"], socket_timeout=5)


def campaign_body(
    *,
    cpm: str,
    daily: str,
    lifetime: str | None = None,
    rules: list[tuple[str, str]] = (),
    title: str = "E2E ad",
) -> dict:
    """A campaign as the admin API takes it (money as decimal text, the API's precision)."""
    body = {
        "advertiserId": ADVERTISER,
        "name": f"{title} {uuid.uuid4().hex[:6]}",
        "cpmBid": float(cpm),
        "dailyBudget": float(daily),
        "targetingRules": [{"ruleType": t, "ruleValue": v} for t, v in rules],
        "ads": [
            {
                "title": title,
                "imageUrl": "https://cdn.example.com/e2e.png",
                "redirectUrl": "https://example.com/e2e",
            }
        ],
    }
    if lifetime is not None:
        body["lifetimeBudget"] = float(lifetime)
    return body


@dataclass
class Campaigns:
    """Creates and pauses campaigns the way an advertiser would; waits for bid to see them."""

    profile: Profile = PROFILE

    def __post_init__(self) -> None:
        self._redis = redis_client()

    def _token(self) -> str:
        return secrets.read(self.profile, "campaigns-admin-token")

    def _api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method,
            f"{GATEWAY}/function/campaigns{path}",
            headers={"Authorization": f"Bearer {self._token()}"},
            timeout=10,
            **kwargs,
        )

    def create(self, body: dict) -> str:
        """Create one campaign; returns its id once every bid replica's snapshot has it."""
        if HAS_CAMPAIGNS_API and USE_API:
            r = self._api("POST", "/", json=body)
            assert r.status_code == 201, r.text
            campaign_id = r.json()["id"]
        else:
            campaign = parse_campaign(json.dumps(body)).to_campaign()
            _insert_rows(campaign)
            CampaignCache(self._redis).publish([campaign])
            campaign_id = campaign.id
        wait_for_snapshots(int(self._redis.get(VERSION_KEY) or 0))
        return campaign_id

    def pause(self, campaign_id: str) -> None:
        """Pause through the admin API (returns as soon as the API answered)."""
        if HAS_CAMPAIGNS_API and USE_API:
            r = self._api("POST", f"/{campaign_id}/pause")
            assert r.status_code == 200, r.text
            return
        from localplatform.components.postgres import connect

        conn = connect(PROFILE)
        try:
            conn.run(
                "UPDATE campaigns SET status = 'paused' WHERE id = CAST(:id AS uuid)",
                id=campaign_id,
            )
        finally:
            conn.close()
        cache = CampaignCache(self._redis)
        current = cache.read([campaign_id])[campaign_id]
        assert current is not None
        cache.publish([current.model_copy(update={"status": "paused"})])


def today() -> datetime:
    return datetime.now(UTC)


def spent(campaign_id: str) -> tuple[int, int]:
    """(spent today, spent in the lifetime) in micros, from the budget ledger in Redis."""
    daily, lifetime = redis_client().mget(
        [daily_spent_key(campaign_id, today().date()), lifetime_spent_key(campaign_id)]
    )
    return int(daily or 0), int(lifetime or 0)


def namespaces(function: str) -> list[str]:
    """The network namespaces of a function's replicas (every process of a replica is in one)."""
    url = f"http://127.0.0.1:{PROFILE.ports.provider_ops}/sd"
    groups = requests.get(url, timeout=5).json()
    return sorted(
        g["labels"]["netns"]
        for g in groups
        if g["labels"].get("function_name") == function and g["labels"].get("kind") == "function"
    )


def replicas(function: str, kind: str = "function") -> dict[str, str]:
    """replica name -> its IP, from the provider's service discovery."""
    url = f"http://127.0.0.1:{PROFILE.ports.provider_ops}/sd"
    groups = requests.get(url, timeout=5).json()
    return {
        g["labels"]["replica"]: g["targets"][0].split(":")[0]
        for g in groups
        if g["labels"].get("function_name") == function and g["labels"].get("kind") == kind
    }


_SNAPSHOT_VERSION = re.compile(r"^campaign_snapshot_version (\S+)$", re.MULTILINE)


def snapshot_versions() -> dict[str, float]:
    """Each auction replica's (bid, openrtb) loaded campaigns::version, from its metrics."""
    versions = {}
    auction_replicas = {**replicas("bid"), **replicas("openrtb")}
    for replica, ip in auction_replicas.items():
        try:
            text = requests.get(f"http://{ip}:8000/metrics", timeout=2).text
        except requests.RequestException:
            versions[replica] = -1.0
            continue
        match = _SNAPSHOT_VERSION.search(text)
        versions[replica] = float(match.group(1)) if match else -1.0
    return versions


def wait_for_snapshots(version: int, timeout_s: float = 5.0) -> None:
    """Until every bid replica has loaded at least `version` of the campaigns."""
    deadline = time.monotonic() + timeout_s
    while True:
        versions = snapshot_versions()
        if versions and all(v >= version for v in versions.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"bid replicas did not load version {version}: {versions}")
        time.sleep(0.05)


def scale(function: str, replicas_wanted: int, *, via_provider: bool = False) -> None:
    """Scale through the gateway (1..5) or straight at the provider API (any, 0 included)."""
    user, password_file = secrets.ensure_basic_auth(PROFILE)
    auth = (user, password_file.read_text().strip())
    base = f"http://127.0.0.1:{PROFILE.ports.provider}" if via_provider else GATEWAY
    r = requests.post(
        f"{base}/system/scale-function/{function}",
        json={"serviceName": function, "replicas": replicas_wanted},
        auth=auth,
        timeout=10,
    )
    assert r.status_code in (200, 202), r.text


def wait_replicas(function: str, count: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    status: dict = {}
    while time.monotonic() < deadline:
        status = gateway_api.function_status(PROFILE, function) or {}
        if status.get("availableReplicas", 0) == count and len(replicas(function)) == count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{function}: {status.get('availableReplicas')} replicas, not {count}")


_OTHERS_ELIGIBLE = """
SELECT count(*) FROM campaigns c
WHERE c.status = 'active'
  AND NOT (c.id = ANY(CAST(:mine AS uuid[])))
  AND EXISTS (SELECT 1 FROM ads a WHERE a.campaign_id = c.id AND a.removed_at IS NULL)
  AND NOT EXISTS (SELECT 1 FROM campaign_targeting_rules r WHERE r.campaign_id = c.id
                  AND r.rule_type IN ('country', 'device_type', 'interest', 'age_range'))
  AND (NOT EXISTS (SELECT 1 FROM campaign_targeting_rules r WHERE r.campaign_id = c.id
                   AND r.rule_type = 'placement')
       OR EXISTS (SELECT 1 FROM campaign_targeting_rules r WHERE r.campaign_id = c.id
                  AND r.rule_type = 'placement' AND r.rule_value = :placement))
"""


def others_could_fill(placement: str, mine: list[str] = ()) -> bool:
    """Whether a campaign not made by this test may win a bare request on `placement`
    (active, with an ad, unrestricted on everything but placement): then "no fill" cannot be
    asserted, only "not ours"."""
    from localplatform.components.postgres import connect

    conn = connect(PROFILE)
    try:
        mine_ids = [m for m in mine] or ["00000000-0000-0000-0000-000000000000"]
        ((count,),) = conn.run(_OTHERS_ELIGIBLE, mine=mine_ids, placement=placement)
    finally:
        conn.close()
    return count > 0


def _insert_rows(campaign: Campaign) -> None:
    """The campaign's rows in PostgreSQL, as the admin API would store them."""
    from localplatform.components.postgres import connect

    conn = connect(PROFILE)
    try:
        conn.run("BEGIN")
        conn.run(
            "INSERT INTO campaigns (id, name, advertiser_id, status, cpm_bid, daily_budget,"
            " lifetime_budget) VALUES (CAST(:id AS uuid), :name, CAST(:adv AS uuid), :status,"
            " :cpm, :daily, :lifetime)",
            id=campaign.id,
            name=campaign.name,
            adv=campaign.advertiser_id,
            status=campaign.status,
            cpm=to_decimal(campaign.cpm_micros),
            daily=to_decimal(campaign.daily_budget_micros),
            lifetime=(
                None
                if campaign.lifetime_budget_micros is None
                else to_decimal(campaign.lifetime_budget_micros)
            ),
        )
        for rule in campaign.targeting_rules:
            conn.run(
                "INSERT INTO campaign_targeting_rules (campaign_id, rule_type, rule_value)"
                " VALUES (CAST(:id AS uuid), :kind, :value)",
                id=campaign.id,
                kind=rule.rule_type,
                value=rule.rule_value,
            )
        for ad in campaign.ads:
            conn.run(
                "INSERT INTO ads (id, campaign_id, title, image_url, redirect_url) VALUES"
                " (CAST(:id AS uuid), CAST(:cid AS uuid), :title, :image, :redirect)",
                id=ad.id,
                cid=campaign.id,
                title=ad.title,
                image=ad.image_url,
                redirect=ad.redirect_url,
            )
        conn.run("COMMIT")
    finally:
        conn.close()
