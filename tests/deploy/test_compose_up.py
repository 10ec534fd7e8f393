"""docker-compose.yml up for real, with the test override's stand-in images.

The project runs under its own name with free host ports, so it never meets a user's compose
project or `make up`. The suite runs in the test platform's network namespace, which does not
reach Docker's networks, so requests go from a client container on the project's network (the
connector's image has Python and requests): the gateway at http://gateway:8080, as a function
calls it. Then an ad is served and clicked, and both count exactly in analytics and in
PostgreSQL's daily_metrics; `down -v` must leave no container, network or volume behind.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from urllib.parse import urlsplit

import pytest

from localplatform.profile import REPO_ROOT
from tests.e2e.test_bid_support import campaign_body
from tests.support import wait_for

OVERRIDE = REPO_ROOT / "infra" / "compose" / "docker-compose.local-images.yml"
PROJECT = f"adserver-test{os.environ.get('ADS_TEST_INSTANCE', '')}"
# Everything but Grafana, which has no stand-in image here.
SERVICES = (
    "gateway",
    "provider",
    "serve",
    "bid",
    "click",
    "analytics",
    "campaigns",
    "daily-metrics",
    "live-counters",
    "connector",
    "prometheus",
)
SECRETS = REPO_ROOT / ".local" / "compose" / "secrets"
CLIENT = f"{PROJECT}-client"
GATEWAY = "http://gateway:8080"


def _load_local_images() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "local_images", REPO_ROOT / "infra" / "docker" / "local_images.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def compose(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    argv = ["docker-compose", "-p", PROJECT, "-f", "docker-compose.yml", "-f", str(OVERRIDE)]
    env = dict(os.environ)
    for port in ("GATEWAY", "POSTGRES", "REDIS", "KAFKA", "PROMETHEUS"):
        env[f"ADS_COMPOSE_{port}_PORT"] = "127.0.0.1:"  # a free host port each
    return subprocess.run(
        [*argv, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> object:
        return json.loads(self.body)


# Runs in the client container: one HTTP request, its answer as JSON on stdout.
_REQUEST = """
import json, sys, requests
a = json.loads(sys.argv[1])
r = requests.request(a["method"], a["url"], headers=a.get("headers"), json=a.get("json"),
                     auth=tuple(a["auth"]) if a.get("auth") else None,
                     allow_redirects=False, timeout=15)
