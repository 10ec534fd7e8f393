"""Every Kubernetes manifest validates: built-in kinds against the schemas of Kubernetes 1.33
(kubernetes-validate, strict: unknown fields fail), custom resources against their CRD's
openAPIV3Schema (CloudNativePG, Knative, from those projects' pinned modules) or, where no
registry here serves the CRD, against the documented fields in tests/deploy/schemas/.
Also: the generated files are up to date, the chart values are ones the chart documents,
docker-compose.yml is a valid compose file, and the compose Prometheus config loads.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from localplatform import deploy_tools
from localplatform.components.gateway import Gateway
from localplatform.profile import DEV, REPO_ROOT

from .conftest import (
    K8S_DIR,
    KUBERNETES_VERSION,
    SCHEMAS_DIR,
    Resource,
    all_resources,
    load_resources,
    manifest_files,
    require,
)


def _crd_schemas() -> dict[str, dict]:
    """`group/version/Kind` -> openAPIV3Schema, from every pinned CRD file."""
    schemas = {}
    for source in deploy_tools.CRD_SOURCES:
        directory = require(f"{source.name} CRDs", lambda s=source: deploy_tools.crd_dir(s))
        for path in sorted(Path(directory).glob("*.yaml")):  # type: ignore[arg-type]
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    key = f"{spec['group']}/{version['name']}/{spec['names']['kind']}"
                    schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def _documented_schemas(crds: dict[str, dict]) -> dict[str, dict]:
    schemas: dict[str, dict] = {}
    for path in sorted(SCHEMAS_DIR.glob("*.yaml")):
        if path.name != "openfaas-values.yaml":
            schemas.update(yaml.safe_load(path.read_text()))
    # KafkaSource embeds Knative's sink and delivery duck types: take them from the pinned CRDs.
    source = schemas["sources.knative.dev/v1beta1/KafkaSource"]["properties"]["spec"]
    ping = crds["sources.knative.dev/v1/PingSource"]["properties"]["spec"]["properties"]
    trigger = crds["eventing.knative.dev/v1/Trigger"]["properties"]["spec"]["properties"]
    source["properties"]["sink"] = copy.deepcopy(ping["sink"])
    source["properties"]["delivery"] = copy.deepcopy(trigger["delivery"])
    return schemas


@pytest.fixture(scope="session")
def schemas() -> dict[str, dict]:
    crds = _crd_schemas()
    return {**crds, **_documented_schemas(crds)}


def unknown_fields(value: Any, schema: dict, where: str = "") -> Iterator[str]:
    """Fields the API server would drop (structural pruning), i.e. misspelt or misplaced ones:
    jsonschema accepts them, because CRD schemas rarely say additionalProperties: false."""
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                yield from unknown_fields(item, properties[key], f"{where}.{key}")
            elif isinstance(extra, dict):
                yield from unknown_fields(item, extra, f"{where}.{key}")
            elif properties is not None and extra is None and where:
                yield f"{where}.{key}"
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from unknown_fields(item, schema["items"], f"{where}[{index}]")


def validate_resource(resource: Resource, schemas: dict[str, dict]) -> None:
    try:
        kubernetes_validate.validate(resource.doc, KUBERNETES_VERSION, strict=True)
        return
    except kubernetes_validate.SchemaNotFoundError:
        pass  # a custom resource: validated below
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{resource}: {exc.message} at {list(exc.path)}", pytrace=False)
    key = f"{resource.api_version}/{resource.kind}"
    assert key in schemas, f"{resource}: no schema known for {key}"
    errors = sorted(
        jsonschema.Draft7Validator(schemas[key]).iter_errors(resource.doc), key=lambda e: e.path
    )
    assert not errors, f"{resource}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
    unknown = list(unknown_fields(resource.doc["spec"], schemas[key]["properties"]["spec"], "spec"))
    assert not unknown, f"{resource}: fields {key} does not have: {unknown}"


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_manifest_validates(path: Path, schemas: dict[str, dict]) -> None:
    resources = load_resources(path)
    assert resources, f"{path}: no resources"
    for resource in resources:
        assert resource.namespace in ("ads", "openfaas") or resource.kind == "Namespace", (
            f"{resource}: namespace {resource.namespace!r}"
        )
        validate_resource(resource, schemas)


def test_the_validator_refuses_a_misspelt_field(schemas: dict[str, dict]) -> None:
    """The checks above can fail: a typo in a built-in and in a custom resource is caught."""
    by_kind = {r.kind: r for r in all_resources()}
    broken = copy.deepcopy(by_kind["StatefulSet"].doc)
    broken["spec"]["replica"] = 1
    with pytest.raises(pytest.fail.Exception):
        validate_resource(Resource(REPO_ROOT / "broken.yaml", broken), schemas)
    cluster = copy.deepcopy(by_kind["Cluster"].doc)
    cluster["spec"]["storage"]["sise"] = "1Gi"
    with pytest.raises(AssertionError, match="sise"):
        validate_resource(Resource(REPO_ROOT / "broken.yaml", cluster), schemas)


def test_faas_cli_generates_valid_function_resources(
    generated_functions: list[Resource], schemas: dict[str, dict]
) -> None:
    names = {r.name for r in generated_functions}
    functions = {p.name for p in (REPO_ROOT / "functions").iterdir() if p.is_dir()}
    assert names == functions
    for resource in generated_functions:
        assert resource.kind == "Function" and resource.namespace == "ads", resource
        validate_resource(resource, schemas)
        env = resource.doc["spec"].get("environment", {})
        assert all(value for value in env.values()), f"{resource}: empty value in {env}"


def test_generated_manifests_are_up_to_date(generator: ModuleType) -> None:
    stale = generator.stale_files(generator.render_all())
    assert not stale, f"out of date, run `python infra/k8s/generate.py`: {stale}"


def _flatten(values: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and not path.endswith(("resources", "affinity")):
            yield from _flatten(value, f"{path}.")
        else:
            yield path, value


def test_openfaas_values_use_only_documented_keys() -> None:
    documented = yaml.safe_load((SCHEMAS_DIR / "openfaas-values.yaml").read_text())
    types = {"string": str, "boolean": bool, "integer": int, "object": dict}
    values = yaml.safe_load((K8S_DIR / "openfaas" / "values.yaml").read_text())
    for path, value in _flatten(values):
        assert path in documented, f"values.yaml: {path} is not a documented chart value"
        assert isinstance(value, types[documented[path]]), f"{path}: {value!r}"


def test_openfaas_values_match_the_local_gateway_and_our_namespace(generator: ModuleType) -> None:
    values = yaml.safe_load((K8S_DIR / "openfaas" / "values.yaml").read_text())
    local = Gateway(DEV).command().env
    gateway = values["gateway"]
    assert gateway["readTimeout"] == local["read_timeout"]
    assert gateway["writeTimeout"] == local["write_timeout"]
    assert gateway["upstreamTimeout"] == local["upstream_timeout"]
    assert values["functionNamespace"] == generator.NAMESPACE
    assert values["basic_auth"] is True and values["generateBasicAuth"] is False
    assert values["prometheus"]["create"] is True


def test_docker_compose_file_is_valid() -> None:
    check = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [
            str(check),
            "--builtin-schema",
            "vendor.compose-spec",
            str(REPO_ROOT / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_pin_images_and_start_in_order() -> None:
    services = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        image = service["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest", f"{name}: image {image} has no pinned tag"
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
    # The migrations wait for a healthy database; topics for a healthy broker.
    assert services["migrations"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["kafka-topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["kafka"]


def test_compose_prometheus_config_loads() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install prometheus (.ci/run does)", pytrace=False)
    result = subprocess.run(
        [promtool, "check", "config", str(REPO_ROOT / "infra" / "compose" / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_is_valid_with_or_without_dashboards() -> None:
    provisioning = REPO_ROOT / "infra" / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "${PROMETHEUS_URL}"
    providers = yaml.safe_load((provisioning / "dashboards" / "adserver.yaml").read_text())
    (provider,) = providers["providers"]
    path = provider["options"]["path"]
    # Kubernetes and compose mount the dashboards where the provider looks, and say where
    # Prometheus is.
    grafana = next(r for r in all_resources() if r.kind == "Deployment" and r.name == "grafana")
    pod = grafana.doc["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["dashboards"] == path
    assert mounts["provisioning"] == "/etc/grafana/provisioning"
    assert "PROMETHEUS_URL" in {e["name"] for e in container["env"]}
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    assert f"./infra/grafana/dashboards:{path}:ro" in compose["grafana"]["volumes"]
    assert "PROMETHEUS_URL" in compose["grafana"]["environment"]
    # The ConfigMap items are the files create-configmaps.sh puts in it.
    script = (K8S_DIR / "grafana" / "create-configmaps.sh").read_text()
    volumes = {v["name"]: v for v in pod["volumes"]}
    for item in volumes["provisioning"]["configMap"]["items"]:
        key, path_in_dir = item["key"], item["path"]
        assert f"--from-file={key}=infra/grafana/provisioning/{path_in_dir}" in script
    for dashboard in sorted((REPO_ROOT / "infra" / "grafana" / "dashboards").glob("*.json")):
        doc = yaml.safe_load(dashboard.read_text())
        assert isinstance(doc, dict) and "title" in doc, f"{dashboard}: not a Grafana dashboard"
