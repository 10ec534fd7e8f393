#!/usr/bin/env bash
# Every image a kind cluster runs, built here for a machine that can pull none: the Kubernetes
# component images under the exact names kubeadm asks for, kind's base image on Debian 12, and
# the node image assembled from them the way `kind build node-image` does (which itself pulls).
# Each image carries the hash of its inputs as a label and is rebuilt only when that changes.
#
#   infra/kind/images.sh        # prints the node image's name last (ads-local/kind-node:<version>)
#   infra/kind/images.sh base   # only these steps (debian components base node; openfaas (that
#                               # is faas-netes and prometheus), kube-provider, kube-router and
#                               # registry, for make kind-deploy, only when named)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEBIAN_IMAGE="${DEBIAN_IMAGE:-ads-local/debian:bookworm}"
NODE_IMAGE="ads-local/kind-node:$KUBERNETES_VERSION"
LABEL=ads.kind.inputs
# Per run, so that two checkouts assembling at once do not remove each other's container.
KIND_CONTAINER="ads-kind-node-build-$$"
FAAS_NETES_IMAGE="ads-local/faas-netes:$FAAS_NETES_VERSION"
KUBE_PROVIDER_IMAGE="ads-local/kube-provider:0.1.0"
REGISTRY_IMAGE="ads-local/registry:2.8"
PROMETHEUS_IMAGE="ads-local/prometheus:$PROMETHEUS_VERSION"
KUBE_ROUTER_IMAGE="ads-local/kube-router:$KUBE_ROUTER_VERSION"
PODNET_IMAGE="$(sed -n 's/^ *image: \(ads-local\/kind-podnet:.*\)$/\1/p' "$KIND_HERE/pod-network.yaml")"

label_of() { docker image inspect --format "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }
image_id() { docker image inspect --format '{{.Id}}' "$1"; }

# debian: the Debian 12 base every image here starts from (debootstrap, imported once).
debian() {
    if docker image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then
        return
    fi
    command -v debootstrap >/dev/null || fail "debootstrap is not installed (Debian: apt-get install debootstrap)"
    progress "building $DEBIAN_IMAGE with debootstrap (about 1 min)"
    local rootfs
    rootfs="$(mktemp -d "$KIND_STATE/rootfs.XXXXXX")"
    timed "$DEBIAN_IMAGE" bash -c 'debootstrap --variant=minbase bookworm "$1" http://deb.debian.org/debian >/dev/null \
        && rm -rf "$1"/var/cache/apt/archives/*.deb && tar -C "$1" -c . | docker import - "$2" >/dev/null' _ "$rootfs" "$DEBIAN_IMAGE"
    rm -rf "$rootfs"
}

# build TAG CONTEXT [BUILD-ARG...]: docker build when the context's inputs changed.
build() {
    local tag="$1" context="$2" key arg args=()
    shift 2
    key="$(inputs_key "$context"; echo "$*" "$(image_id "$DEBIAN_IMAGE")")"
    key="$(echo "$key" | sha256sum | cut -c1-16)"
    if [[ "$(label_of "$tag")" == "$key" ]]; then
        return
    fi
    for arg in "$@"; do args+=(--build-arg "$arg"); done
    progress "building image $tag"
    timed "$tag" docker_build --label "$LABEL=$key" "${args[@]}" -t "$tag" "$context"
}

# docker_build ARG...: the classic builder (it needs no registry), its output shown on failure.
docker_build() {
    local log
    log="$(mktemp)"
    if ! DOCKER_BUILDKIT=0 docker build "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        fail "docker build ${*: -3} failed"
    fi
    rm -f "$log"
}

# context NAME FILE...: a build context of images/NAME's Dockerfile and the given files.
context() {
    local dir="$KIND_STATE/context/$1"
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$KIND_HERE/images/$(basename "$dir")/Dockerfile" "$dir/" 2>/dev/null || true
    if (($#)); then cp -r "$@" "$dir/"; fi
    echo "$dir"
}

components() {
    local name dir
    for name in kube-apiserver kube-controller-manager kube-scheduler etcd; do
        dir="$(context "component-$name" "$KIND_BIN/$name")"
        cp "$KIND_HERE/images/component/Dockerfile" "$dir/"
        case "$name" in
            etcd) build "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" "$dir" "BINARY=$name" ;;
            *) build "registry.k8s.io/$name:$KUBERNETES_VERSION" "$dir" "BINARY=$name" ;;
        esac
    done
    build "registry.k8s.io/pause:$PAUSE_IMAGE_TAG" "$(context pause "$KIND_BIN/pause")"
    # kind's containerd config names pause 3.10 as the sandbox image; kubeadm lists 3.10.1.
    docker tag "registry.k8s.io/pause:$PAUSE_IMAGE_TAG" registry.k8s.io/pause:3.10
    build "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "$(context coredns "$KIND_BIN/coredns")"
    build "registry.k8s.io/kube-proxy:$KUBERNETES_VERSION" "$(context kube-proxy "$KIND_BIN/kube-proxy" "$KIND_HERE/images/kube-proxy/iptables-wrapper")" \
        "DEBIAN_IMAGE=$DEBIAN_IMAGE"
    build "$PODNET_IMAGE" "$(context podnet "$KIND_BIN/kubectl" "$KIND_HERE/images/podnet/podnet.sh")" \
        "DEBIAN_IMAGE=$DEBIAN_IMAGE"
}

# node_images: what kubeadm of this version pulls, each of which must now exist here, and the
# pod network's image (pod-network.yaml).
node_images() {
    "$KIND_BIN/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION" 2>/dev/null
    echo registry.k8s.io/pause:3.10
    echo "$PODNET_IMAGE"
}

base() {
    local files dir
    files="$(module_dir "sigs.k8s.io/kind@$KIND_VERSION")/images/base/files"
    [[ -d "$files" ]] || fail "kind's images/base/files not found in the module cache"
    dir="$(context base "$files" "$KIND_BIN/crictl")"
    chmod -R u+w "$dir"
    build "ads-local/kind-base:$KIND_VERSION" "$dir" "DEBIAN_IMAGE=$DEBIAN_IMAGE"
}

# node: what `kind build node-image` does, without its pull: the Kubernetes binaries and every
# component image go into a running base container, which is committed with kind's entrypoint.
node() {
    local images=() image key
    mapfile -t images < <(node_images)
    for image in "${images[@]}"; do
        docker image inspect "$image" >/dev/null 2>&1 || fail "kubeadm needs $image, which was not built"
    done
    key="$({ image_id "ads-local/kind-base:$KIND_VERSION"; for image in "${images[@]}"; do image_id "$image"; done
        cat "$KIND_BIN"/{kubelet,kubeadm,kubectl} | sha256sum; declare -f node; } | sha256sum | cut -c1-16)"
    if [[ "$(label_of "$NODE_IMAGE")" == "$key" ]]; then
        return
    fi
    progress "assembling node image $NODE_IMAGE from ${#images[@]} images"
    local started=$SECONDS
    docker rm -f "$KIND_CONTAINER" >/dev/null 2>&1 || true
    docker run -d --name "$KIND_CONTAINER" --privileged --entrypoint sleep \
        "ads-local/kind-base:$KIND_VERSION" infinity >/dev/null
    trap 'docker rm -f "$KIND_CONTAINER" >/dev/null 2>&1 || true' EXIT
    docker cp "$KIND_BIN/kubelet" "$KIND_CONTAINER:/usr/bin/kubelet"
    docker cp "$KIND_BIN/kubeadm" "$KIND_CONTAINER:/usr/bin/kubeadm"
    docker cp "$KIND_BIN/kubectl" "$KIND_CONTAINER:/usr/bin/kubectl"
    docker exec "$KIND_CONTAINER" bash -c "mkdir -p /kind && echo $KUBERNETES_VERSION >/kind/version \
        && (containerd >/var/log/containerd-build.log 2>&1 &) \
        && for _ in \$(seq 50); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1"
    progress "importing images into the node's containerd"
    docker save "${images[@]}" | docker exec -i "$KIND_CONTAINER" \
        ctr -n k8s.io images import --all-platforms --no-unpack --digests - >/dev/null
    # Stopped before the commit; `sleep` as PID 1 reaps nothing, so wait for a zombie, not an exit.
    docker exec "$KIND_CONTAINER" bash -c 'pkill -x containerd
        while ps -C containerd -o stat= | grep -qv Z; do sleep 0.2; done
        rm -f /var/log/containerd-build.log'
    docker commit \
        --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
        --change "LABEL $LABEL=$key" "$KIND_CONTAINER" "$NODE_IMAGE" >/dev/null
    docker rm -f "$KIND_CONTAINER" >/dev/null
    trap - EXIT
    progress "node image $NODE_IMAGE done in $((SECONDS - started)) s ($(docker image inspect --format '{{.Size}}' "$NODE_IMAGE" | numfmt --to=iec))"
}

