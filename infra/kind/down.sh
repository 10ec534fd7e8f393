#!/usr/bin/env bash
# `make kind-down`: delete the kind cluster and check that nothing of it is left: no node
# container, no volume, no loop device, and no `kind` network once no cluster uses it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cluster="${KIND_CLUSTER:-adserver}"
# kind: the pinned one, as up.sh builds it (also in a fresh checkout), else the one on PATH.
if command -v go >/dev/null; then
    "$KIND_HERE/tools.sh" kind
    kind="$KIND_BIN/kind"
else
    kind="$(command -v kind)" || fail "kind is not installed"
fi

nodes="$(docker ps -aq --filter "label=io.x-k8s.kind.cluster=$cluster")"
volumes="$(for node in $nodes; do docker inspect --format '{{range .Mounts}}{{.Name}} {{end}}' "$node"; done)"
progress "deleting cluster $cluster"
"$kind" delete cluster --name "$cluster"
rm -f "$KIND_STATE/$cluster.yaml"
# The cluster's registry (registry.sh), with its storage.
KIND_CLUSTER="$cluster" "$KIND_HERE/registry.sh" down
# kind leaves its network for the next cluster; remove it when no other cluster is left and
# nothing uses it (another checkout's registry, or a cluster being created at this moment).
if [[ -z "$("$kind" get clusters 2>/dev/null)" ]] \
    && [[ "$(docker network inspect kind --format '{{len .Containers}}' 2>/dev/null)" == 0 ]]; then
    docker network rm kind >/dev/null 2>&1 || progress "network kind is in use again: left to its user"
fi

left="$(docker ps -aq --filter "label=io.x-k8s.kind.cluster=$cluster"; docker ps -aq --filter "label=ads.kind.registry=$cluster")"
[[ -z "$left" ]] || fail "containers of $cluster are left: $left"
left="$(for volume in $volumes; do docker volume inspect "$volume" >/dev/null 2>&1 && echo "$volume"; done || true)"
[[ -z "$left" ]] || fail "volumes of $cluster are left: $left"
progress "cluster $cluster deleted; nothing of it is left"
