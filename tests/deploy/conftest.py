"""Fixtures for the offline checks of the deployment files (Kubernetes, Knative, compose, images).

Nothing here needs the test platform, a cluster or a container engine. What the checks need is
pinned and fetched by `make deploy-tools` (localplatform.deploy_tools), which `make test` runs
first; a missing tool fails with the command to run, it never skips.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from localplatform import deploy_tools, images, toolchain
from localplatform.profile import REPO_ROOT

K8S_DIR = REPO_ROOT / "infra" / "k8s"
SCHEMAS_DIR = Path(__file__).parent / "schemas"
STACKS = (REPO_ROOT / "stack.yml", REPO_ROOT / "stack.baseline.yml")
KUBERNETES_VERSION = "1.33"  # kind-cluster.yaml's node image


@dataclass(frozen=True)
class Resource:
    """One Kubernetes object and the file it came from."""

    path: Path
    doc: dict

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def api_version(self) -> str:
        return self.doc["apiVersion"]

    @property
    def name(self) -> str:
        return self.doc["metadata"]["name"]

    @property
    def namespace(self) -> str | None:
        return self.doc["metadata"].get("namespace")

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} ({self.path.relative_to(REPO_ROOT)})"


def load_resources(path: Path) -> list[Resource]:
    return [Resource(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifest_files() -> list[Path]:
    """Every Kubernetes manifest we ship: the YAML under infra/k8s, except the chart values."""
    return sorted(
        p
        for p in K8S_DIR.rglob("*.yaml")
        if p.relative_to(K8S_DIR).as_posix() != "openfaas/values.yaml"
    )


def all_resources() -> list[Resource]:
    return [r for path in manifest_files() for r in load_resources(path)]


def load_generator() -> ModuleType:
    """infra/k8s/generate.py as a module (infra/ is not a package)."""
    spec = importlib.util.spec_from_file_location("k8s_generate", K8S_DIR / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def require(what: str, fetch: object) -> object:
    """Call `fetch`; a ToolchainError becomes a failure that says how to get the tool."""
    try:
        return fetch()  # type: ignore[operator]
    except toolchain.ToolchainError as exc:
        pytest.fail(f"{what} is missing ({exc}); run `make deploy-tools`", pytrace=False)


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="session")
def faas_cli() -> Path:
    return require("faas-cli", deploy_tools.faas_cli)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def cluster_env(generator: ModuleType) -> dict[str, str]:
    return generator.read_env_file(K8S_DIR / "functions" / "cluster.env")


@pytest.fixture(scope="session")
def shrinkwrapped(faas_cli: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`faas-cli build --shrinkwrap` for both stacks, in a scratch copy of the repository
    (build/ and template/ of the checkout belong to the local platform's image builder)."""
    root = tmp_path_factory.mktemp("shrinkwrap")
    for name in ("templates", "functions", "shared_layer"):
        shutil.copytree(REPO_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for stack in STACKS:
        shutil.copy2(stack, root / stack.name)
        images.shrinkwrap(faas_cli, root / stack.name, root=root)
    yield root / "build"


@pytest.fixture(scope="session")
def generated_functions(faas_cli: Path, cluster_env: dict[str, str]) -> list[Resource]:
    """`faas-cli generate` for both stacks with the cluster's environment: Function resources."""
    resources = []
    for stack in STACKS:
        result = subprocess.run(
            [str(faas_cli), "generate", "-f", str(stack), "--namespace", "ads"],
            cwd=REPO_ROOT,
            env={"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT / ".local"), **cluster_env},
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"faas-cli generate -f {stack.name}: {result.stderr}"
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        resources += [Resource(stack, d) for d in docs]
    return resources
