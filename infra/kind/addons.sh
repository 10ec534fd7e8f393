#!/usr/bin/env bash
# Add-ons of a kind cluster whose images were built here: local-path-provisioner (volumes for
# PersistentVolumeClaims, as kind's published node image has it), metrics-server (the HPAs' CPU
# figures) and kube-router's network policy controller (NetworkPolicy enforcement, which kindnet
# brings on the published path). Each is built from the Go module proxy at versions.env's pin, its
# image loaded into the nodes; the first two get the upstream manifest from the same module with
# that image, kube-router network-policy-controller.yaml.
#
#   KIND_CLUSTER=adserver infra/kind/addons.sh [storage] [metrics-server] [netpol]   # all by default
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cluster="${KIND_CLUSTER:-adserver}"
metrics_image="registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION"
netpol_image="ads-local/kube-router:$KUBE_ROUTER_VERSION"
storage_image="rancher/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION"
helper_image="${DEBIAN_IMAGE:-ads-local/debian:bookworm}"

addons=("$@")
if (($# == 0)); then addons=(storage metrics-server netpol); fi
tools=("${addons[@]/#storage/local-path-provisioner}")
"$KIND_HERE/tools.sh" kind kubernetes "${tools[@]/#netpol/kube-router}"
kubectl() { docker exec -i "$cluster-control-plane" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }

# load NAME IMAGE: images/NAME with the binary NAME, built and loaded into every node.
load() {
    local dir="$KIND_STATE/context/$1"
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$KIND_HERE/images/$1/Dockerfile" "$KIND_BIN/$1" "$dir/"
    progress "image $2"
    DOCKER_BUILDKIT=0 docker build --quiet -t "$2" "$dir" >/dev/null 2>"$dir/build.log" \
        || { cat "$dir/build.log" >&2; fail "docker build of $2 failed"; }
    kind_load "$2"
}

# kind_load IMAGE: into every node that does not hold this image id yet (kind checks the id).
kind_load() {
    local log
    log="$(mktemp)"
    "$KIND_BIN/kind" load docker-image --name "$cluster" "$1" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; fail "kind load $1 failed"; }
    rm -f "$log"
}

# storage: local-path-provisioner as the default StorageClass `standard` (kind's name for it),
# its volume helper pods on the Debian base instead of busybox. Where kind found no storage
# manifest in the node image it made `standard` a host-path class, which provisions nothing.
storage() {
    load local-path-provisioner "$storage_image"
    kind_load "$helper_image"
    progress "local-path-provisioner $LOCAL_PATH_PROVISIONER_VERSION (its deploy/local-path-storage.yaml) as StorageClass standard"
    if [[ "$(kubectl get storageclass standard -o jsonpath='{.provisioner}' 2>/dev/null)" != rancher.io/local-path ]]; then
        kubectl delete storageclass standard --ignore-not-found >/dev/null
    fi
    sed -e "s#image: rancher/local-path-provisioner:.*#image: $storage_image#" -e "s#image: busybox#image: $helper_image#" \
        -e 's#^  name: local-path$#  name: standard\n  annotations:\n    storageclass.kubernetes.io/is-default-class: "true"#' \
        "$(module_dir "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION")/deploy/local-path-storage.yaml" \
        | kubectl apply -f - >/dev/null
    kubectl -n local-path-storage rollout status deployment/local-path-provisioner --timeout=300s >/dev/null
}

# metrics-server: its APIService is registered only once the Service answers. Registered
# with the rest, the API server may connect to the Service's address before kube-proxy rewrites
# it, and that connection then never reaches metrics-server; the API server keeps it open and
# the metrics API stays unavailable (FailedDiscoveryCheck), so the HPAs never scale.
metrics-server() {
    load metrics-server "$metrics_image"
    progress "metrics-server $METRICS_SERVER_VERSION (its manifests/base; kind's kubelet certificates are self-signed)"
    local manifest
    manifest="$("$KIND_BIN/kubectl" kustomize "$(module_dir "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION")/manifests/base" 2>/dev/null \
        | sed -e "s#image: .*metrics-server:.*#image: $metrics_image#" \
            -e 's#- --cert-dir=/tmp#- --cert-dir=/tmp\n        - --kubelet-insecure-tls#')"
    documents "$manifest" '!APIService' | kubectl apply -f - >/dev/null
    kubectl -n kube-system rollout status deployment/metrics-server --timeout=300s >/dev/null
    documents "$manifest" APIService | kubectl apply -f - >/dev/null
    kubectl wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=120s >/dev/null
}

# documents YAML KIND: the documents of YAML whose kind is KIND; `documents YAML !KIND`: the others.
documents() {
    awk -v kind="${2#!}" -v others="${2:0:1}" '
        function flush() { if (doc != "" && (others == "!") != found) printf "%s---\n", doc; doc = ""; found = 0 }
        /^---$/ { flush(); next }
        $0 == "kind: " kind { found = 1 }
        { doc = doc $0 "\n" }
        END { flush() }' <<<"$1"
}

# netpol: kube-router's network policy controller (iptables and ipsets, which this kernel has;
# kube-network-policies needs nftables' queue statement, which it lacks).
netpol() {
    "$KIND_HERE/images.sh" kube-router >/dev/null
    kind_load "$netpol_image"
    progress "kube-router $KUBE_ROUTER_VERSION's network policy controller (network-policy-controller.yaml)"
    sed -e "s#image: ads-local/kube-router:.*#image: $netpol_image#" "$KIND_HERE/network-policy-controller.yaml" \
        | kubectl apply -f - >/dev/null
    kubectl -n kube-system rollout status daemonset/kube-router --timeout=300s >/dev/null
}

for addon in "${addons[@]}"; do
    "$addon"
done
progress "add-ons ready: ${addons[*]}"
