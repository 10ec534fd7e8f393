"""Every function image, built by Docker from the template's Dockerfile, run as a container.

The images are built from the build contexts `faas-cli build --shrinkwrap` writes, with the
stand-in bases of infra/docker (no registry is reachable here; a user's build names the upstream
images). Each container gets the network a replica of the test platform gets: no Docker network,
one veth on the test platform's bridge, so it reaches the same PostgreSQL, Redis, Kafka and
gateway. Then it must start as a non-root user with of-watchdog in front (/_/health, /_/ready
proxied to the function's ready path), and answer real requests to serve, bid, click, analytics
and campaigns the way the function on the test platform answers them.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from localplatform import secrets
from localplatform.profile import REPO_ROOT
from tests.e2e.test_bid_support import PROFILE, Campaigns, campaign_body, unique_placement
from tests.support import wait_for


def _load_local_images() -> ModuleType:
    path = REPO_ROOT / "infra" / "docker" / "local_images.py"
    spec = importlib.util.spec_from_file_location("local_images", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


local_images = _load_local_images()
# Addresses from the top of the bridge network: the provider hands out replicas' from the
# bottom (network + 10 upwards), so these never meet one.
_FIRST_HOST = 250 * 256 + 1


@dataclass(frozen=True)
class Container:
    name: str
    function: str
    address: str

    @property
    def url(self) -> str:
        return f"http://{self.address}:8080"

    def logs(self) -> str:
        done = subprocess.run(["docker", "logs", "--tail", "40", self.name], capture_output=True)
        return (done.stdout + done.stderr).decode(errors="replace")


def _stack_environment(function: str) -> dict[str, str]:
    """The function's `environment` from stack.yml, ${VAR} filled in as for a replica."""
    service = PROFILE.service_env()
    for stack in local_images.STACKS:
        doc = yaml.safe_load(stack.read_text()) or {}
        fn = (doc.get("functions") or {}).get(function)
        if fn is None:
            continue
        env = {}
        for key, value in (fn.get("environment") or {}).items():

            def fill(m: re.Match[str]) -> str:
                return service.get(m.group(1), m.group(2) or "")

            env[key] = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", fill, str(value))
        return {**service, **env}
    raise AssertionError(f"{function} is in no stack file")


def _secret_files(function: str, into: Path) -> None:
    """The function's secrets as files its (non-root) user can read, as a cluster mounts them."""
    fn = next(f for f in local_images.stack_functions() if f.name == function)
    for name in fn.secrets:
        (into / name).write_text(secrets.read(PROFILE, name))
        (into / name).chmod(0o444)
    into.chmod(0o755)


def _attach_to_bridge(container: str, address: str, index: int) -> None:
    """A veth from the container's network namespace to the test platform's bridge."""
    pid = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.Pid}}", container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    host_side, inside = f"{PROFILE.bridge}d{index}", f"dk{index}c"
    run = [
        ["ip", "link", "add", host_side, "type", "veth", "peer", "name", inside],
        ["ip", "link", "set", inside, "netns", pid],
        ["ip", "link", "set", host_side, "master", PROFILE.bridge, "up"],
    ]
    enter = ["nsenter", "-t", pid, "-n"]
    run += [
        [*enter, "ip", "link", "set", "lo", "up"],
        [*enter, "ip", "addr", "add", f"{address}/{PROFILE.bridge_prefixlen}", "dev", inside],
        [*enter, "ip", "link", "set", inside, "up"],
        [*enter, "ip", "route", "add", "default", "via", PROFILE.bridge_ip],
    ]
    for argv in run:
        subprocess.run(argv, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    """Every function's image (cached layers make this fast after the first build)."""
    try:
        local_images.ensure_bases()
        images = local_images.build_functions()
    except local_images.ImageError as exc:
        pytest.fail(str(exc), pytrace=False)
    by_tag = {b.tag: b for b in images}
    return {fn.name: fn.image for fn in local_images.stack_functions() if fn.image in by_tag}


@pytest.fixture(scope="module")
def containers(built: dict[str, str]) -> Iterator[dict[str, Container]]:
    network = ipaddress.ip_network(PROFILE.bridge_cidr)
    prefix = f"ads-{PROFILE.bridge}-fn-"  # one set per test instance
    leftover = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name=^{prefix}"], capture_output=True, text=True
    ).stdout.split()
    if leftover:  # from a run that crashed
        subprocess.run(["docker", "rm", "-f", *leftover], capture_output=True)
    started: dict[str, Container] = {}
    scratch = Path(tempfile.mkdtemp(prefix="fn-secrets-"))
    try:
        for index, (function, image) in enumerate(sorted(built.items())):
            secret_dir = scratch / function
            secret_dir.mkdir()
            _secret_files(function, secret_dir)
            env = _stack_environment(function)
            name = f"{prefix}{function}"
            argv = ["docker", "run", "-d", "--name", name, "--network", "none"]
            argv += ["-v", f"{secret_dir}:/var/openfaas/secrets:ro"]
            for key, value in env.items():
                argv += ["-e", f"{key}={value}"]
            subprocess.run([*argv, image], check=True, capture_output=True, text=True)
            address = str(network.network_address + _FIRST_HOST + index)
            _attach_to_bridge(name, address, index)
            started[function] = Container(name, function, address)
        yield started
    finally:
        for c in started.values():
            subprocess.run(["docker", "rm", "-f", c.name], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _get(url: str, **kwargs) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5, **kwargs)
    except requests.RequestException:
        return None


