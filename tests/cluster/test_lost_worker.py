"""A worker node lost under load: `docker stop` of the worker without the data stores while serve
and bid take a bounded load through the gateway.

- No 5xx stretch outlasts MAX_5XX_STRETCH_S; the longest one is measured and printed.
- serve's and bid's lost replicas come back on the other worker.
- No acknowledged charge is lost and nothing is overspent: the budget ledger equals the recorded
  impressions times the price, and there are at least as many as answers that charged.
- After the worker returns, the pipeline's counts are exact.

kind-cluster.yaml labels one worker for the stores (Redis, PostgreSQL, Kafka, the gateway), which
run one replica each on that node's volumes: losing that worker is a store outage, not tested
here. Functions spread over both workers (infra/kube-provider)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from .conftest import Cluster
from .workload import (
    Answer,
    Gateway,
    Load,
    ad_request,
    eventually,
    impressions_reported,
    ledger_spent,
    pods_by_node,
    statuses,
)

pytestmark = pytest.mark.cluster

FUNCTIONS = ("serve", "bid")
PRICE_MICROS = 1000  # CPM 1.00
THREADS = 3  # a function
LOAD_LIMIT_S = 420
# The longest run of 5xx (or unanswered) requests a function may see: the node controller marks
# the lost worker unreachable after its grace period (50 s), its pods are replaced 30 s later
# (kind-cluster.yaml), and the replacements start on the one worker left, which then runs
# everything. Measured here: 0 s for serve and bid on a quiet 2-core machine (7 December 2026,
# readiness on /_/ready, two replicas each by the HPAs' minReplicas; replicas back after 102 s),
# 99 s for serve at a load average of 117 before those changes.
MAX_5XX_STRETCH_S = 150.0


@pytest.fixture(scope="module")
def gateway(cluster: Cluster, deployed: None) -> Gateway:
    return Gateway(f"http://127.0.0.1:{cluster.gateway_port}")


def _nodes(cluster: Cluster) -> tuple[str, str]:
    """(the stores' worker, the other worker)."""
    nodes = cluster.kubectl_json("get", "nodes")["items"]
    labels = {n["metadata"]["name"]: n["metadata"].get("labels", {}) for n in nodes}
    workers = [n for n, ls in labels.items() if "node-role.kubernetes.io/control-plane" not in ls]
    stores = [n for n in workers if labels[n].get("adserver.dev/stores") == "true"]
    assert len(workers) == 2 and len(stores) == 1, labels
    return stores[0], next(n for n in workers if n != stores[0])


def _node_of(cluster: Cluster, namespace: str, selector: str) -> set[str]:
    pods = cluster.kubectl_json("-n", namespace, "get", "pods", "-l", selector)["items"]
    return {p["spec"].get("nodeName", "") for p in pods}


@pytest.fixture
def two_replicas_each(cluster: Cluster) -> Iterator[None]:
    """serve and bid kept at two replicas or more by their HPAs' minReplicas (the way to keep a
    function on two nodes; the gateway's scale route would be undone by the HPA); put back
    after."""

    def min_replicas(function: str, replicas: int) -> None:
        body = json.dumps({"spec": {"minReplicas": replicas}})
        cluster.kubectl("-n", "ads", "patch", "hpa", function, "--type=merge", "-p", body)

    before = {
        f: int(cluster.kubectl_json("-n", "ads", "get", "hpa", f)["spec"].get("minReplicas", 1))
        for f in FUNCTIONS
    }
    for function in FUNCTIONS:
        min_replicas(function, 2)
    try:
        yield
    finally:
        for function, replicas in before.items():
            min_replicas(function, replicas)


def _spread(cluster: Cluster, nodes: tuple[str, str]) -> bool:
    """Every function has a ready replica on each worker; where one has not, its extra pod on the
    crowded worker is deleted so that the scheduler places the replacement on the other."""
    spread = True
    for function in FUNCTIONS:
        ready = pods_by_node(cluster, function)
        if all(ready[n] >= 1 for n in nodes):
            continue
        spread = False
        crowded = max(nodes, key=lambda n: ready[n])
        if ready[crowded] >= 2:
            pods = cluster.kubectl_json(
                "-n", "ads", "get", "pods", "-l", f"faas_function={function}"
            )
            name = next(
                p["metadata"]["name"] for p in pods["items"] if p["spec"].get("nodeName") == crowded
            )
            cluster.kubectl("-n", "ads", "delete", "pod", name, "--wait=false")
    return spread


def longest_failure_stretch(answers: list[Answer]) -> float:
    """The longest time, in s, from a failed request (5xx or no answer) to the next request sent
    that succeeded, over requests in the order they were sent."""
    longest, first_failure = 0.0, None
    for a in sorted(answers, key=lambda a: a.sent):
        failed = a.status == 0 or a.status >= 500
        if failed and first_failure is None:
            first_failure = a.sent
        elif not failed and first_failure is not None:
            longest = max(longest, a.sent - first_failure)
            first_failure = None
    if first_failure is not None:
        longest = float("inf")
    return longest


def _docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, capture_output=True, timeout=120)