# openfaas: what the OpenFaaS chart runs that no registry here serves: faas-netes, built from its
# pinned source (tools.sh faas-netes), and Prometheus with Kubernetes discovery (tools.sh
# prometheus). The gateway is the local platform's stand-in (infra/docker/local_images.py).
openfaas() {
    faas_netes
    prometheus
}
faas_netes() {
    "$KIND_HERE/tools.sh" faas-netes
    build "$FAAS_NETES_IMAGE" "$(context faas-netes "$KIND_BIN/faas-netes")" "DEBIAN_IMAGE=$DEBIAN_IMAGE"
}
prometheus() {
    "$KIND_HERE/tools.sh" prometheus
    build "$PROMETHEUS_IMAGE" "$(context prometheus "$KIND_BIN/prometheus")" "DEBIAN_IMAGE=$DEBIAN_IMAGE"
}

# kube_provider: our provider for Kubernetes (infra/kube-provider), in faas-netes's place in the
# chart (KIND_PROVIDER=ads). Also where images can be pulled: then DEBIAN_IMAGE may be any
# Debian 12 image (deploy.sh gives debian:bookworm-slim).
kube_provider() {
    "$KIND_HERE/tools.sh" kube-provider
    build "$KUBE_PROVIDER_IMAGE" "$(context kube-provider "$KIND_BIN/kube-provider")" "DEBIAN_IMAGE=$DEBIAN_IMAGE"
}

# kube_router: NetworkPolicy enforcement for our pod network (addons.sh netpol), on the
# kube-proxy image built above.
kube_router() {
    "$KIND_HERE/tools.sh" kube-router
    build "$KUBE_ROUTER_IMAGE" "$(context kube-router "$KIND_BIN/kube-router")" \
        "KUBE_PROXY_IMAGE=registry.k8s.io/kube-proxy:$KUBERNETES_VERSION"
}

# registry: the registry the nodes pull the product's images from (registry.sh).
registry() {
    build "$REGISTRY_IMAGE" "$(context registry "$KIND_HERE/images/registry/config.yml")" "DEBIAN_IMAGE=$DEBIAN_IMAGE"
}

command -v docker >/dev/null || fail "docker is not installed"
steps=("${@:-debian}")
steps=("${steps[@]//-/_}") # faas-netes and kube-provider name functions with _
if (($# == 0)); then
    [[ -x "$KIND_BIN/kubeadm" ]] || fail "run infra/kind/tools.sh first"
    steps=(debian components base node)
fi
for step in "${steps[@]}"; do
    "$step"
done
echo "$NODE_IMAGE"
