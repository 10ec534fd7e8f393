"""The Kubernetes manifests that follow from stack.yml, written by a program so they cannot drift.

stack.yml stays the one source of truth for what each function is: its image, environment,
secrets, `com.openfaas.scale.min/max` labels and `topic` annotations. From it this script
writes:

- autoscaling/hpa.yaml: one HorizontalPodAutoscaler per function, for OpenFaaS CE (which has no
  autoscaler): replicas between the scale labels, on CPU.
- network-policies/data-stores.yaml: who may reach Redis and PostgreSQL: exactly the functions
  whose environment names REDIS_URL or DATABASE_URL (serve names neither, so it reaches none).
- knative/services.yaml, knative/kafka-sources.yaml, knative/dead-letters.yaml: the fully
  open-source path: each function as a Knative Service, each `topic` subscription as a
  KafkaSource, dead letters to a KafkaSink.

    python infra/k8s/generate.py            # rewrite the files
    python infra/k8s/generate.py --check    # exit 1 and name the files that differ (make test)
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

K8S_DIR = Path(__file__).resolve().parent
REPO_ROOT = K8S_DIR.parents[1]
STACK_FILE = REPO_ROOT / "stack.yml"
KNATIVE_ENV = K8S_DIR / "knative" / "knative.env"

NAMESPACE = "ads"
SECRETS_DIR = "/var/openfaas/secrets"  # where OpenFaaS mounts the functions' secrets
WATCHDOG_PORT = 8080
DLQ_TOPIC = "events-dlq"
# Pods of a function carry `faas_function: <name>` under OpenFaaS (faas-netes sets it) and
# `serving.knative.dev/service: <name>` under Knative; a policy names both.
FUNCTION_POD_LABELS = ("faas_function", "serving.knative.dev/service")
# A replica's CPU above which the HPA adds one: the template server is one Python process, so
# a replica saturates near one core; 400m leaves room for bursts before latency suffers.
HPA_CPU_PER_REPLICA = "400m"
# Scale down only after five minutes of low load, so a replica is not stopped between bursts.
HPA_SCALE_DOWN_WINDOW_S = 300
# The connector's retry schedule (infra/connector): 100, 200, 400, 800, 1600 ms, then dead letter.
RETRIES = 5
FIRST_BACKOFF = "PT0.1S"

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class StackFunction:
    """One function of stack.yml, as the manifests need it."""

    name: str
    image: str
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def topics(self) -> tuple[str, ...]:
        raw = self.annotations.get("topic", "")
        return tuple(t.strip() for t in raw.split(",") if t.strip())

    @property
    def min_replicas(self) -> int:
        return int(self.labels.get("com.openfaas.scale.min", "1"))

    @property
    def max_replicas(self) -> int:
        return int(self.labels.get("com.openfaas.scale.max", str(self.min_replicas)))

    def reads(self, variable: str) -> bool:
        """Whether its environment names `variable` (as a key): how a store's clients are found."""
        return variable in self.environment


def read_stack(path: Path = STACK_FILE) -> list[StackFunction]:
    doc = yaml.safe_load(path.read_text()) or {}
    return [
        StackFunction(
            name=name,
            image=spec["image"],
            environment={k: str(v) for k, v in (spec.get("environment") or {}).items()},
            secrets=tuple(spec.get("secrets") or ()),
            labels={k: str(v) for k, v in (spec.get("labels") or {}).items()},
            annotations={k: str(v) for k, v in (spec.get("annotations") or {}).items()},
        )
        for name, spec in (doc.get("functions") or {}).items()
    ]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines; blank lines and # comments ignored."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def variables(value: str) -> list[str]:
    """The ${NAMES} a stack.yml value refers to."""
    return [m.group(1) for m in _VARIABLE.finditer(value)]


def substitute(value: str, env: Mapping[str, str]) -> str:
    """${NAME} and ${NAME:-default} as faas-cli resolves them; a missing name is an error."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise KeyError(f"${{{name}}} has no value")

    return _VARIABLE.sub(one, value)


def _meta(name: str, component: str) -> dict:
    return {
        "name": name,
        "namespace": NAMESPACE,
        "labels": {
            "app.kubernetes.io/part-of": "adserver",
            "app.kubernetes.io/component": component,
        },
    }


def hpas(functions: list[StackFunction]) -> list[dict]:
    return [
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(fn.name, "autoscaling"),
            "spec": {
                # faas-netes names a function's Deployment after the function.
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": fn.name},
                "minReplicas": fn.min_replicas,
                "maxReplicas": fn.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "AverageValue", "averageValue": HPA_CPU_PER_REPLICA},
                        },
                    }
                ],
                "behavior": {
                    "scaleDown": {"stabilizationWindowSeconds": HPA_SCALE_DOWN_WINDOW_S},
                },
            },
        }
        for fn in functions
    ]


def function_peers(names: list[str]) -> list[dict]:
    """NetworkPolicy peers: the pods of these functions, under OpenFaaS or Knative."""
    return [
        {"podSelector": {"matchExpressions": [{"key": key, "operator": "In", "values": names}]}}
        for key in FUNCTION_POD_LABELS
    ]


@dataclass(frozen=True)
class DataStore:
    """A store only some functions may reach; `variable` in a function's environment says which."""

    name: str
    variable: str
    pod_labels: Mapping[str, str]
    port: int
    other_clients: tuple[Mapping[str, str], ...] = ()  # pod labels of non-function clients
    operator_namespace: str = ""  # namespace of an operator that must reach `operator_port`
    operator_port: int = 0


