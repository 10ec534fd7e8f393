#!/usr/bin/env bash
# The binaries a kind cluster is built from, from the Go module proxy at the versions of
# versions.env, into .local/kind/bin. Each is rebuilt only when its pin or its inputs change.
#
#   infra/kind/tools.sh          # kind, the Kubernetes commands, crictl, etcd, CoreDNS, pause, helm
#   infra/kind/tools.sh kind helm  # only these (names: kind crictl pause etcd kubernetes coredns helm
#                                  # faas-netes kube-provider prometheus local-path-provisioner
#                                  # metrics-server kube-router: these six only when named)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Each tool built is also kept outside the checkout, by name and inputs' key, so that another
# checkout of the same pins (CI's fresh clone) copies it instead of building it again.
KIND_TOOLS_CACHE="${KIND_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/adserver/kind-tools}"

# from_cache NAME KEY FILE...: the FILEs NAME built with KEY, copied from the cache into
# .local/kind/bin; false when the cache lacks one.
from_cache() {
    local dir="$KIND_TOOLS_CACHE/$1/$2" file
    for file in "${@:3}"; do [[ -x "$dir/$file" ]] || return 1; done
    for file in "${@:3}"; do
        cp "$dir/$file" "$KIND_BIN/.$file.$$" && mv -f "$KIND_BIN/.$file.$$" "$KIND_BIN/$file"
    done
    progress "$1 from $dir"
}

# to_cache NAME KEY FILE...: keeps the FILEs of .local/kind/bin in the cache (written whole,
# then renamed, so a checkout reading it at the same time never sees half of it).
to_cache() {
    local dir="$KIND_TOOLS_CACHE/$1/$2" file
    [[ -d "$dir" ]] && return
    mkdir -p "$dir.$$"
    for file in "${@:3}"; do cp "$KIND_BIN/$file" "$dir.$$/"; done
    mv "$dir.$$" "$dir" 2>/dev/null || rm -rf "$dir.$$"
}

# build_once NAME KEY COMMAND...: runs COMMAND, which builds .local/kind/bin/NAME, unless NAME was
# last built from inputs with this KEY (here or, kept in the cache, in another checkout).
build_once() {
    local name="$1" key="$2"
    shift 2
    if cached "$name" "$key" && [[ -x "$KIND_BIN/$name" ]]; then
        return
    fi
    if ! from_cache "$name" "$key" "$name"; then
        progress "building $name"
        timed "$name" "$@"
        to_cache "$name" "$key" "$name"
    fi
    mark_built "$name" "$key"
}

# go_install NAME PACKAGE@VERSION: a command whose module builds with plain `go install`.
go_install() {
    build_once "$1" "$(echo "$2" | sha256sum | cut -c1-16)" env GOBIN="$KIND_BIN" go install "$2"
}

# kubernetes: the seven commands in one build through the wrapper module go/kubernetes, which
# requires k8s.io/kubernetes and replaces each staging module with its v0.x release. The version
# ldflags make kubeadm name the image tags of this release (a module build says v0.0.0-master).
kubernetes() {
    local mod="$KIND_HERE/go/kubernetes" key minor flags=() pkg
    local commands=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
    key="$(inputs_key "$mod")"
    if cached kubernetes "$key" && [[ -x "$KIND_BIN/kubeadm" ]]; then
        return
    fi
    if from_cache kubernetes "$key" "${commands[@]}"; then
        mark_built kubernetes "$key"
        return
    fi
    minor="${KUBERNETES_VERSION#v1.}"
    minor="${minor%%.*}"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=(-X "$pkg.gitVersion=$KUBERNETES_VERSION" -X "$pkg.gitMajor=1" -X "$pkg.gitMinor=$minor"
            -X "$pkg.gitTreeState=clean" -X "$pkg.buildDate=1970-01-01T00:00:00Z")
    done
    progress "building Kubernetes $KUBERNETES_VERSION: ${commands[*]} (about 5 min cold)"
    timed "Kubernetes" bash -c 'cd "$1" && shift && go build -trimpath -ldflags "$1" -o "$2/" "${@:3}"' _ \
        "$mod" "-s -w ${flags[*]}" "$KIND_BIN" "${commands[@]/#/k8s.io/kubernetes/cmd/}"
    "$KIND_BIN/kubeadm" version -o short | grep -qx "$KUBERNETES_VERSION" \
        || fail "kubeadm reports $("$KIND_BIN/kubeadm" version -o short), not $KUBERNETES_VERSION"
    to_cache kubernetes "$key" "${commands[@]}"
    mark_built kubernetes "$key"
}

