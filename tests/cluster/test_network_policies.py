"""The NetworkPolicies of infra/k8s/network-policies are enforced on the cluster, not only
written: a TCP connect from a function's own pod to the data stores succeeds exactly where the
policies allow it (on this path kube-router's network policy controller enforces them,
infra/kind/README.md)."""

from __future__ import annotations

import pytest

from .conftest import Cluster

pytestmark = pytest.mark.cluster

POSTGRES = ("ads-postgres-rw.ads.svc.cluster.local", 5432)
REDIS = ("redis.ads.svc.cluster.local", 6379)
# Run by the function's own Python inside its pod: the connect's outcome, one word.
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    print("connected")
except socket.gaierror:
    print("unresolved")
except TimeoutError:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
"""


def _connect(cluster: Cluster, function: str, address: tuple[str, int]) -> str:
    """What a TCP connect from a running pod of `function` to `address` gives."""
    pods = cluster.kubectl_json("-n", "ads", "get", "pods", "-l", f"faas_function={function}")
    running = [p["metadata"]["name"] for p in pods["items"] if p["status"]["phase"] == "Running"]
    assert running, f"no running pod of {function}"
    host, port = address
    out = cluster.kubectl(
        "-n", "ads", "exec", running[0], "--", "python", "-c", CONNECT, host, str(port)
    )
    return out.strip()


@pytest.mark.parametrize(
    ("function", "address", "outcome"),
    [
        ("serve", POSTGRES, "blocked"),
        ("serve", REDIS, "blocked"),
        ("daily-metrics", POSTGRES, "connected"),
        # The control for Redis: it answers those it allows.
        ("bid", REDIS, "connected"),
    ],
    ids=["serve-postgres", "serve-redis", "daily-metrics-postgres", "bid-redis"],
)
def test_a_function_reaches_a_data_store_only_where_a_policy_allows_it(
    cluster: Cluster, deployed: None, function: str, address: tuple[str, int], outcome: str
) -> None:
    result = _connect(cluster, function, address)
    if outcome == "blocked":
        # Refused (the policy's REJECT) or timed out; never a name that did not resolve.
        assert result in ("refused", "timeout"), f"{function} -> {address}: {result}"
    else:
        assert result == "connected", f"{function} -> {address}: {result}"
