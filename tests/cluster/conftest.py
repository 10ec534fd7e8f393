"""A real kind cluster, created by infra/kind/up.sh and deleted by infra/kind/down.sh.

Every command goes to the cluster through `docker exec` on its control-plane node, so the tests
need only Docker's socket (they also run inside the test platform's network namespace, where the
cluster's host ports are not reachable).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KIND = REPO_ROOT / "infra" / "kind"
DEPLOY = REPO_ROOT / "infra" / "k8s" / "deploy.sh"
DEPLOY_TIMEOUT_S = 3600  # a cold run builds and pushes every image
# The cold build of every image takes long on a busy 2-core machine; a warm `up` takes ~1 min.
UP_TIMEOUT_S = 3600


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: creates and deletes a real kind cluster")


# The tests that disturb the cluster run last, in this order: a load step, then a lost worker.
_LAST = {"test_cluster_autoscaling.py": 1, "test_lost_worker.py": 2}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: _LAST.get(item.path.name, 0))


@dataclass(frozen=True)
class Cluster:
    name: str
    gateway_port: int

    @property
    def control_plane(self) -> str:
        return f"{self.name}-control-plane"

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """kubectl on the control-plane node, as cluster-admin."""
        argv = ["docker", "exec", "-i", self.control_plane, "kubectl"]
        argv += ["--kubeconfig", "/etc/kubernetes/admin.conf", *args]
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def sql(self, query: str, **variables: str) -> str:
        """A query's rows as psql prints them, on the cluster's PostgreSQL (diagnostics); the
        query names each variable as :'name'."""
        argv = ["-n", "ads", "exec", "-i", "ads-postgres-0", "--", "psql", "-U", "adserver"]
        argv += ["-d", "adserver", *(f"-v{name}={value}" for name, value in variables.items())]
        return self.kubectl(*argv, stdin=query, check=False)

    def diagnostics(self, *selectors: str, since: str = "10m") -> str:
        """For a failure message: pods by node, then the recent log lines of each pod of the
        `ads` namespace matching a selector (`app.kubernetes.io/name=kafka-connector`, ...)
        that say more than an access line."""
        parts = [self.kubectl("-n", "ads", "get", "pods", "-o", "wide", check=False)]
        for selector in selectors:
            pods = self.kubectl_json("-n", "ads", "get", "pods", "-l", selector)["items"]
            for pod in pods:
                name = pod["metadata"]["name"]
                log = self.kubectl("-n", "ads", "logs", name, f"--since={since}", check=False)
                lines = [ln for ln in log.splitlines() if '"path"' not in ln][-40:]
                parts.append(f"--- {name}:\n" + "\n".join(lines))
        return "\n".join(parts)


def _loop_devices() -> set[str]:
    done = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True)
    return set(done.stdout.splitlines())


def _run(script: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(KIND / script)], env={**os.environ, **env}, timeout=UP_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, f"infra/kind/{script} exited {done.returncode}"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A three-node cluster of this test instance, with host ports of its own, deleted after."""
    instance = int(os.environ.get("ADS_TEST_INSTANCE", "0"))
    name = f"ads-test-{instance}"
    ports = {"gateway": 32000 + 10 * instance, "prometheus": 32001 + 10 * instance}
    ports["grafana"] = 32002 + 10 * instance
    env = {
        "KIND_CLUSTER": name,
        "KIND_GATEWAY_PORT": str(ports["gateway"]),
        "KIND_PROMETHEUS_PORT": str(ports["prometheus"]),
        "KIND_GRAFANA_PORT": str(ports["grafana"]),
        "PYTHON": os.environ.get("PYTHON", str(REPO_ROOT / ".venv" / "bin" / "python")),
    }
    loops_before = _loop_devices()
    _run("runtime/install.sh", {})  # the harness's runtime wrapper, only where the machine needs it
    _run("down.sh", env)  # a cluster a killed run left behind
    _run("up.sh", env)
    try:
        yield Cluster(name, ports["gateway"])
    finally:
        _run("down.sh", env)
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert left == [], f"kind-down left containers {left}"
    assert _loop_devices() <= loops_before, "kind-down left loop devices"


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    seconds: float


def _deploy(cluster: Cluster) -> Run:
    instance = int(os.environ.get("ADS_TEST_INSTANCE", "0"))
    env = {
        **os.environ,
        "KIND_CLUSTER": cluster.name,
        "KIND_GATEWAY_PORT": str(cluster.gateway_port),
        "KIND_PROMETHEUS_PORT": str(cluster.gateway_port + 1),
        "KIND_REGISTRY_PORT": str(32003 + 10 * instance),
    }
    started = time.monotonic()
    done = subprocess.run(
        [str(DEPLOY), "openfaas"],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEPLOY_TIMEOUT_S,
        check=False,
    )
    return Run(done.returncode, done.stdout + done.stderr, time.monotonic() - started)


@pytest.fixture(scope="session")
def deploys(cluster: Cluster) -> list[Run]:
    """`make kind-deploy` on the cluster and, when it succeeded, a second run."""
    runs = [_deploy(cluster)]
    print(f"kind-deploy: first run {runs[0].seconds:.0f} s, exit {runs[0].returncode}")
    if runs[0].returncode == 0:
        runs.append(_deploy(cluster))
        print(f"kind-deploy: second run {runs[1].seconds:.0f} s")
    return runs


@pytest.fixture(scope="session")
def deployed(deploys: list[Run]) -> None:
    """The product deployed: tests through the cluster's gateway start from here."""
    assert deploys[0].returncode == 0, f"kind-deploy failed:\n{deploys[0].output[-3000:]}"
