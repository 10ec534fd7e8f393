#!/usr/bin/env bash
# The OpenFaaS CE chart 15.0.6 rendered with our values (infra/k8s/openfaas/values.yaml) by
# `helm template`, and linted, into .local/kind/openfaas-rendered.yaml. The chart comes from its
# Helm repository; where that is refused, from the unmodified archive in OPENFAAS_SOURCES_DIR,
# checked against its sha256 first.
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
    source=("$chart")
else
    source=(openfaas --repo https://openfaas.github.io/faas-netes/ --version "$chart_version")
fi
progress "helm lint and helm template of the OpenFaaS chart $chart_version with $values"
if [[ -n "${OPENFAAS_SOURCES_DIR:-}" ]]; then
    "$helm" lint --strict "$chart" -f "$values" >&2
fi
"$helm" template openfaas "${source[@]}" --namespace openfaas -f "$values" >"$out"
echo "$out"
