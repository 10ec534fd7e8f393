"""The deployments agree with each other and with stack.yml: a change in one place that is not
made in the others fails here, before a cluster or a compose run finds it.

Functions, secrets, topics, environment variables, network policies, published ports and
autoscaling bounds are each checked across the local platform, docker-compose.yml, the
Kubernetes manifests and the Knative path.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from localplatform import images
from localplatform.components.kafka import _TOPIC_CONFIGS, TOPICS
from localplatform.profile import DEV, REPO_ROOT

from .conftest import K8S_DIR, STACKS, Resource, all_resources

STACK, BASELINE = STACKS
COMPOSE = REPO_ROOT / "docker-compose.yml"
SECRETS_SCRIPT = K8S_DIR / "secrets" / "create-secrets.sh"
DEFAULT_RETENTION_MS = 168 * 3_600_000  # the broker's log.retention.hours=168
ENV_FILES = {
    "kubernetes (infra/k8s/functions/cluster.env)": K8S_DIR / "functions" / "cluster.env",
    "knative (infra/k8s/knative/knative.env)": K8S_DIR / "knative" / "knative.env",
}
# Namespaces made by the operators' own installers, which our policies may name.
OPERATOR_NAMESPACES = {"cnpg-system", "knative-eventing"}


@pytest.fixture(scope="session")
def resources() -> list[Resource]:
    return all_resources()


@pytest.fixture(scope="session")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def of_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r.kind == kind]


def test_every_function_folder_is_deployed_and_every_deployed_function_has_a_folder() -> None:
    folders = {p.name for p in (REPO_ROOT / "functions").iterdir() if p.is_dir()}
    product = {fn.name for fn in images.read_stack(STACK)}
    baseline = {fn.name for fn in images.read_stack(BASELINE)}
    assert baseline == {"noop"}
    assert not product & baseline
    assert folders == product | baseline, (
        f"only in functions/: {folders - product - baseline}; "
        f"only in a stack: {(product | baseline) - folders}"
    )


def created_secrets() -> dict[tuple[str, str], set[str]]:
    """(namespace, name) -> keys, for every `secret` line of create-secrets.sh."""
    created = {}
    for line in SECRETS_SCRIPT.read_text().splitlines():
        if not line.startswith("secret "):
            continue
        _, namespace, name, *pairs = shlex.split(line)
        created[(namespace, name)] = {p.split("=")[0] for p in pairs if not p.startswith("--")}
    return created


def referenced_secrets(resources: list[Resource]) -> set[tuple[str, str]]:
    """Every secret a function, a pod or an operator resource reads."""
    found = {("ads", s) for stack in STACKS for fn in images.read_stack(stack) for s in fn.secrets}

    def walk(node: object, namespace: str) -> None:
        if isinstance(node, dict):
            if "secretName" in node:
                found.add((namespace, node["secretName"]))
            for key in ("secret", "secretKeyRef"):
                if isinstance(node.get(key), dict) and "name" in node[key]:
                    found.add((namespace, node[key]["name"]))
            for value in node.values():
                walk(value, namespace)
        elif isinstance(node, list):
            for value in node:
                walk(value, namespace)

    for resource in resources:
        walk(resource.doc.get("spec"), resource.namespace or "")
    return found


def test_every_secret_read_anywhere_is_created_by_the_deployment_steps(
    resources: list[Resource],
) -> None:
    created = created_secrets()
    referenced = referenced_secrets(resources)
    missing = sorted(referenced - set(created))
    assert not missing, f"read but never created by {SECRETS_SCRIPT.name}: {missing}"
    # A function reads /var/openfaas/secrets/<name>: the secret's key must be its name.
    for stack in STACKS:
        for fn in images.read_stack(stack):
            for name in fn.secrets:
                assert name in created[("ads", name)], f"{name}: no key {name!r}"
    # The gateway and the connector read the same basic-auth files.
    assert created[("openfaas", "basic-auth")] == {"basic-auth-user", "basic-auth-password"}
    assert created[("ads", "connector-gateway-auth")] == created[("openfaas", "basic-auth")]


def test_compose_secrets_are_files_make_secrets_creates(compose: dict) -> None:
    script = (REPO_ROOT / "infra" / "compose" / "make-secrets.sh").read_text()
    listed = re.search(r"for name in ([^;]+);", script)
    assert listed, "make-secrets.sh: no `for name in ...;` list"
    made = set(listed.group(1).replace("\\\n", " ").split()) | {"basic-auth-user"}
    for name, spec in compose["secrets"].items():
        assert spec["file"] == f"./.local/compose/secrets/{name}", spec
        assert name in made, f"{name}: infra/compose/make-secrets.sh does not create it"
    for service in compose["services"].values():
        for name in service.get("secrets", []):
            assert name in compose["secrets"], name
    # Every function's secrets reach its container (stack.yml names them).
    for fn in images.read_stack(STACK):
        if fn.name in compose["services"]:
            assert set(fn.secrets) <= set(compose["services"][fn.name].get("secrets", [])), fn


def compose_topics(compose: dict) -> dict[str, tuple[int, int]]:
    """topic -> (partitions, retention.ms) from the kafka-topics one-shot service."""
    script = compose["services"]["kafka-topics"]["command"][0]
    topics = {}
    for line in script.splitlines():
        match = re.search(r"--topic (\S+) --partitions (\d+) --config retention.ms=(\d+)", line)
        if match:
            topics[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return topics


def strimzi_topics(resources: list[Resource]) -> dict[str, tuple[int, int]]:
    return {
        r.name: (r.doc["spec"]["partitions"], int(r.doc["spec"]["config"]["retention.ms"]))
        for r in of_kind(resources, "KafkaTopic")
    }


def test_topics_are_the_same_everywhere(resources: list[Resource], compose: dict) -> None:
    local = {
        topic: (
            partitions,
            int(_TOPIC_CONFIGS.get(topic, {}).get("retention.ms", DEFAULT_RETENTION_MS)),
        )
        for topic, partitions in TOPICS.items()
    }
    assert strimzi_topics(resources) == local
    assert compose_topics(compose) == local


def test_every_topic_a_function_subscribes_to_exists(
    resources: list[Resource], compose: dict, generator: ModuleType
) -> None:
    functions = generator.read_stack()
    subscribed = {t for fn in functions for t in fn.topics}
    assert subscribed, "no function subscribes to a topic"
    assert subscribed <= set(strimzi_topics(resources)) and subscribed <= set(
        compose_topics(compose)
    )
    connector = next(r for r in resources if r.kind == "Deployment" and r.name == "kafka-connector")
    env = {
        e["name"]: e.get("value")
        for e in connector.doc["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert set(env["CONNECTOR_TOPICS"].split(",")) == subscribed
    assert env["CONNECTOR_DLQ_TOPIC"] in strimzi_topics(resources)
    sources = {r.name: r for r in of_kind(resources, "KafkaSource")}
    for fn in functions:
        if fn.topics:
            assert sources[f"{fn.name}-events"].doc["spec"]["topics"] == list(fn.topics)


def stack_variables(generator: ModuleType) -> set[str]:
    return {
        var
        for stack in STACKS
        for fn in generator.read_stack(stack)
        for value in fn.environment.values()
        for var in generator.variables(value)
    }


def test_every_variable_stack_yml_names_is_provided_everywhere(generator: ModuleType) -> None:
    needed = stack_variables(generator)
    assert {"DATABASE_URL", "REDIS_URL", "KAFKA_BROKERS", "GATEWAY_URL"} <= needed
    provided = {"local platform (profile.service_env)": set(DEV.service_env())}
    provided |= {where: set(generator.read_env_file(path)) for where, path in ENV_FILES.items()}
    for where, names in provided.items():
        assert not needed - names, f"{where} does not provide {sorted(needed - names)}"
    # Compose runs every function but export (it needs an S3 bucket of the user's).
    compose = yaml.safe_load(COMPOSE.read_text())
    run = {
        var
        for fn in generator.read_stack(STACK)
        if fn.name in compose["services"]
        for value in fn.environment.values()
        for var in generator.variables(value)
    }
    missing = run - set(compose["x-function"]["environment"])
    assert not missing, f"docker-compose.yml (x-function) does not provide {sorted(missing)}"


def test_each_deployment_points_functions_at_its_own_services(generator: ModuleType) -> None:
    cluster = generator.read_env_file(ENV_FILES["kubernetes (infra/k8s/functions/cluster.env)"])
    assert ".ads.svc.cluster.local" in cluster["DATABASE_URL"]
    assert cluster["DATABASE_URL"].split("@")[1].startswith("ads-postgres-rw.")
    assert cluster["KAFKA_BROKERS"].startswith("ads-kafka-kafka-bootstrap.")
    assert cluster["REDIS_URL"].startswith("redis://redis.ads.")
    compose = yaml.safe_load(COMPOSE.read_text())
    env = compose["x-function"]["environment"]
    for key, service in (("DATABASE_URL", "postgres"), ("REDIS_URL", "redis")):
        assert f"@{service}:" in env[key] or f"//{service}:" in env[key], env[key]
    assert env["KAFKA_BROKERS"] == "kafka:29092"  # the broker's INTERNAL listener
    assert env["GATEWAY_URL"] == "http://gateway:8080"
    for name in {fn.name for fn in images.read_stack(STACK)} & set(compose["services"]):
        assert compose["services"][name]["image"] == next(
            fn.image for fn in images.read_stack(STACK) if fn.name == name
        )


def pod_labels(resources: list[Resource], generated_functions: list[Resource]) -> list[dict]:
    """The labels of every pod our manifests make in namespace ads, as controllers set them."""
    pods = []
    for r in resources:
        if r.namespace == "ads" and r.kind in ("Deployment", "StatefulSet", "Job"):
            pods.append(r.doc["spec"]["template"]["metadata"]["labels"])
        if r.kind == "Cluster":  # CloudNativePG labels every instance pod cnpg.io/cluster
            pods.append({"cnpg.io/cluster": r.name})
        if r.kind == "Service" and r.api_version.startswith("serving.knative.dev"):
            pods.append({"serving.knative.dev/service": r.name})
    for fn in generated_functions:  # faas-netes: faas_function plus the function's labels
        pods.append({"faas_function": fn.name, **fn.doc["spec"].get("labels", {})})
    return pods


def selects(selector: dict, labels: dict) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if (operator == "Exists" and not present) or (operator == "DoesNotExist" and present):
            return False
    return True


def check_peer(peer: dict, pods: list[dict], where: str) -> None:
    if "namespaceSelector" in peer:
        names = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        assert names in OPERATOR_NAMESPACES | {"ads", "openfaas"}, f"{where}: {names}"
        return
    selector = peer["podSelector"]
    assert any(selects(selector, p) for p in pods), f"{where}: selects no pod: {selector}"
    for expression in selector.get("matchExpressions", []):
        for value in expression.get("values", []):
            one = {**selector, "matchExpressions": [{**expression, "values": [value]}]}
            assert any(selects(one, p) for p in pods), (
                f"{where}: no pod has {expression['key']}={value}"
            )


def test_every_network_policy_selects_pods_that_exist(
    resources: list[Resource], generated_functions: list[Resource]
) -> None:
    pods = pod_labels(resources, generated_functions)
    policies = of_kind(resources, "NetworkPolicy")
    assert {p.name for p in policies} == {"redis-clients", "postgres-clients"}
    for policy in policies:
        assert any(selects(policy.doc["spec"]["podSelector"], p) for p in pods), policy
        for rule in policy.doc["spec"]["ingress"]:
            for peer in rule["from"]:
                check_peer(peer, pods, str(policy))
    (kafka,) = of_kind(resources, "Kafka")
    for listener in kafka.doc["spec"]["kafka"]["listeners"]:
        for peer in listener.get("networkPolicyPeers", []):
            check_peer(peer, pods, f"{kafka} listener {listener['name']}")


def allowed_functions(peers: list[dict]) -> dict[str, set[str]]:
    """label key -> function names a list of peers lets in."""
    allowed: dict[str, set[str]] = {}
    for peer in peers:
        for expression in peer.get("podSelector", {}).get("matchExpressions", []):
            allowed.setdefault(expression["key"], set()).update(expression["values"])
    return allowed


@pytest.mark.parametrize(
    ("store", "variable"),
    [
        ("redis-clients", "REDIS_URL"),
        ("postgres-clients", "DATABASE_URL"),
        ("kafka", "KAFKA_BROKERS"),
    ],
)
def test_only_functions_that_name_a_store_can_reach_it(
    store: str, variable: str, resources: list[Resource], generator: ModuleType
) -> None:
    clients = {fn.name for fn in generator.read_stack() if fn.reads(variable)}
    if store == "kafka":
        (kafka,) = of_kind(resources, "Kafka")
        peers = kafka.doc["spec"]["kafka"]["listeners"][0]["networkPolicyPeers"]
    else:
        policy = next(r for r in of_kind(resources, "NetworkPolicy") if r.name == store)
        peers = [p for rule in policy.doc["spec"]["ingress"] for p in rule["from"]]
        # Nothing outside the namespace reaches the store's own port.
        (data_rule,) = [
            r for r in policy.doc["spec"]["ingress"] if any("podSelector" in p for p in r["from"])
        ]
        assert all("namespaceSelector" not in p for p in data_rule["from"]), data_rule
    allowed = allowed_functions(peers)
    assert allowed == {key: clients for key in generator.FUNCTION_POD_LABELS}
    assert "serve" not in clients  # serve reaches no data store: it only calls bid


def test_published_ports_reach_what_kind_cluster_yaml_maps(resources: list[Resource]) -> None:
    kind = yaml.safe_load((REPO_ROOT / "kind-cluster.yaml").read_text())
    mappings = {
        m["containerPort"]: m["hostPort"]
        for n in kind["nodes"]
        for m in n.get("extraPortMappings", [])
    }
    values = yaml.safe_load((K8S_DIR / "openfaas" / "values.yaml").read_text())
    node_ports = {values["gateway"]["nodePort"]: "gateway"}
    for service in of_kind(resources, "Service"):
        for port in service.doc["spec"].get("ports", []):
            if "nodePort" in port:
                node_ports.setdefault(port["nodePort"], service.name)
    assert mappings == {31112: 8080, 31090: 9090, 31300: 3000}
    missing = set(mappings) - set(node_ports)
    assert not missing, f"kind maps node ports no Service opens: {missing}"
    image = kind["nodes"][0]["image"]
    assert re.fullmatch(r"kindest/node:v1\.33\.\d+@sha256:[0-9a-f]{64}", image), image


def test_autoscaling_keeps_to_the_scale_labels(
    resources: list[Resource], generator: ModuleType
) -> None:
    functions = {fn.name: fn for fn in generator.read_stack()}
    hpas = {r.name: r.doc["spec"] for r in of_kind(resources, "HorizontalPodAutoscaler")}
    assert set(hpas) == set(functions)
    knative = {
        r.name: r.doc
        for r in of_kind(resources, "Service")
        if r.api_version.startswith("serving.knative")
    }
    for name, fn in functions.items():
        assert (hpas[name]["minReplicas"], hpas[name]["maxReplicas"]) == (
            fn.min_replicas,
            fn.max_replicas,
        )
        assert 1 <= fn.min_replicas <= fn.max_replicas <= 5  # OpenFaaS CE: never 0, at most 5
        annotations = knative[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["autoscaling.knative.dev/min-scale"] == str(fn.min_replicas)
        assert annotations["autoscaling.knative.dev/max-scale"] == str(fn.max_replicas)


def test_images_the_manifests_run_are_built_by_the_repository(resources: list[Resource]) -> None:
    ours = {  # image -> how infra/k8s/deploy.sh builds it
        "ads/kafka-connector:0.1.0": "docker build -t ads/kafka-connector:0.1.0 infra/connector",
        "ads/migrations:0.1.0": "docker build -f infra/sql/Dockerfile -t ads/migrations:0.1.0 .",
    }
    deploy = (K8S_DIR / "deploy.sh").read_text()
    for image, build in ours.items():
        assert any(
            c["image"] == image
            for r in resources
            if r.kind in ("Deployment", "Job")
            for c in r.doc["spec"]["template"]["spec"]["containers"]
        ), image
        assert build in deploy, f"infra/k8s/deploy.sh does not build {image} ({build})"


def test_scripts_are_executable() -> None:
    for script in sorted(K8S_DIR.rglob("*.sh")):
        assert Path(script).stat().st_mode & 0o111, f"{script} is not executable"
