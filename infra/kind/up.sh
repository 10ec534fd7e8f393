#!/usr/bin/env bash
# `make kind-up`: the kind cluster of kind-cluster.yaml, ready (every node Ready, CoreDNS serving).
# Where the published node image can be pulled it is used as is. Where it cannot (no registry
# reachable), the tools, every image and the node image are built here first (tools.sh,
# images.sh; cached, so only the first run is long) and the cluster gets our pod network.
#
# Settings (environment):
#   KIND_CLUSTER          cluster name (adserver)
#   KIND_GATEWAY_PORT     host port of the gateway on 127.0.0.1 (8080)
#   KIND_PROMETHEUS_PORT  host port of Prometheus (9090)
#   KIND_GRAFANA_PORT     host port of Grafana (3000)
#   KIND_NODE_IMAGE       a node image to use instead (skips the pull and the local build)
#   KIND_BUILD_IMAGES     auto (build when the pull fails), always, or never
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cluster="${KIND_CLUSTER:-adserver}"
gateway_port="${KIND_GATEWAY_PORT:-8080}"
prometheus_port="${KIND_PROMETHEUS_PORT:-9090}"
grafana_port="${KIND_GRAFANA_PORT:-3000}"
build_images="${KIND_BUILD_IMAGES:-auto}"
python="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
config="$KIND_STATE/$cluster.yaml"

command -v docker >/dev/null || fail "docker is not installed (https://docs.docker.com/engine/install/)"
docker info >/dev/null 2>&1 || fail "Docker's daemon does not answer (docker info)"

# kind: the pinned one built here when Go is there, else the one on PATH.
if command -v go >/dev/null; then
    "$KIND_HERE/tools.sh" kind
    kind="$KIND_BIN/kind"
else
    kind="$(command -v kind)" || fail "kind is not installed (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
fi

if "$kind" get clusters 2>/dev/null | grep -qx "$cluster"; then
    progress "cluster $cluster exists already (make kind-down deletes it)"
    exit 0
fi

# Privileged containers (kind's nodes) fail where the capability bounding set lacks
# CAP_SYS_RESOURCE; the test harness's runtime wrapper is then needed (infra/kind/README.md).
if ! (( (16#$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status) >> 24) & 1 )) \
    && [[ "$(docker info --format '{{.DefaultRuntime}}')" != runc-without-sys-resource ]]; then
    fail "this machine lacks CAP_SYS_RESOURCE, so kind's privileged nodes cannot start; run infra/kind/runtime/install.sh as root first (infra/kind/README.md)"
fi

for port in "$gateway_port" "$prometheus_port" "$grafana_port"; do
    # SO_REUSEADDR as Docker's proxy binds: a just-deleted cluster's port in TIME_WAIT is free.
    if "$python" -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null; then
        continue
    fi
    fail "127.0.0.1:$port is in use (make up holds 8080, 9090 and 3000): give others with KIND_GATEWAY_PORT, KIND_PROMETHEUS_PORT, KIND_GRAFANA_PORT"
done

node_image="${KIND_NODE_IMAGE:-}"
local_image=""
if [[ -z "$node_image" ]]; then
    published="$("$python" "$KIND_HERE/cluster_config.py" --published-image)"
    if [[ "$build_images" != always ]] && { docker image inspect "$published" >/dev/null 2>&1 \
        || { progress "pulling $published"; docker pull "$published" >/dev/null 2>&1; }; }; then
        progress "node image $published"
    elif [[ "$build_images" == never ]]; then
        fail "$published cannot be pulled and KIND_BUILD_IMAGES=never"
    else
        progress "no node image can be pulled: building the tools and images here (cached; about 15 min cold)"
        "$KIND_HERE/tools.sh" kind crictl pause etcd kubernetes coredns
        local_image="$("$KIND_HERE/images.sh" | tail -n 1)"
        node_image="$local_image"
    fi
fi

"$python" "$KIND_HERE/cluster_config.py" --gateway-port "$gateway_port" --prometheus-port "$prometheus_port" \
    --grafana-port "$grafana_port" ${node_image:+--node-image "$node_image"} >"$config"
progress "creating cluster $cluster ($config; gateway 127.0.0.1:$gateway_port, Prometheus :$prometheus_port, Grafana :$grafana_port)"
started=$SECONDS
"$kind" create cluster --name "$cluster" --config "$config"

kubectl() { docker exec -i "$cluster-control-plane" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }
if [[ -n "$local_image" ]]; then
    progress "pod network (infra/kind/pod-network.yaml)"
    kubectl apply -f - <"$KIND_HERE/pod-network.yaml" >/dev/null
fi
progress "waiting for every node to be Ready and CoreDNS to serve"
kubectl wait --for=condition=Ready nodes --all --timeout=300s >/dev/null
kubectl -n kube-system rollout status deployment/coredns --timeout=300s >/dev/null
progress "cluster $cluster ready in $((SECONDS - started)) s: kubectl --context kind-$cluster get nodes"
kubectl get nodes -o wide
