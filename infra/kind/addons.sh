#!/usr/bin/env bash
# Add-ons of a kind cluster whose images were built here: metrics-server (the HPAs' CPU figures)
# and kube-network-policies (NetworkPolicy enforcement, which kindnet brings on the published
# path). Each is built from the Go module proxy at versions.env's pin, its image loaded into the
# nodes, and the upstream manifest from the same module applied with that image.
#
#   KIND_CLUSTER=adserver infra/kind/addons.sh [metrics-server] [netpol]   # both by default
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cluster="${KIND_CLUSTER:-adserver}"
metrics_image="registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION"
netpol_image="registry.k8s.io/networking/kube-network-policies:$KUBE_NETWORK_POLICIES_VERSION"

addons=("$@")
if (($# == 0)); then addons=(metrics-server netpol); fi
"$KIND_HERE/tools.sh" kind kubernetes "${addons[@]}"
kubectl() { docker exec -i "$cluster-control-plane" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }

# load NAME IMAGE: images/NAME with the binary NAME, built and loaded into every node.
load() {
    local dir="$KIND_STATE/context/$1"
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$KIND_HERE/images/$1/Dockerfile" "$KIND_BIN/$1" "$dir/"
    progress "image $2"
    DOCKER_BUILDKIT=0 docker build --quiet -t "$2" "$dir" >/dev/null
    "$KIND_BIN/kind" load docker-image --name "$cluster" "$2" >/dev/null
}

metrics-server() {
    load metrics-server "$metrics_image"
    progress "metrics-server $METRICS_SERVER_VERSION (its manifests/base; kind's kubelet certificates are self-signed)"
    "$KIND_BIN/kubectl" kustomize "$(module_dir "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION")/manifests/base" \
        | sed -e "s#image: .*metrics-server:.*#image: $metrics_image#" \
            -e 's#- --cert-dir=/tmp#- --cert-dir=/tmp\n        - --kubelet-insecure-tls#' \
        | kubectl apply -f - >/dev/null
    kubectl -n kube-system rollout status deployment/metrics-server --timeout=300s >/dev/null
}

netpol() {
    load netpol "$netpol_image"
    progress "kube-network-policies $KUBE_NETWORK_POLICIES_VERSION (its install.yaml)"
    sed -e "s#image: registry.k8s.io/networking/kube-network-policies:.*#image: $netpol_image#" \
        "$(module_dir "sigs.k8s.io/kube-network-policies@$KUBE_NETWORK_POLICIES_VERSION")/install.yaml" \
        | kubectl apply -f - >/dev/null
    kubectl -n kube-system rollout status daemonset/kube-network-policies --timeout=300s >/dev/null
}

for addon in "${addons[@]}"; do
    "$addon"
done
progress "add-ons ready: ${addons[*]}"
