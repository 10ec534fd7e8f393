#!/usr/bin/env bash
# The registry the kind nodes pull the product's images from, as kind documents a local registry:
# a container `<cluster>-registry` on kind's Docker network, published on 127.0.0.1 for pushes,
# and each node's containerd told to look there first for docker.io names (the product's images
# are `ads/...` and `ads-local/...`, which Docker names docker.io/ads/...). Needed because
# OpenFaaS CE's faas-netes starts every function with imagePullPolicy Always: an image only
# loaded into the nodes (`kind load`) is not enough for it.
#
#   infra/kind/registry.sh up            # start it (if not running) and point every node at it
#   infra/kind/registry.sh push IMAGE... # push what the registry does not hold yet (by image id)
#   infra/kind/registry.sh digest IMAGE  # IMAGE@sha256:<its digest there>
#   infra/kind/registry.sh down          # remove it (its storage stays, as a cache)
#
# Settings: KIND_CLUSTER (adserver), KIND_REGISTRY_PORT (5001, the host port on 127.0.0.1),
# KIND_REGISTRY_CACHE (where the registry keeps its blobs between clusters, so that the next
# cluster's `push` sends only what changed: ~/.cache/adserver/kind-registry/<cluster>; `rm -rf`
# it to reclaim the space).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cluster="${KIND_CLUSTER:-adserver}"
port="${KIND_REGISTRY_PORT:-5001}"
name="$cluster-registry"
storage="${KIND_REGISTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/adserver/kind-registry/$cluster}"
published=registry:2.8.3
kind="$KIND_BIN/kind"
[[ -x "$kind" ]] || kind="$(command -v kind)"

up() {
    if [[ "$(docker inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" != true ]]; then
        docker rm -f -v "$name" >/dev/null 2>&1 || true
        local image="$published"
        if ! docker image inspect "$image" >/dev/null 2>&1 && ! docker pull "$image" >/dev/null 2>&1; then
            "$KIND_HERE/images.sh" debian registry >/dev/null
            image=ads-local/registry:2.8
        fi
        progress "registry $name ($image) on 127.0.0.1:$port"
        mkdir -p "$storage"
        docker run -d --name "$name" --restart=always --network kind --label "ads.kind.registry=$cluster" \
            -v "$storage:/var/lib/registry" -p "127.0.0.1:$port:5000" "$image" >/dev/null
    fi
    local node
    for node in $("$kind" get nodes --name "$cluster"); do
        docker exec -i "$node" sh -c 'mkdir -p /etc/containerd/certs.d/docker.io && cat >/etc/containerd/certs.d/docker.io/hosts.toml' <<EOF
server = "https://registry-1.docker.io"
[host."http://$name:5000"]
  capabilities = ["pull", "resolve"]
EOF
    done
    for _ in $(seq 50); do
        curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && return
        sleep 0.2
    done
    fail "registry $name does not answer on 127.0.0.1:$port"
}

# held IMAGE: true when the registry holds IMAGE with the local image's id (its config digest).
held() {
    local repo="${1%:*}" tag="${1##*:}" remote
    remote="$(curl -fsS -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://127.0.0.1:$port/v2/$repo/manifests/$tag" 2>/dev/null \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])' 2>/dev/null || true)"
    [[ -n "$remote" && "$remote" == "$(docker image inspect --format '{{.Id}}' "$1")" ]]
}

push() {
    local image
    for image in "$@"; do
        docker image inspect "$image" >/dev/null 2>&1 || fail "image $image does not exist here"
        if held "$image"; then
            continue
        fi
        progress "pushing $image to the registry"
        docker tag "$image" "127.0.0.1:$port/$image"
        docker push --quiet "127.0.0.1:$port/$image" >/dev/null
        docker rmi "127.0.0.1:$port/$image" >/dev/null
    done
}

# digest IMAGE: IMAGE@sha256:... as the registry holds it, so that a manifest naming it changes,
# and its pods are replaced, whenever the image does (a tag alone stays cached on the nodes).
digest() {
    local repo="${1%:*}" tag="${1##*:}" sum
    sum="$(curl -fsSI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://127.0.0.1:$port/v2/$repo/manifests/$tag" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')"
    [[ -n "$sum" ]] || fail "the registry does not hold $1"
    echo "$1@$sum"
}

down() {
    docker rm -f -v "$name" >/dev/null 2>&1 || true
}

case "${1:-}" in
    up) up ;;
    push) shift; push "$@" ;;
    digest) digest "$2" ;;
    down) down ;;
    *) fail "usage: registry.sh up | push IMAGE... | digest IMAGE | down" ;;
esac
