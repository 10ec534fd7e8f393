"""The OpenFaaS CE chart itself, with our values: `helm lint --strict` passes and every object
`helm template` renders validates against the Kubernetes schemas, strictly, as our own manifests
do (test_manifests). infra/kind/openfaas-chart.sh does the rendering: helm from the module
proxy (infra/kind/tools.sh), the chart from OPENFAAS_SOURCES_DIR after its sha256 check, else
from the chart repository. No cluster is needed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from localplatform.profile import REPO_ROOT

from .conftest import K8S_DIR, Resource
from .test_manifests import validate_resource

CHART_SCRIPT = REPO_ROOT / "infra" / "kind" / "openfaas-chart.sh"


@pytest.fixture(scope="module")
def rendered() -> list[Resource]:
    result = subprocess.run([str(CHART_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, f"{CHART_SCRIPT.name} failed:\n{result.stderr[-3000:]}"
    path = Path(result.stdout.strip().splitlines()[-1])
    return [Resource(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_every_rendered_object_validates(rendered: list[Resource]) -> None:
    assert len(rendered) > 10, [str(r) for r in rendered]
    for resource in rendered:
        # Built-in kinds only (its CRDs are CustomResourceDefinitions): no custom schema needed.
        validate_resource(resource, {})


def test_the_release_is_what_our_values_ask_for(rendered: list[Resource]) -> None:
    values = yaml.safe_load((K8S_DIR / "openfaas" / "values.yaml").read_text())
    by_name = {(r.kind, r.name): r for r in rendered}
    assert {r.namespace for r in rendered if r.namespace} <= {
        "openfaas",
        values["functionNamespace"],
    }
    gateway = by_name[("Deployment", "gateway")].doc["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in gateway["containers"]}
    assert set(containers) == {"gateway", "faas-netes"}  # CE: faas-netes beside the gateway
    env = {e["name"]: e.get("value") for e in containers["gateway"]["env"]}
    assert env["read_timeout"] == values["gateway"]["readTimeout"]
    assert env["upstream_timeout"] == values["gateway"]["upstreamTimeout"]
    assert env["basic_auth"] == "true"
    provider_env = {e["name"]: e.get("value") for e in containers["faas-netes"]["env"]}
    assert provider_env["function_namespace"] == values["functionNamespace"]
    for container in containers.values():
        assert container["imagePullPolicy"] == values["openfaasImagePullPolicy"]
    service = by_name[("Service", "gateway-external")].doc["spec"]
    assert service["type"] == "NodePort"
    assert service["ports"][0]["nodePort"] == values["gateway"]["nodePort"]
    # The basic-auth secret comes from our files, never from the release.
    assert ("Secret", "basic-auth") not in by_name
    assert ("Deployment", "alertmanager") not in by_name
    assert ("Deployment", "prometheus") in by_name
    assert ("Deployment", "nats") not in by_name and ("Deployment", "queue-worker") not in by_name