def _ready(c: Container) -> requests.Response:
    def answered() -> requests.Response | None:
        r = _get(f"{c.url}/_/ready")
        return r if r is not None and r.status_code == 200 else None

    answer = wait_for(answered, timeout_s=120, interval_s=0.5)
    if answer is None:
        pytest.fail(f"{c.function} never became ready; its log:\n{c.logs()}", pytrace=False)
    return answer


def test_every_function_has_an_image(built: dict[str, str]) -> None:
    assert set(built) == {fn.name for fn in local_images.stack_functions()}


def test_each_container_runs_the_watchdog_as_a_non_root_user(
    containers: dict[str, Container],
) -> None:
    for c in containers.values():
        _ready(c)
        top = subprocess.run(
            ["docker", "top", c.name, "-o", "pid,uid,comm"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")[1:]
        processes = [line.split()[1:] for line in top if line.strip()]
        assert processes and all(uid == "10001" for uid, _ in processes), (c.function, top)
        assert {"fwatchdog", "python"} <= {comm for _, comm in processes}, (c.function, top)
        health = _get(f"{c.url}/_/health")
        assert health is not None and (health.status_code, health.text) == (200, "OK")
        # /_/ready is of-watchdog's; it answers what the function's ready path (/_/ready of
        # index.py) answers, which says "OK" only once the handler can serve.
        assert _ready(c).text == "OK", c.function


# ---- the same requests to the container and to the function on the test platform ----------


def _platform(function: str) -> str:
    return f"{PROFILE.gateway_url}/function/{function}"


def _admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {secrets.read(PROFILE, 'campaigns-admin-token')}"}


@pytest.fixture(scope="module")
def campaign() -> tuple[str, str]:
    placement = unique_placement("containers")
    body = campaign_body(cpm="1500", daily="1000", rules=[("placement", placement)])
    return placement, Campaigns().create(body)


def test_campaigns_answers_as_on_the_platform(containers, campaign) -> None:
    _, campaign_id = campaign
    c = containers["campaigns"]
    _ready(c)
    here = requests.get(f"{c.url}/{campaign_id}", headers=_admin(), timeout=10)
    there = requests.get(f"{_platform('campaigns')}/{campaign_id}", headers=_admin(), timeout=10)
    assert here.status_code == there.status_code == 200, (here.text, there.text)
    assert here.json() == there.json()
    missing = f"/{uuid.uuid4()}"
    here = requests.get(f"{c.url}{missing}", headers=_admin(), timeout=10)
    there = requests.get(f"{_platform('campaigns')}{missing}", headers=_admin(), timeout=10)
    assert here.status_code == there.status_code == 404
    assert here.json()["error"] == there.json()["error"]


_AD_FIELDS = ("campaignId", "adId", "title", "imageUrl", "redirectUrl")


def test_bid_answers_as_on_the_platform(containers, campaign) -> None:
    placement, campaign_id = campaign
    c = containers["bid"]
    _ready(c)
    payload = {"userId": "user-containers", "placementId": placement, "countryCode": "US"}
    here = requests.post(c.url, json=payload, timeout=10)
    there = requests.post(_platform("bid"), json=payload, timeout=10)
    assert here.status_code == there.status_code == 200, (here.text, there.text)
    a, b = here.json(), there.json()
    assert a["campaignId"] == b["campaignId"] == campaign_id
    assert a.keys() == b.keys()
    assert {k: v for k, v in a.items() if k != "impressionId"} == {
        k: v for k, v in b.items() if k != "impressionId"
    }
    for bad in (b"{", b"[]"):
        here = requests.post(c.url, data=bad, timeout=10)
        there = requests.post(_platform("bid"), data=bad, timeout=10)
        assert here.status_code == there.status_code == 400
        assert here.json()["error"] == there.json()["error"]


def _ad(url: str, placement: str) -> dict:
    params = {"userId": f"user-{uuid.uuid4().hex[:8]}", "placementId": placement}
    r = requests.get(url, params=params, timeout=10)
    assert r.status_code == 200, (url, r.status_code, r.text)
    return r.json()


def test_serve_click_and_analytics_answer_as_on_the_platform(containers, campaign) -> None:
    placement, campaign_id = campaign
    for name in ("serve", "click", "analytics"):
        _ready(containers[name])
    here, there = _ad(containers["serve"].url, placement), _ad(_platform("serve"), placement)
    assert here.keys() == there.keys()
    assert {k: here[k] for k in _AD_FIELDS} == {k: there[k] for k in _AD_FIELDS}
    assert here["campaignId"] == campaign_id
    # serve's click URL names the click function as users reach it; ask both for the token.
    for ad, base in ((here, containers["click"].url), (there, _platform("click"))):
        query = urlsplit(ad["clickTrackingUrl"]).query
        r = requests.get(f"{base}?{query}", allow_redirects=False, timeout=10)
        assert r.status_code == 302, (base, r.status_code, r.text)
        assert r.headers["Location"] == ad["redirectUrl"]
        assert r.headers["X-Click-Counted"] == "true"
    day = datetime.now(UTC).date().isoformat()
    path = f"/campaign/{campaign_id}?startDate={day}&endDate={day}"

    def report(base: str) -> dict:
        r = requests.get(f"{base}{path}", headers=_admin(), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def settled() -> tuple[dict, dict] | None:
        before = report(_platform("analytics"))
        answer = report(containers["analytics"].url)
        after = report(_platform("analytics"))
        # Both clicks counted, and nothing moved while the container answered.
        counted = before["summary"]["totalClicks"] == 2
        return (answer, after) if counted and before == after else None

    reports = wait_for(settled, timeout_s=30, interval_s=0.5)
    assert reports, (report(containers["analytics"].url), report(_platform("analytics")))
    answer, expected = reports
    assert answer == expected
    assert answer["campaignId"] == campaign_id