DATA_STORES = (
    DataStore("redis", "REDIS_URL", {"app.kubernetes.io/name": "redis"}, 6379),
    DataStore(
        "postgres",
        "DATABASE_URL",
        {"cnpg.io/cluster": "ads-postgres"},
        5432,
        other_clients=(
            {"app.kubernetes.io/name": "ads-migrations"},  # the migration Job
            {"cnpg.io/cluster": "ads-postgres"},  # the cluster's own instances (replication)
        ),
        # CloudNativePG's operator asks each instance manager for its status on port 8000.
        operator_namespace="cnpg-system",
        operator_port=8000,
    ),
)


def network_policies(functions: list[StackFunction]) -> list[dict]:
    policies = []
    for store in DATA_STORES:
        clients = sorted(fn.name for fn in functions if fn.reads(store.variable))
        peers = function_peers(clients) + [
            {"podSelector": {"matchLabels": dict(labels)}} for labels in store.other_clients
        ]
        ingress = [{"from": peers, "ports": [{"protocol": "TCP", "port": store.port}]}]
        if store.operator_namespace:
            operator = {"kubernetes.io/metadata.name": store.operator_namespace}
            ingress.append(
                {
                    "from": [{"namespaceSelector": {"matchLabels": operator}}],
                    "ports": [{"protocol": "TCP", "port": store.operator_port}],
                }
            )
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _meta(f"{store.name}-clients", "network-policy"),
                "spec": {
                    "podSelector": {"matchLabels": dict(store.pod_labels)},
                    "policyTypes": ["Ingress"],
                    "ingress": ingress,
                },
            }
        )
    return policies


def knative_services(functions: list[StackFunction], env: Mapping[str, str]) -> list[dict]:
    services = []
    for fn in functions:
        container: dict = {
            "image": fn.image,
            "ports": [{"containerPort": WATCHDOG_PORT}],
            "env": [
                {"name": key, "value": substitute(value, env)}
                for key, value in sorted(fn.environment.items())
            ],
            "readinessProbe": {"httpGet": {"path": "/_/ready"}},
        }
        pod: dict = {"containers": [container]}
        if fn.secrets:
            container["volumeMounts"] = [
                {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True}
            ]
            pod["volumes"] = [
                {
                    "name": "secrets",
                    "projected": {"sources": [{"secret": {"name": s}} for s in fn.secrets]},
                }
            ]
        services.append(
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "metadata": _meta(fn.name, "function"),
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {
                                "autoscaling.knative.dev/min-scale": str(fn.min_replicas),
                                "autoscaling.knative.dev/max-scale": str(fn.max_replicas),
                            }
                        },
                        "spec": pod,
                    }
                },
            }
        )
    return services


def _brokers(env: Mapping[str, str]) -> list[str]:
    return [b.strip() for b in env["KAFKA_BROKERS"].split(",") if b.strip()]


def kafka_sources(functions: list[StackFunction], env: Mapping[str, str]) -> list[dict]:
    sources = []
    for fn in functions:
        if not fn.topics:
            continue
        sources.append(
            {
                "apiVersion": "sources.knative.dev/v1beta1",
                "kind": "KafkaSource",
                "metadata": _meta(f"{fn.name}-events", "event-source"),
                "spec": {
                    "bootstrapServers": _brokers(env),
                    "topics": list(fn.topics),
                    "consumerGroup": f"knative-{fn.name}",
                    "initialOffset": "earliest",
                    "ordering": "ordered",
                    "delivery": {
                        "retry": RETRIES,
                        "backoffPolicy": "exponential",
                        "backoffDelay": FIRST_BACKOFF,
                        "deadLetterSink": {
                            "ref": {
                                "apiVersion": "eventing.knative.dev/v1alpha1",
                                "kind": "KafkaSink",
                                "name": DLQ_TOPIC,
                            }
                        },
                    },
                    "sink": {
                        "ref": {
                            "apiVersion": "serving.knative.dev/v1",
                            "kind": "Service",
                            "name": fn.name,
                        }
                    },
                },
            }
        )
    return sources


def dead_letters(_functions: list[StackFunction], env: Mapping[str, str]) -> list[dict]:
    return [
        {
            "apiVersion": "eventing.knative.dev/v1alpha1",
            "kind": "KafkaSink",
            "metadata": _meta(DLQ_TOPIC, "dead-letters"),
            "spec": {
                "topic": DLQ_TOPIC,
                "bootstrapServers": _brokers(env),
                "contentMode": "binary",
            },
        }
    ]


Renderer = Callable[[list[StackFunction], Mapping[str, str]], list[dict]]

OUTPUTS: dict[str, Renderer] = {
    "autoscaling/hpa.yaml": lambda fns, _env: hpas(fns),
    "network-policies/data-stores.yaml": lambda fns, _env: network_policies(fns),
    "knative/services.yaml": knative_services,
    "knative/kafka-sources.yaml": kafka_sources,
    "knative/dead-letters.yaml": dead_letters,
}


class _Dumper(yaml.SafeDumper):
    """Plain YAML: a list used twice is written out twice (no &anchors)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


HEADER = "# Generated by infra/k8s/generate.py from stack.yml; do not edit (make test checks it).\n"


def render_all(stack_file: Path = STACK_FILE, env_file: Path = KNATIVE_ENV) -> dict[Path, str]:
    functions = read_stack(stack_file)
    env = read_env_file(env_file)
    rendered = {}
    for relative, renderer in OUTPUTS.items():
        docs = renderer(functions, env)
        body = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, explicit_start=True, width=100)
        rendered[K8S_DIR / relative] = HEADER + body
    return rendered


def stale_files(rendered: Mapping[Path, str]) -> list[Path]:
    return [p for p, text in rendered.items() if not p.exists() or p.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    rendered = render_all()
    stale = stale_files(rendered)
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(REPO_ROOT)} (run python infra/k8s/generate.py)")
        return 1 if stale else 0
    for path in stale:
        path.write_text(rendered[path])
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