# small_module NAME DIR: a wrapper module with a main package of its own (etcd, pause).
small_module() {
    local mod="$KIND_HERE/go/$2"
    build_once "$1" "$(inputs_key "$mod")" \
        bash -c 'cd "$1" && go build -trimpath -ldflags "-s -w" -o "$2" .' _ "$mod" "$KIND_BIN/$1"
}

# faas_netes: faas-netes, the OpenFaaS CE provider the chart runs beside the gateway, built
# unmodified (CE EULA) from its source archive at the commit the chart names, checked against its
# sha256 first: its module is refused by the module proxy. Its dependencies are vendored.
faas_netes() {
    local archive="${OPENFAAS_SOURCES_DIR:-}/faas-netes-${FAAS_NETES_COMMIT:0:12}.tar.gz"
    [[ -n "${OPENFAAS_SOURCES_DIR:-}" ]] || fail "faas-netes: set OPENFAAS_SOURCES_DIR to the folder holding $(basename "$archive")"
    echo "$FAAS_NETES_SHA256  $archive" | sha256sum --check --quiet - || fail "$archive: sha256 differs from the pinned one"
    build_once faas-netes "$FAAS_NETES_SHA256" bash -c 'src="$(mktemp -d)" && tar -C "$src" -xzf "$1" \
        && cd "$src/faas-netes" && go build -mod=vendor -trimpath -o "$2" -ldflags "-s -w \
        -X github.com/openfaas/faas-netes/version.Version=$3 -X github.com/openfaas/faas-netes/version.GitCommit=$4" . \
        && rm -rf "$src"' _ "$archive" "$KIND_BIN/faas-netes" "$FAAS_NETES_VERSION" "$FAAS_NETES_COMMIT"
}

# kube_provider: our OpenFaaS provider for Kubernetes (infra/kube-provider), which the chart runs
# in faas-netes's place (KIND_PROVIDER=ads); its inputs' hash is its version's commit.
kube_provider() {
    local src="$REPO_ROOT/infra/kube-provider" key
    key="$(inputs_key "$src")"
    build_once kube-provider "$key" bash -c 'cd "$1" && go build -trimpath -o "$2" \
        -ldflags "-s -w -X main.version=0.1.0 -X main.commit=$3" .' _ "$src" "$KIND_BIN/kube-provider" "$key"
}

# prometheus: Prometheus with the Kubernetes service discovery only (its build tags), from a
# copy of its module: `go install` refuses it for its replace directive.
prometheus() {
    local module="github.com/prometheus/prometheus@$PROMETHEUS_MODULE_VERSION" dir
    dir="$(module_dir "$module")"
    build_once prometheus "$(echo "$module kubernetes-sd" | sha256sum | cut -c1-16)" bash -c 'src="$(mktemp -d)" \
        && cp -r "$1/." "$src" && chmod -R u+w "$src" && cd "$src" \
        && GOWORK=off GOFLAGS=-mod=mod go build -trimpath -tags remove_all_sd,enable_kubernetes_sd -o "$2" \
            -ldflags "-s -w -X github.com/prometheus/common/version.Version=${3#v}" ./cmd/prometheus \
        && rm -rf "$src"' _ "$dir" "$KIND_BIN/prometheus" "$PROMETHEUS_VERSION"
}

command -v go >/dev/null || fail "go is not installed (https://go.dev/doc/install)"
wanted=" ${*:-all} "
wants() { [[ "$wanted" == *" all "* || "$wanted" == *" $1 "* ]]; }
started=$SECONDS
if wants kind; then go_install kind "sigs.k8s.io/kind@$KIND_VERSION"; fi
if wants crictl; then go_install crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"; fi
if wants pause; then small_module pause pause; fi
if wants etcd; then small_module etcd etcd; fi
if wants kubernetes; then kubernetes; fi
if wants coredns; then go_install coredns "github.com/coredns/coredns@$COREDNS_VERSION"; fi
if wants helm; then go_install helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; fi
# The add-ons (addons.sh), built only when asked for.
if [[ "$wanted" == *" faas-netes "* ]]; then faas_netes; fi
if [[ "$wanted" == *" kube-provider "* ]]; then kube_provider; fi
if [[ "$wanted" == *" prometheus "* ]]; then prometheus; fi
if [[ "$wanted" == *" local-path-provisioner "* ]]; then
    go_install local-path-provisioner "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION"
fi
if [[ "$wanted" == *" metrics-server "* ]]; then
    go_install metrics-server "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
fi
if [[ "$wanted" == *" kube-router "* ]]; then
    go_install kube-router "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
fi
if [[ "$wanted" == " all " ]]; then progress "tools ready in $KIND_BIN ($((SECONDS - started)) s)"; fi
