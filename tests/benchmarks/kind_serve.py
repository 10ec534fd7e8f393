"""serve against the no-op on the kind cluster, side by side, and the idle cluster's CPU and memory.

`make bench-cluster` (after `make kind-up kind-deploy`; not part of `make bench`, whose own
platform would share the cores): through the cluster's gateway at its NodePort, the no-op
(stack.baseline.yml's, its image pushed to the cluster's registry and deployed with faas-cli)
and serve, asking for a placement a benchmark campaign targets, are rated open loop as
`make bench` rates them on `make up`'s platform (bench_serve.rated_rate: the highest rate with
p95 < 100 ms and at most 1% errors), BENCH_ROUNDS times (3 by default) back to back; the figure
is the median of the rounds' ratios. Before that, the idle cluster: each node container's CPU
(its cgroup's cpuacct, over IDLE_S) and memory (docker stats). At 80% of serve's median rate,
the CPU per served ad of every node container beyond idle (the load generator runs outside).
Settings: KIND_CLUSTER (adserver).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import requests

from localplatform.profile import REPO_ROOT
from tests.benchmarks.bench_serve import campaign_body, rated_rate
from tests.benchmarks.loadgen import open_loop

CLUSTER = os.environ.get("KIND_CLUSTER", "adserver")
NODE_PORT = 31112  # the gateway's NodePort (infra/k8s/openfaas/values.yaml)


def _gateway() -> str:
    """The gateway's NodePort at the control-plane node's address on kind's network, not the host
    port: Docker's userland proxy behind 127.0.0.1:8080 added about 200 ms to most requests on
    new connections here (measured 7 December 2026), which would be rated instead of the
    cluster."""
    addresses = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
    done = subprocess.run(
        ["docker", "inspect", "--format", addresses, f"{CLUSTER}-control-plane"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    address = done.stdout.split()[0] if done.returncode == 0 and done.stdout.split() else ""
    return f"http://{address or '127.0.0.1'}:{NODE_PORT if address else 8080}"


GATEWAY = _gateway()
SECRETS = REPO_ROOT / ".local" / "k8s" / "secrets"
FAAS_CLI = REPO_ROOT / ".local" / "bin" / "faas-cli"
NOOP_IMAGE = "ads/noop:0.1.0"
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
IDLE_S = 30
MEASURE_S = 10
LOADGEN_CPU = 1
CGROUP_CPU = Path("/sys/fs/cgroup/cpuacct/docker")


def _secret(name: str) -> str:
    return (SECRETS / name).read_text().strip()


def _nodes() -> dict[str, str]:
    """The cluster's node containers (and its registry): name -> full container id."""
    out = subprocess.run(
        ["docker", "ps", "--no-trunc", "--filter", f"name=^{CLUSTER}-",
         "--format", "{{.Names}} {{.ID}}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(line.split() for line in out.splitlines())


def _cpu_s(nodes: dict[str, str]) -> dict[str, float]:
    """Each container's CPU time so far, in s (cgroup v1's cpuacct, as on this machine)."""
    return {n: int((CGROUP_CPU / i / "cpuacct.usage").read_text()) / 1e9 for n, i in nodes.items()}


def _memory() -> dict[str, str]:
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {
        line.split()[0]: line.split(" ", 1)[1].split(" /")[0]
        for line in out.splitlines()
        if line.startswith(f"{CLUSTER}-")
    }


def _deploy_noop() -> None:
    env = {**os.environ, "KIND_CLUSTER": CLUSTER}
    registry = REPO_ROOT / "infra" / "kind" / "registry.sh"
    subprocess.run([str(registry), "push", NOOP_IMAGE], env=env, check=True)
    config = REPO_ROOT / ".local" / "k8s" / f"faas-cli-{CLUSTER}"
    env["OPENFAAS_CONFIG"] = str(config)
    subprocess.run(
        [str(FAAS_CLI), "login", "--gateway", GATEWAY, "-u", _secret("basic-auth-user"),
         "--password-stdin"],
        input=_secret("basic-auth-password"), env=env, text=True, check=True,
        capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [str(FAAS_CLI), "deploy", "-f", "stack.baseline.yml", "--filter", "noop",
         "--gateway", GATEWAY],
        env=env, cwd=REPO_ROOT, check=True, capture_output=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if requests.get(f"{GATEWAY}/function/noop", timeout=10).status_code == 200:
            return
        time.sleep(2)
    raise RuntimeError("the no-op did not answer on the cluster within 180 s")


def _campaign(placement: str) -> str:
    r = requests.post(
        f"{GATEWAY}/function/campaigns/",
        json=campaign_body(placement),
        headers={"Authorization": f"Bearer {_secret('campaigns-admin-token')}"},
        timeout=15,
    )
    r.raise_for_status()
    return r.json()["id"]


def main() -> str | None:
    try:
        nodes = _nodes()
        requests.get(f"{GATEWAY}/healthz", timeout=5).raise_for_status()
    except (OSError, subprocess.CalledProcessError, requests.RequestException, ValueError) as exc:
        print(f"  no cluster {CLUSTER} at {GATEWAY} ({exc}): run make kind-up kind-deploy first")
        return None
    _deploy_noop()
    placement = f"bench-kind-{uuid.uuid4().hex[:8]}"
    campaign = _campaign(placement)
    serve = f"{GATEWAY}/function/serve?" + urlencode(
        {"userId": "bench-user", "placementId": placement}
    )
    deadline = time.monotonic() + 120
    while requests.get(serve, timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"serve gave no ad of campaign {campaign} within 120 s")
        time.sleep(1)

    time.sleep(20)  # the warm-up's own work settles
    before, started = _cpu_s(nodes), time.monotonic()
    time.sleep(IDLE_S)
    after, elapsed = _cpu_s(nodes), time.monotonic() - started
    idle = {n: (after[n] - before[n]) / elapsed for n in nodes}
    memory = _memory()
    print(f"  idle cluster over {IDLE_S} s: {sum(idle.values()):.2f} cores")
    for name in sorted(nodes):
        print(f"    {name:<28} {idle[name]:.3f} cores  {memory.get(name, '?')}")

    ratios, serve_rates = [], []
    for number in range(1, ROUNDS + 1):
        noop_rate = rated_rate("noop", f"{GATEWAY}/function/noop")
        serve_rate = rated_rate("serve", serve)
        ratio = serve_rate / noop_rate if noop_rate else 0.0
        print(f"  round {number}: no-op {noop_rate:.0f}/s, serve {serve_rate:.0f}/s, {ratio:.2f}")
        ratios.append(ratio)
        serve_rates.append(serve_rate)
    ratio, rated = statistics.median(ratios), statistics.median(serve_rates)

    if not rated:
        print("  serve held p95 < 100 ms at no rate tried: no CPU per ad at 80% of it")
        return f"kind cluster: serve not rated, idle {sum(idle.values()):.2f} cores"
    rate = 0.8 * rated
    before, started = _cpu_s(nodes), time.monotonic()
    result = open_loop(serve, rate=rate, duration_s=MEASURE_S, cpu=LOADGEN_CPU)
    after, elapsed = _cpu_s(nodes), time.monotonic() - started
    busy = sum(after[n] - before[n] for n in nodes) - sum(idle.values()) * elapsed
    per_ad_ms = 1000 * busy / max(result.ok, 1)
    print(f"  serve at 80% ({rate:.0f}/s): {result.line()}")
    print(f"  CPU per served ad beyond idle, every node container: {per_ad_ms:.1f} ms")
    return (
        f"kind cluster: serve {ratio:.2f} of the no-op (median of {ROUNDS} rounds), "
        f"{per_ad_ms:.1f} ms CPU per ad beyond idle, idle {sum(idle.values()):.2f} cores"
    )


if __name__ == "__main__":
    print(main())
