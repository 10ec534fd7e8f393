"""What the offline checks of the Kubernetes and compose files need (tests/deploy), pinned.

- faas-cli (toolchain.FAAS_CLI): `build --shrinkwrap` and `generate` run on stack.yml.
- The CRDs of the operators we deploy, from those projects' own Go modules at pinned versions
  and module hashes: CloudNativePG (config/crd/bases), Knative Serving (config/core/
  300-resources) and Knative Eventing (config/core/resources: the sink and delivery schemas
  that KafkaSource shares). Strimzi's CRDs, Knative's Kafka resources (eventing-kafka-broker)
  and the OpenFaaS chart (faas-netes) are not served by any registry reachable here; their
  schemas are written down from their documentation in tests/deploy/schemas/ instead.

Everything lands in the Go module cache (GOMODCACHE) and .local/bin, so a second run, and the
tests themselves, need no network: `go mod download` of a cached version answers from the cache.

    python -m localplatform.deploy_tools       # fetch what is missing, print where it is
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from . import prerequisites, toolchain


@dataclass(frozen=True)
class CrdSource:
    """A Go module that ships CRD YAML files under `crd_dir`."""

    name: str
    module: str
    version: str
    sum: str  # h1: hash of the module zip (go.sum form)
    crd_dir: str

    def as_binary(self) -> toolchain.GoBinary:
        # Fetched and hash-checked exactly as the pinned binaries are; never built.
        return toolchain.GoBinary(self.name, self.module, self.version, self.sum, self.version)


# name, module, version, module hash, CRD directory. Keep the versions in step with the
# operators infra/k8s/deploy.sh installs (CNPG_VERSION, KNATIVE_VERSION = 1.x for v0.(x+27)).
CRD_SOURCES = tuple(
    CrdSource(*row)
    for row in (
        (
            "cloudnative-pg",
            "github.com/cloudnative-pg/cloudnative-pg",
            "v1.28.0",
            "h1:vkv0a0ewDSfJOPJrsyUr4uczsxheReAWf/k171V0Dm0=",
            "config/crd/bases",
        ),
        (
            "knative-serving",
            "knative.dev/serving",
            "v0.47.0",
            "h1:qNe8GcI12VigsGRqBojqTE/u63rikAWAtGliEOgNxAY=",
            "config/core/300-resources",
        ),
        (
            "knative-eventing",
            "knative.dev/eventing",
            "v0.47.0",
            "h1:FfM1aS7iBn9o0v7xqIBEWcR4XZ8Ny7YyFPAOyLEgMok=",
            "config/core/resources",
        ),
    )
)


def crd_dir(source: CrdSource) -> Path:
    """The CRD directory inside the module (downloaded and hash-checked on first use)."""
    path = toolchain.download(source.as_binary()) / source.crd_dir
    if not path.is_dir():
        raise toolchain.ToolchainError(f"{source.module}@{source.version} has no {source.crd_dir}")
    return path


def faas_cli() -> Path:
    return toolchain.ensure(toolchain.FAAS_CLI)


def main() -> int:
    try:
        prerequisites.require("go")
        print(f"==> faas-cli {toolchain.FAAS_CLI.tag}: {faas_cli()}")
        for source in CRD_SOURCES:
            print(f"==> {source.name} {source.version} CRDs: {crd_dir(source)}")
    except (prerequisites.MissingPrerequisite, toolchain.ToolchainError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
