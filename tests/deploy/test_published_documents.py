"""Every document we publish passes its own format's validator.

Checked here: the OpenAPI document (docs/openapi.yaml) with openapi-spec-validator, the
validator generated clients and Swagger UI agree with, and kind-cluster.yaml decoded strictly
into kind's own v1alpha4 types (tests/deploy/kind_config, a small Go program on kind's module),
as `kind create cluster` reads it. The other published documents are checked where their format
lives:

- Kubernetes and Knative manifests, Helm values: kubernetes-validate and the CRDs' schemas
  (test_manifests.py);
- docker-compose.yml: check-jsonschema with the compose-spec schema (test_manifests.py);
- infra/compose/prometheus.yml: `promtool check config` (test_manifests.py);
- infra/prometheus/prometheus.yml, a template: `promtool check config` on every platform start;
- Prometheus rules and their unit tests: `promtool check rules` and `promtool test rules`
  (tests/unit/test_prometheus_rules.py);
- Grafana dashboards: every panel query on a real Prometheus (tests/e2e/test_dashboard_queries.py);
- stack.yml: faas-cli, which generates the function resources from it (test_manifests.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from localplatform import toolchain
from localplatform.profile import REPO_ROOT

OPENAPI = REPO_ROOT / "docs" / "openapi.yaml"
KIND_CONFIG = REPO_ROOT / "kind-cluster.yaml"
KIND_CONFIG_CHECK = Path(__file__).parent / "kind_config"


def _load(text: str) -> dict[str, Any]:
    document = yaml.safe_load(text)
    assert isinstance(document, dict), "the OpenAPI document is not a mapping"
    return document


def test_the_openapi_document_is_valid() -> None:
    validate(_load(OPENAPI.read_text()), base_uri=OPENAPI.as_uri())


def test_the_validator_refuses_a_description_split_by_an_unquoted_comma() -> None:
    """The mistake the document once shipped with: in a YAML flow mapping, an unquoted comma
    ends the description, and the rest becomes a stray key the validator must refuse."""
    text = OPENAPI.read_text()
    quoted = "description: 'the campaign has ended, or an ad id belongs to another campaign'"
    assert quoted in text, (
        "the 409 of PUT /function/campaigns/{campaignId} changed: update this test"
    )
    broken = text.replace(quoted, quoted.replace("'", ""))
    with pytest.raises(OpenAPIValidationError):
        validate(_load(broken), base_uri=OPENAPI.as_uri())


def test_every_path_answers_errors_with_the_error_body() -> None:
    """Bad input gets a 4xx with {error, message, requestId}: every 4xx the document lists
    either refers to a shared response or carries the Error schema."""
    document = _load(OPENAPI.read_text())
    shared = document["components"]["responses"]
    wrong = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, response in operation["responses"].items():
                if not str(code).startswith("4"):
                    continue
                if "$ref" in response:
                    response = shared[response["$ref"].rsplit("/", 1)[-1]]
                schema = (response.get("content") or {}).get("application/json", {}).get("schema")
                if schema != {"$ref": "#/components/schemas/Error"}:
                    wrong.append(f"{method.upper()} {path} {code}")
    assert not wrong, f"4xx answers without the error body: {wrong}"


@pytest.fixture(scope="module")
def kind_config_check() -> Path:
    try:
        return toolchain.ensure_go_command(KIND_CONFIG_CHECK, "kind-config-check")
    except toolchain.ToolchainError as exc:
        pytest.fail(
            f"cannot build {KIND_CONFIG_CHECK} ({exc}); its modules must be downloaded first: "
            f"`cd {KIND_CONFIG_CHECK.relative_to(REPO_ROOT)} && go mod download`",
            pytrace=False,
        )


def _kind_config_errors(check: Path, path: Path) -> str:
    done = subprocess.run([str(check), str(path)], capture_output=True, text=True, timeout=60)
    return "" if done.returncode == 0 else done.stderr or done.stdout or "refused"


def test_the_kind_cluster_config_is_valid(kind_config_check: Path) -> None:
    assert _kind_config_errors(kind_config_check, KIND_CONFIG) == ""


def test_the_kind_config_check_refuses_a_misspelt_field_and_a_wrong_type(
    kind_config_check: Path, tmp_path: Path
) -> None:
    text = KIND_CONFIG.read_text()
    assert "extraPortMappings:" in text and "hostPort: 8080" in text
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text(text.replace("extraPortMappings:", "extraPortMapings:"))
    assert 'unknown field "extraPortMapings"' in _kind_config_errors(kind_config_check, misspelt)
    wrong_type = tmp_path / "wrong-type.yaml"
    wrong_type.write_text(text.replace("hostPort: 8080", 'hostPort: "8080x"'))
    assert "hostPort" in _kind_config_errors(kind_config_check, wrong_type)
