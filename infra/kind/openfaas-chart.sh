#!/usr/bin/env bash
# The OpenFaaS CE chart 15.0.6 rendered with our values (infra/k8s/openfaas/values.yaml) by
# `helm template`, and linted, into .local/kind/openfaas-rendered.yaml. The chart comes from its
# Helm repository; where that is refused, from the unmodified archive in OPENFAAS_SOURCES_DIR,
# checked against its sha256 first. Either is kept, so only the first run needs the network.
#
#   infra/kind/openfaas-chart.sh     # prints the rendered file's path
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chart_version=15.0.6
chart_sha256=1361a77c2cdcfb2ea95d0a3827c6227e92951912e26617553e444ae3b62c7bc0
values="$REPO_ROOT/infra/k8s/openfaas/values.yaml"
out="$KIND_STATE/openfaas-rendered.yaml"

"$KIND_HERE/tools.sh" helm
helm="$KIND_BIN/helm"
if [[ -n "${OPENFAAS_SOURCES_DIR:-}" ]]; then
    chart="$OPENFAAS_SOURCES_DIR/openfaas-$chart_version.tgz"
    echo "$chart_sha256  $chart" | sha256sum --check --quiet - \
        || fail "$chart: sha256 differs from the pinned $chart_sha256"
else
    # Pulled once and kept, so that later renders (make test's, inside its network namespace)
    # need no network.
    chart="$KIND_STATE/charts/openfaas-$chart_version.tgz"
    if [[ ! -f "$chart" ]]; then
        progress "pulling the OpenFaaS chart $chart_version from its Helm repository"
        mkdir -p "$KIND_STATE/charts"
        "$helm" pull openfaas --repo https://openfaas.github.io/faas-netes/ \
            --version "$chart_version" -d "$KIND_STATE/charts" >&2
    fi
fi
progress "helm lint and helm template of the OpenFaaS chart $chart_version with $values"
"$helm" lint --strict "$chart" -f "$values" >&2
"$helm" template openfaas "$chart" --namespace openfaas -f "$values" >"$out"
echo "$out"