def _node_ready(cluster: Cluster, node: str) -> bool:
    n = cluster.kubectl_json("get", "node", node)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])


def test_a_worker_lost_under_load_costs_no_charge_and_its_replicas_come_back(
    cluster: Cluster, gateway: Gateway, two_replicas_each: None
) -> None:
    stores_node, victim = _nodes(cluster)
    for namespace, selector in [
        ("ads", "app.kubernetes.io/name=redis"),
        ("ads", "app.kubernetes.io/name=postgres"),
        ("ads", "app.kubernetes.io/name=kafka"),
        ("openfaas", "app=gateway"),
    ]:
        assert _node_of(cluster, namespace, selector) == {stores_node}, (selector, stores_node)
    eventually(
        "serve and bid on both workers", lambda: _spread(cluster, (stores_node, victim)), 240
    )
    campaign_id, placement = gateway.create_campaign(PRICE_MICROS, daily_budget=1_000_000.0)
    eventually(
        "an ad of the new campaign",
        lambda: ad_request(gateway, "serve", placement)().status == 200,
        60,
    )

    loads = {f: Load(ad_request(gateway, f, placement), THREADS, LOAD_LIMIT_S) for f in FUNCTIONS}
    for load in loads.values():
        load.start()
    try:
        time.sleep(10)
        stopped = time.monotonic()
        _docker("stop", victim)
        try:
            eventually(
                "serve's and bid's lost replicas back on the other worker",
                lambda: all(
                    set(pods_by_node(cluster, f)) == {stores_node}
                    and pods_by_node(cluster, f)[stores_node] >= 2
                    for f in FUNCTIONS
                ),
                240,
            )
        except AssertionError as exc:
            ready = {f: dict(pods_by_node(cluster, f)) for f in FUNCTIONS}
            events = cluster.kubectl(
                "-n", "ads", "get", "events", "--sort-by=.lastTimestamp", check=False
            )
            nodes = cluster.kubectl("describe", "node", stores_node, check=False)
            allocated = nodes[nodes.find("Allocated resources") :][:600]
            raise AssertionError(
                f"{exc}; ready by node {ready}\n{cluster.diagnostics()}\n"
                f"{stores_node}: {allocated}\nevents:\n{events[-4000:]}"
            ) from exc
        print(f"replicas back on {stores_node} {time.monotonic() - stopped:.0f} s after the stop")
        time.sleep(10)
    finally:
        answers = {name: load.stop() for name, load in loads.items()}
        _docker("start", victim)
    eventually(f"{victim} Ready again", lambda: _node_ready(cluster, victim), 300)

    acknowledged = sum(1 for got in answers.values() for a in got if a.impression)
    assert acknowledged > 0, {n: statuses(a) for n, a in answers.items()}

    spent = ledger_spent(cluster, campaign_id)
    assert spent % PRICE_MICROS == 0, spent
    charged = spent // PRICE_MICROS
    assert charged >= acknowledged, (charged, acknowledged)
    recorded = eventually(
        f"analytics counting the {charged} impressions the ledger charged",
        lambda: (n := impressions_reported(gateway, campaign_id)) == charged and n,
        300,
    )
    print(f"{campaign_id}: {acknowledged} acknowledged, {charged} charged, {recorded} recorded")
    for name, got in answers.items():
        stretch = longest_failure_stretch(got)
        print(f"{name}: {statuses(got)}; longest 5xx stretch {stretch:.1f} s")
        assert stretch <= MAX_5XX_STRETCH_S, (name, stretch, statuses(got))
