"""What the cluster tests under load share: the cluster's gateway with its credentials, campaigns
created through it, bounded load from threads that records every answer, and the budget ledger
read from the cluster's Redis."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import requests

from shared_layer.bidding.store.budget_ledger import lifetime_spent_key

from .conftest import REPO_ROOT, Cluster

SECRETS = REPO_ROOT / ".local" / "k8s" / "secrets"
ADVERTISER = "6f1c2a0e-8e4b-4c1e-9a57-3f1f2b8d9c10"
T = TypeVar("T")


def eventually(what: str, probe: Callable[[], T | None], timeout_s: float) -> T:
    """probe()'s first value that is not None or False, asked every second until timeout_s."""
    started = time.monotonic()
    seen: T | None = None
    while time.monotonic() - started < timeout_s:
        seen = probe()
        if seen is not None and seen is not False:
            return seen
        time.sleep(1)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what} (last seen: {seen!r})")


@dataclass(frozen=True)
class Gateway:
    """The cluster's OpenFaaS gateway on its host port."""

    url: str

    @staticmethod
    def secret(name: str) -> str:
        return (SECRETS / name).read_text().strip()

    def create_campaign(self, cpm_micros: int, daily_budget: float) -> tuple[str, str]:
        """(id, placement) of a new campaign, the only one targeting a placement of its own."""
        placement = f"load-{uuid.uuid4().hex[:12]}"
        r = requests.post(
            f"{self.url}/function/campaigns/",
            headers={"Authorization": f"Bearer {self.secret('campaigns-admin-token')}"},
            json={
                "advertiserId": ADVERTISER,
                "name": f"cluster load {placement}",
                "cpmBid": cpm_micros / 1000,
                "dailyBudget": daily_budget,
                "targetingRules": [{"ruleType": "placement", "ruleValue": placement}],
                "ads": [
                    {
                        "title": "Under load",
                        "imageUrl": "https://cdn.example.com/load.png",
                        "redirectUrl": "https://example.com/load",
                    }
                ],
            },
            timeout=15,
        )
        assert r.status_code == 201, (r.status_code, r.text)
        return r.json()["id"], placement


@dataclass(frozen=True)
class Answer:
    """One request of a load: when it was sent (monotonic s), its status (0: no answer) and,
    for a charge, the impression id."""

    sent: float
    status: int
    impression: str = ""


@dataclass
class Load:
    """Requests from `threads` threads, each one after the other, until stop() or `limit_s`.

    `request` returns the Answer of one request; a load never sends after its limit."""

    request: Callable[[], Answer]
    threads: int
    limit_s: float
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _pool: ThreadPoolExecutor | None = None

    def start(self) -> Load:
        self._pool = ThreadPoolExecutor(self.threads)
        deadline = time.monotonic() + self.limit_s
        for _ in range(self.threads):
            self._pool.submit(self._run, deadline)
        return self

    def _run(self, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.answers.append(self.request())  # list.append is atomic

    def stop(self) -> list[Answer]:
        self._stop.set()
        assert self._pool is not None, "stop() before start()"
        self._pool.shutdown(wait=True)
        return self.answers

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def statuses(answers: list[Answer]) -> Counter[int]:
    return Counter(a.status for a in answers)


def ad_request(gateway: Gateway, function: str, placement: str) -> Callable[[], Answer]:
    """One request for an ad of `placement` through the gateway, by a user of its own each time:
    serve's GET or bid's POST."""

    def one() -> Answer:
        sent = time.monotonic()
        fields = {"userId": f"u-{uuid.uuid4().hex[:10]}", "placementId": placement}
        url = f"{gateway.url}/function/{function}"
        try:
            if function == "serve":
                r = requests.get(url, params=fields, timeout=30)
            else:
                r = requests.post(url, json=fields, timeout=30)
        except requests.RequestException:
            return Answer(sent, 0)
        return Answer(sent, r.status_code, r.json()["impressionId"] if r.status_code == 200 else "")

    return one


def impressions_reported(gateway: Gateway, campaign_id: str) -> int:
    """The campaign's impressions today, as analytics reports them from the pipeline."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    url = f"{gateway.url}/function/analytics/campaign/{campaign_id}?startDate={day}&endDate={day}"
    token = gateway.secret("campaigns-admin-token")
    answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=15)
    assert answer.ok, (answer.status_code, answer.text)
    return int(answer.json()["summary"]["totalImpressions"])


def ledger_spent(cluster: Cluster, campaign_id: str) -> int:
    """The campaign's lifetime spend in micros, from the budget ledger in the cluster's Redis."""
    out = cluster.kubectl(
        "-n", "ads", "exec", "redis-0", "--", "redis-cli", "GET", lifetime_spent_key(campaign_id)
    )
    return int(out.strip() or 0)


def pods_by_node(cluster: Cluster, function: str) -> Counter[str]:
    """How many ready pods of `function` each node runs."""
    pods = cluster.kubectl_json("-n", "ads", "get", "pods", "-l", f"faas_function={function}")
    ready: Counter[str] = Counter()
    for pod in pods["items"]:
        conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
        if conditions.get("Ready") == "True" and not pod["metadata"].get("deletionTimestamp"):
            ready[pod["spec"]["nodeName"]] += 1
    return ready
