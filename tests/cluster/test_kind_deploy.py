"""`make kind-deploy` (infra/k8s/deploy.sh openfaas) on this instance's kind cluster: the data
stores come up from their manifests on volumes, the migrations and topics Jobs complete, and the
whole deploy finishes, the second time changing nothing.

deploy.sh pushes images to the cluster's registry and calls the gateway on 127.0.0.1, so these
tests run where the host's loopback is reachable (`make test-cluster`, not the test platform's
network namespace).
"""

from __future__ import annotations

from .conftest import REPO_ROOT, Cluster, Run

MIGRATIONS = sorted((REPO_ROOT / "infra" / "sql" / "migrations").glob("*.sql"))


def test_postgres_runs_on_its_volume_with_every_migration(
    cluster: Cluster, deploys: list[Run]
) -> None:
    claim = cluster.kubectl_json("-n", "ads", "get", "pvc", "data-ads-postgres-0")
    assert claim["status"]["phase"] == "Bound", deploys[0].output[-2000:]
    versions = cluster.kubectl(
        "-n", "ads", "exec", "ads-postgres-0", "--", "psql", "-U", "adserver", "-d", "adserver",
        "-At", "-c", "SELECT version FROM schema_migrations ORDER BY version",
    )  # fmt: skip
    assert [int(v) for v in versions.split()] == [int(p.name[:4]) for p in MIGRATIONS]


def test_redis_keeps_its_append_only_file_on_its_volume(
    cluster: Cluster, deploys: list[Run]
) -> None:
    claim = cluster.kubectl_json("-n", "ads", "get", "pvc", "data-redis-0")
    assert claim["status"]["phase"] == "Bound", deploys[0].output[-2000:]

    def redis(*args: str) -> list[str]:
        out = cluster.kubectl("-n", "ads", "exec", "redis-0", "--", "redis-cli", *args)
        return out.split()

    assert redis("CONFIG", "GET", "appendonly") == ["appendonly", "yes"]
    assert redis("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", "noeviction"]
    assert redis("SET", "kind-deploy-test", "1") == ["OK"]
    files = cluster.kubectl("-n", "ads", "exec", "redis-0", "--", "ls", "-R", "/data")
    assert "appendonly" in files


def test_kafka_has_the_product_topics(cluster: Cluster, deploys: list[Run]) -> None:
    job = cluster.kubectl_json("-n", "ads", "get", "job", "ads-kafka-topics")
    assert job["status"].get("succeeded") == 1, deploys[0].output[-2000:]
    printed = cluster.kubectl("-n", "ads", "logs", "job/ads-kafka-topics").split()
    assert {"impressions", "clicks", "events-dlq"} <= set(printed)


def test_the_whole_deploy_finishes_and_a_second_run_changes_nothing(deploys: list[Run]) -> None:
    first = deploys[0]
    assert first.returncode == 0, f"kind-deploy failed:\n{first.output[-3000:]}"
    second = deploys[1]
    assert second.returncode == 0, second.output[-3000:]
    changed = [
        line
        for line in second.output.splitlines()
        if line.endswith((" created", " configured")) or "pushing" in line or "deployed" in line
    ]
    assert changed == [], changed


PULL_ALWAYS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: console-pull-always, namespace: ads}
spec:
  replicas: 2
  selector: {matchLabels: {app: console-pull-always}}
  template:
    metadata: {labels: {app: console-pull-always}}
    spec:
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
           labelSelector: {matchLabels: {app: console-pull-always}}}
      containers:
        - name: console
          image: ads/console:0.1.0
          imagePullPolicy: Always
          readinessProbe:
            httpGet: {path: /_/ready, port: 8080}
            periodSeconds: 2
"""


def test_function_images_are_pulled_from_the_cluster_registry(
    cluster: Cluster, deploys: list[Run]
) -> None:
    """As faas-netes CE starts functions: imagePullPolicy Always, the image named as in
    stack.yml. Each worker pulls it through the registry and the function answers /_/ready."""
    cluster.kubectl("apply", "-f", "-", stdin=PULL_ALWAYS)
    try:
        cluster.kubectl(
            "-n", "ads", "rollout", "status", "deployment/console-pull-always", "--timeout=300s"
        )
        pods = cluster.kubectl_json("-n", "ads", "get", "pods", "-l", "app=console-pull-always")
        nodes = {p["spec"]["nodeName"] for p in pods["items"]}
        assert len(nodes) == 2, nodes
        events = cluster.kubectl("-n", "ads", "get", "events", "--field-selector", "reason=Pulled")
        assert "console" in events and "Successfully pulled" in events, events
    finally:
        cluster.kubectl("-n", "ads", "delete", "deployment", "console-pull-always", check=False)
