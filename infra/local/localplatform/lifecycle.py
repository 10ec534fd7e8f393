"""`start`, `stop`, `clean`: the platform's processes as one unit, in dependency order.

`start` needs no network: it starts whatever is down, waits for each health check, deploys the
stacks (deploy.py) and loads demo data if the profile wants it. `stop` stops exactly the
recorded pids in reverse order and keeps the data; `reset` and `clean` also remove the state.
"""

from __future__ import annotations

import shutil
import time

import requests

from . import demo_data, images, network, prerequisites, secrets
from .component import Component, ComponentError
from .components.autoscaler import Autoscaler
from .components.connector import Connector
from .components.gateway import Gateway
from .components.kafka import Kafka
from .components.postgres import Postgres
from .components.prometheus import Prometheus
from .components.provider import Provider
from .components.redis import Redis
from .components.redis_cluster import cluster_nodes
from .components.s3 import S3
from .deploy import deploy
from .profile import REPO_ROOT, Profile
from .progress import say

DRAIN_BOUND_S = 35.0  # of-watchdog's default write_timeout (30 s), and a little more


def components(profile: Profile) -> list[Component]:
    """In start order; stopped in reverse."""
    return [
        Postgres(profile),
        Redis(profile),
        *cluster_nodes(profile),
        Kafka(profile),
        Prometheus(profile),
        S3(profile),
        Provider(profile),
        Gateway(profile),
        Autoscaler(profile),
        Connector(profile),
    ]


def check_prerequisites(profile: Profile, *also: str) -> None:
    """Every program the components (and `also`) need is installed, or MissingPrerequisite
    names them all, before anything is built or started."""
    network_tools = ["ip", *(["nsenter"] if profile.host_netns else [])]
    needs = [*network_tools, *also, *(p for c in components(profile) for p in c.requires())]
    prerequisites.check(needs)


def start(profile: Profile) -> None:
    """Start what is down, deploy the stacks, wait for every function to be available."""
    check_prerequisites(profile)
    profile.ensure_dirs()
    secrets.ensure_basic_auth(profile)
    network.ensure_bridge(profile)
    for component in components(profile):
        if component.running() and component.healthy():
            say(f"{component.name}: already up ({component.address()})")
            continue
        if component.running():
            say(f"{component.name}: running but not healthy yet, waiting")
        else:
            say(f"{component.name}: starting")
            component.prepare()
            component.start()
        try:
            component.wait_healthy()
        except ComponentError as exc:
            raise SystemExit(f"FAILED: {exc}") from None
        component.after_start()
        say(f"{component.name}: up ({component.address()}), log {component.log_path}")
    deploy(profile)
    if profile.demo_data:
        created = demo_data.seed(profile, only_if_empty=True)
        if created:
            say(f"demo data: {created} campaigns created through the campaigns API")
        admin_key, advertiser_key = demo_data.ensure_demo_keys(profile)
        say(f"demo API keys: admin in {admin_key}, an advertiser's in {advertiser_key}")
    _print_welcome(profile)


def _print_welcome(profile: Profile) -> None:
    user, password_file = secrets.ensure_basic_auth(profile)
    print(
        "\nThe platform is up.\n"
        f"  gateway     {profile.gateway_url}\n"
        f"  log in      faas-cli login --gateway {profile.gateway_url} -u {user} "
        f"--password-stdin < {password_file}\n"
        f"  try         curl -s {profile.gateway_url}/function/noop\n"
        f"  console     {profile.gateway_url}/function/console/  (sign in with the key in "
        f"{profile.secrets_dir / 'campaigns-admin-token'}, or a demo key:\n"
        f"              {profile.secrets_dir / 'demo-admin-key'} (admin),\n"
        f"              {profile.secrets_dir / 'demo-advertiser-key'} (one advertiser))\n"
        f"  prometheus  http://127.0.0.1:{profile.ports.prometheus}\n"
        "  status      make status\n",
        flush=True,
    )


def stop(profile: Profile) -> None:
    """Stop exactly what was started (recorded pids), keep the data, leave no namespace."""
    for component in reversed(components(profile)):
        if isinstance(component, Gateway) and component.running():
            # The gateway has no graceful shutdown: let what it forwarded finish first.
            wait_for_invocations(profile, DRAIN_BOUND_S)
        if component.stop():
            say(f"{component.name}: stopped")
    for leftover in network.sweep(profile):
        say(f"removed leftover {leftover}")
    network.remove_bridge(profile)


def wait_for_invocations(profile: Profile, timeout_s: float) -> None:
    """Wait (bounded) until no replica serves a request, as the provider reports it."""
    if not network.inside_host_netns(profile):
        return  # 127.0.0.1 here is not this profile's provider
    url = f"http://127.0.0.1:{profile.ports.provider_ops}/replicas"
    deadline = time.monotonic() + timeout_s
    told = False
    while time.monotonic() < deadline:
        try:
            busy = sum(r["inflight"] for r in requests.get(url, timeout=2).json())
        except (requests.RequestException, ValueError, KeyError):
            return  # no provider (or not in this namespace): nothing to wait for
        if busy == 0:
            return
        if not told:
            say(f"gateway: waiting for {busy} request(s) in flight to finish")
            told = True
        time.sleep(0.1)
    say(f"gateway: requests still in flight after {timeout_s:.0f}s; stopping anyway")


def reset(profile: Profile) -> None:
    """Stop the profile and remove its state (data, logs, secrets); built images stay."""
    stop(profile)
    Postgres(profile).purge()
    shutil.rmtree(profile.state_dir, ignore_errors=True)
    say(f"removed {profile.state_dir}")


def clean(profile: Profile) -> None:
    """`make clean`: `reset`, and the generated build contexts and templates too."""
    reset(profile)
    with images.build_lock():
        for generated in (REPO_ROOT / "build", REPO_ROOT / "template"):
            shutil.rmtree(generated, ignore_errors=True)


def leftovers(profile: Profile) -> list[str]:
    """Processes, namespaces and links of a profile still there after `stop`."""
    left = [f"process {c.name} ({c.pid()})" for c in components(profile) if c.running()]
    left += [f"netns {ns}" for ns in network.our_namespaces(profile)]
    left += [f"link {link}" for link in network.our_links(profile)]
    if network.host_netns_exists(profile):
        left.append(f"netns {profile.host_netns}")
    return left