print(json.dumps({"status": r.status_code, "headers": dict(r.headers), "body": r.text}))
"""


def call(method: str, path: str, **kwargs: object) -> Answer:
    request = {"method": method, "url": f"{GATEWAY}{path}", **kwargs}
    done = subprocess.run(
        ["docker", "exec", CLIENT, "python", "-c", _REQUEST, json.dumps(request)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        return Answer(0, {}, done.stderr[-500:])  # not reachable (yet)
    return Answer(**json.loads(done.stdout))


def _secret(name: str) -> str:
    return (SECRETS / name).read_text().strip()


def _admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {_secret('campaigns-admin-token')}"}


def _project_leftovers() -> list[str]:
    label = f"label=com.docker.compose.project={PROJECT}"
    left = []
    for kind in ("container", "network", "volume"):
        argv = ["docker", kind, "ls", "-q", "--filter", label]
        if kind == "container":
            argv.insert(3, "-a")
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
        left += [f"{kind} {name}" for name in out]
    return left


@pytest.fixture(scope="module")
def stack() -> Iterator[None]:
    local_images = _load_local_images()
    try:
        local_images.ensure_bases()
        local_images.build_functions(SERVICES)
        local_images.build_compose()
    except local_images.ImageError as exc:
        pytest.fail(str(exc), pytrace=False)
    subprocess.run([str(REPO_ROOT / "infra" / "compose" / "make-secrets.sh")], check=True)
    compose("down", "-v", "--remove-orphans")
    subprocess.run(["docker", "rm", "-f", CLIENT], capture_output=True)
    try:
        up = compose("up", "-d", *SERVICES)
        assert up.returncode == 0, f"compose up failed:\n{up.stdout}{up.stderr}"
        subprocess.run(
            [
                *("docker", "run", "-d", "--name", CLIENT, "--network", f"{PROJECT}_default"),
                *("--entrypoint", "sleep", "ads/kafka-connector:0.1.0", "infinity"),
            ],
            check=True,
            capture_output=True,
        )
        yield
    finally:
        subprocess.run(["docker", "rm", "-f", CLIENT], capture_output=True)
        compose("down", "-v", "--remove-orphans")


def test_every_function_is_up_behind_the_gateway(stack: None) -> None:
    auth = ["admin", _secret("basic-auth-password")]
    wanted = {"serve", "bid", "click", "analytics", "campaigns", "daily-metrics", "live-counters"}

    def available() -> list[dict] | None:
        r = call("GET", "/system/functions", auth=auth)
        if r.status != 200:
            return None
        functions = r.json()
        up = {f["name"] for f in functions if f.get("availableReplicas", 0) >= 1}  # type: ignore[union-attr]
        return functions if wanted <= up else None  # type: ignore[return-value]

    functions = wait_for(available, timeout_s=240, interval_s=2)
    if not functions:
        ps = compose("ps").stdout
        logs = compose("logs", "--tail", "15").stdout
        pytest.fail(f"functions never became available:\n{ps}\n{logs[-6000:]}", pytrace=False)
    by_name = {f["name"]: f for f in functions}
    assert by_name["daily-metrics"]["annotations"]["topic"] == "impressions,clicks"
    # Migrations ran once and exited cleanly before any function started.
    assert "Exit 0" in compose("ps", "migrations").stdout


def test_an_ad_is_served_clicked_and_counted_exactly(stack: None) -> None:
    placement = f"compose-{uuid.uuid4().hex[:12]}"
    campaign = campaign_body(cpm="2500", daily="100", rules=[("placement", placement)])
    created = call("POST", "/function/campaigns/", headers=_admin(), json=campaign)
    assert created.status == 201, created.body
    campaign_id = created.json()["id"]  # type: ignore[index]

    def served() -> dict | None:
        r = call("GET", f"/function/serve?userId=u-compose&placementId={placement}")
        return r.json() if r.status == 200 else None  # type: ignore[return-value]

    ad = wait_for(served, timeout_s=90, interval_s=1)
    if not ad:
        logs = compose("logs", "--tail", "20", "bid", "serve").stdout
        pytest.fail(f"no ad served; bid and serve logged:\n{logs}", pytrace=False)
    assert ad["campaignId"] == campaign_id
    click = urlsplit(ad["clickTrackingUrl"])
    assert click.path.endswith("/function/click")
    clicked = call("GET", f"/function/click?{click.query}")
    assert clicked.status == 302, clicked.body
    assert clicked.headers["Location"] == ad["redirectUrl"] == campaign["ads"][0]["redirectUrl"]

    day = datetime.now(UTC).date().isoformat()
    report_path = f"/function/analytics/campaign/{campaign_id}?startDate={day}&endDate={day}"

    def counted() -> dict | None:
        r = call("GET", report_path, headers=_admin())
        summary = r.json()["summary"] if r.status == 200 else {}  # type: ignore[index]
        done = (summary.get("totalImpressions"), summary.get("totalClicks")) == (1, 1)
        return summary if done else None

    summary = wait_for(counted, timeout_s=60, interval_s=1)
    assert summary, call("GET", report_path, headers=_admin())
    # CPM 2500 -> 2.5 per impression, charged once.
    assert summary["totalSpendMicros"] == 2_500_000, summary

    # The aggregation's record in PostgreSQL (spend in micros), through the daily-metrics function.
    sql = "SELECT impressions, clicks, (spend * 1000000)::bigint FROM daily_metrics"
    sql += " WHERE campaign_id = '{}' AND date = '{}'"  # the API's own UUID and an ISO date
    psql = ("psql", "-U", "adserver", "-d", "adserver", "-tAc", sql.format(campaign_id, day))

    def in_postgres() -> bool:
        row = compose("exec", "-T", "postgres", *psql, timeout=60).stdout.strip()
        return row == "1|1|2500000"

    if not wait_for(in_postgres, timeout_s=60, interval_s=1):
        pytest.fail(f"daily_metrics: {compose('exec', '-T', 'postgres', *psql).stdout!r}")

    # The gateway's own view: its invocation counts, read back from Prometheus (5 s scrapes).
    def invocations() -> dict[str, float] | None:
        r = call("GET", "/system/functions", auth=["admin", _secret("basic-auth-password")])
        counts = {f["name"]: f.get("invocationCount", 0) for f in r.json()}  # type: ignore[union-attr]
        return counts if counts["serve"] >= 1 and counts["click"] >= 1 else None

    counts = wait_for(invocations, timeout_s=30, interval_s=2)
    assert counts, "the gateway reports no invocation of serve and click"


def test_down_removes_every_container_network_and_volume(stack: None) -> None:
    subprocess.run(["docker", "rm", "-f", CLIENT], capture_output=True)
    down = compose("down", "-v", "--remove-orphans")
    assert down.returncode == 0, down.stderr
    assert _project_leftovers() == []
