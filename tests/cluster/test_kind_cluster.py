"""The kind cluster of `make kind-up`: three nodes Ready, pods on different workers reach each
other, a Service name resolves and answers, and the gateway's host port is the one asked for."""

from __future__ import annotations

import subprocess

import pytest

from tests.cluster.conftest import Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "podnet-check"
PORT = 1053
# Pods from images every node holds already: CoreDNS answers on PORT, the pod network's image has
# bash (whose /dev/tcp makes a TCP connect) and getent (which resolves through the pod's DNS).
MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: server, namespace: {ns}, labels: {{app: server}}}}
spec:
  nodeName: {server_node}
  containers:
    - name: coredns
      image: {dns_image}
      imagePullPolicy: Never
      args: ["-dns.port", "{port}"]
      readinessProbe: {{tcpSocket: {{port: {port}}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: server, namespace: {ns}}}
spec:
  selector: {{app: server}}
  ports: [{{port: {port}, protocol: TCP}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {ns}}}
spec:
  nodeName: {client_node}
  containers:
    - name: shell
      image: {shell_image}
      imagePullPolicy: Never
      command: ["sleep", "infinity"]
"""


def _workers(cluster: Cluster) -> list[str]:
    nodes = cluster.kubectl_json("get", "nodes")["items"]
    roles = {n["metadata"]["name"]: n["metadata"].get("labels", {}) for n in nodes}
    return sorted(
        n for n, labels in roles.items() if "node-role.kubernetes.io/control-plane" not in labels
    )


def test_every_node_is_ready_with_two_workers(cluster: Cluster) -> None:
    nodes = cluster.kubectl_json("get", "nodes")["items"]
    ready = {
        n["metadata"]["name"]: next(
            c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready"
        )
        for n in nodes
    }
    assert ready == {name: "True" for name in ready}, ready
    assert len(ready) == 3
    assert len(_workers(cluster)) == 2


def test_gateway_port_is_the_one_asked_for(cluster: Cluster) -> None:
    mapped = subprocess.run(
        ["docker", "port", cluster.control_plane, "31112/tcp"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert mapped == [f"127.0.0.1:{cluster.gateway_port}"]


def test_pods_on_two_workers_reach_each_other_and_a_service_name_resolves(cluster: Cluster) -> None:
    server_node, client_node = _workers(cluster)
    images = {
        c["image"]
        for p in cluster.kubectl_json("get", "pods", "-n", "kube-system")["items"]
        for c in p["spec"]["containers"]
    }
    dns_image = next(i for i in images if "/coredns:" in i)
    shell_image = next(i for i in images if "kind-podnet" in i)
    manifest = MANIFEST.format(
        ns=NAMESPACE,
        port=PORT,
        server_node=server_node,
        client_node=client_node,
        dns_image=dns_image,
        shell_image=shell_image,
    )
    cluster.kubectl("apply", "-f", "-", stdin=manifest)
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "wait",
        "--for=condition=Ready",
        "pod/server",
        "pod/client",
        "--timeout=120s",
    )
    server = cluster.kubectl_json("-n", NAMESPACE, "get", "pod", "server")
    client = cluster.kubectl_json("-n", NAMESPACE, "get", "pod", "client")
    assert server["spec"]["nodeName"] != client["spec"]["nodeName"]
    server_ip = server["status"]["podIP"]

    def from_client(script: str) -> str:
        return cluster.kubectl("-n", NAMESPACE, "exec", "client", "--", "bash", "-c", script)

    # Across nodes, pod address to pod address.
    from_client(f"exec 3<>/dev/tcp/{server_ip}/{PORT}")
    # The Service's name resolves through CoreDNS to its ClusterIP, which kube-proxy forwards.
    service_ip = cluster.kubectl(
        "-n", NAMESPACE, "get", "service", "server", "-o", "jsonpath={.spec.clusterIP}"
    )
    resolved = from_client(f"getent hosts server.{NAMESPACE}.svc.cluster.local").split()
    assert resolved[0] == service_ip
    from_client(f"exec 3<>/dev/tcp/server.{NAMESPACE}/{PORT}")
    assert from_client("getent hosts kubernetes.default").split()[0] == cluster.kubectl(
        "get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"
    )
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
