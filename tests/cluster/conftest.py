"""A real kind cluster, created by infra/kind/up.sh and deleted by infra/kind/down.sh.

Every command goes to the cluster through `docker exec` on its control-plane node, so the tests
need only Docker's socket (they also run inside the test platform's network namespace, where the
cluster's host ports are not reachable).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KIND = REPO_ROOT / "infra" / "kind"
# The cold build of every image takes long on a busy 2-core machine; a warm `up` takes ~1 min.
UP_TIMEOUT_S = 3600


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: creates and deletes a real kind cluster")


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
