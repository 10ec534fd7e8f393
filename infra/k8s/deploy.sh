#!/usr/bin/env bash
# Install the whole product on the kind cluster of `make kind-up` (context kind-$KIND_CLUSTER):
#
#   infra/k8s/deploy.sh openfaas     # OpenFaaS CE from its Helm chart (make kind-deploy)
#   infra/k8s/deploy.sh knative      # the fully open-source path: Knative (make knative-deploy)
#
# Each step says what it does. Idempotent: a second run changes nothing and is quick (images are
# pushed only when their id changed, the chart upgraded only when its values changed, a function
# redeployed only when its image or settings changed). Needs docker, kind, kubectl and helm (the
# Makefile checks), and faas-cli (.local/bin/faas-cli, `make deploy-tools`).
#
# Two paths, chosen by the cluster's node image (KIND_BUILD_IMAGES=always forces the second):
# - published: the stores and operators' images are pulled (Strimzi, CloudNativePG, the chart's
#   images) and our images are built by faas-cli build and docker build;
# - built here (no registry reachable): every image is built on this machine
#   (infra/docker/local_images.py, infra/kind/images.sh), the stores run from the plain manifests
#   of infra/k8s/plain (infra/k8s/plain/README.md says why), and the chart runs our builds of
#   the gateway, faas-netes and Prometheus.
# Either way our images go to the cluster's local registry (infra/kind/registry.sh).
#
# Settings: KIND_CLUSTER (adserver), KIND_GATEWAY_PORT (8080), KIND_REGISTRY_PORT (5001),
# KIND_BUILD_IMAGES (auto), ADS_K8S_STORES (plain or operators; default: plain where images are
# built here, operators elsewhere), OPENFAAS_SOURCES_DIR (the chart's archive, where the chart
# repository is refused), KIND_PROVIDER (ads: our provider for Kubernetes, infra/kube-provider,
# in faas-netes's place in the chart; faas-netes: OpenFaaS CE's own, which needs Internet access
# for its licence check).
set -euo pipefail
cd "$(dirname "$0")/../.."
mode="${1:-openfaas}"
cluster="${KIND_CLUSTER:-adserver}"
gateway="http://127.0.0.1:${KIND_GATEWAY_PORT:-8080}"
faas_cli="${FAAS_CLI:-$PWD/.local/bin/faas-cli}"
python="${PYTHON:-$PWD/.venv/bin/python}"
state=.local/k8s
mkdir -p "$state"
# The pinned kind, kubectl and helm that `make kind-up` built, where it built them.
if [ -d .local/kind/bin ]; then PATH="$PWD/.local/kind/bin:$PATH"; fi
# helm pinned as `make kind-up` pins its tools, where none is installed (a fresh checkout here).
if ! command -v helm >/dev/null && command -v go >/dev/null; then
  infra/kind/tools.sh helm && PATH="$PWD/.local/kind/bin:$PATH"
fi
started=$SECONDS

# Operator and platform versions, pinned. The CRD schemas the tests validate against come from
# the same CloudNativePG and Knative versions (infra/local/localplatform/deploy_tools.py).
CNPG_VERSION=1.28.0
STRIMZI_VERSION=0.48.0
KNATIVE_VERSION=1.20.0 # Knative Serving/Eventing modules v0.47.0
METRICS_SERVER_CHART=3.12.2
# The OpenFaaS chart: 15.0.6, the release of faas-netes 0.18.17 (infra/kind/openfaas-chart.sh).
OPENFAAS_CHART_VERSION=15.0.6
OPENFAAS_CHART_SHA256=1361a77c2cdcfb2ea95d0a3827c6227e92951912e26617553e444ae3b62c7bc0

step() { echo "==> [$((SECONDS - started)) s] $*"; }
kubectl() { command kubectl --context "kind-$cluster" "$@"; }
helm() { command helm --kube-context "kind-$cluster" "$@"; }
# wait_for CONDITION TIMEOUT WHAT...
wait_for() { kubectl wait --timeout="$2" --for="$1" "${@:3}" >/dev/null; }
# apply -f FILE|DIR|- ...: kubectl apply when `kubectl diff` finds a change (apply alone reports
# every StatefulSet "configured", its claim templates being stored with defaults), printing only
# what changed.
apply() {
  local manifests status=0 source
  manifests="$(mktemp)"
  while (($#)); do
    source="$2"
    shift 2
    if [ "$source" = - ]; then cat; elif [ -d "$source" ]; then cat "$source"/*.yaml; else cat "$source"; fi
    echo "---"
  done >"$manifests"
  kubectl diff -f "$manifests" >/dev/null 2>&1 || status=$?
  if [ "$status" != 0 ]; then
    kubectl apply -f "$manifests" | { grep -v ' unchanged$' || true; }
  fi
  rm -f "$manifests"
}

node_image="$(docker inspect --format '{{.Config.Image}}' "$cluster-control-plane" 2>/dev/null)" \
  || { echo "FAILED: no kind cluster $cluster (make kind-up)" >&2; exit 1; }
if [[ "$node_image" == ads-local/* || "${KIND_BUILD_IMAGES:-auto}" == always ]]; then built_here=1; else built_here=; fi
stores="${ADS_K8S_STORES:-${built_here:+plain}}"
stores="${stores:-operators}"
provider="${KIND_PROVIDER:-ads}"
case "$provider" in
  ads | faas-netes) ;;
  *) echo "FAILED: KIND_PROVIDER=$provider: want ads or faas-netes" >&2; exit 1 ;;
esac
KUBE_PROVIDER_IMAGE=ads-local/kube-provider:0.1.0

# local_image IMAGE: the image to run for IMAGE; on the built-here path the stand-in built
# from Debian's packages (infra/docker/local_images.py), else IMAGE itself.
local_image() {
  if [ -z "$built_here" ]; then echo "$1"; return; fi
  case "$1" in
    *@sha256:*) echo "$1" ;;
    postgres:15*) echo ads-local/postgres:15-bookworm ;;
    redis:7*) echo ads-local/redis:7-bookworm ;;
    apache/kafka:*) echo ads-local/kafka:4.4.0 ;;
    ghcr.io/openfaas/gateway:*) echo ads-local/gateway:0.27.14 ;;
    ghcr.io/openfaas/faas-netes:*) echo "ads-local/faas-netes:$(. infra/kind/versions.env && echo "$FAAS_NETES_VERSION")" ;;
    prom/prometheus:*) echo "ads-local/prometheus:$(. infra/kind/versions.env && echo "$PROMETHEUS_VERSION")" ;;
    *) echo "$1" ;;
  esac
}
# pinned IMAGE: local_image's choice by its digest in the cluster's registry where it is one of
# ours (pods are then replaced when the image changes under the same tag), else as named.
pinned() {
  local image
  image="$(local_image "$1")"
  case "$image" in
    ads/*:* | ads-local/*:*) infra/kind/registry.sh digest "$image" ;;
    *) echo "$image" ;;
  esac
}
# with_local_images FILE...: the manifests with every image replaced by pinned's choice.
with_local_images() {
  local image
  cat "$@" | while IFS= read -r line; do
    if [[ "$line" =~ ^([[:space:]]*(- )?image:[[:space:]]*)([^[:space:]#]+)(.*)$ ]]; then
      image="${BASH_REMATCH[3]}"
      line="${BASH_REMATCH[1]}$(pinned "$image")${BASH_REMATCH[4]}"
    fi
    printf '%s\n' "$line"
  done
}
functions_images() {
  "$python" -c 'import yaml; print(" ".join(f["image"] for f in yaml.safe_load(open("stack.yml"))["functions"].values()))'
}

step "namespaces openfaas and ads (infra/k8s/namespaces.yaml)"
apply -f infra/k8s/namespaces.yaml

step "images: functions, connector, migrations${built_here:+, the stores' and the chart's (built here)}"
images=(ads/kafka-connector:0.1.0 ads/migrations:0.1.0)
images+=($(functions_images))
if [ -n "$built_here" ]; then
  # Every function (faas-cli build --shrinkwrap contexts on the local bases), the connector,
  # the migrations and the stand-ins; Docker's layer cache makes an unchanged rebuild quick.
  PYTHONPATH="$PWD/infra/local" "$python" infra/docker/local_images.py all >"$state/images.log" \
    || { tail -n 20 "$state/images.log" >&2; exit 1; }
  # faas-netes only where it runs (KIND_PROVIDER=faas-netes).
  chart_images=(ghcr.io/openfaas/gateway:0 prom/prometheus:v3) builds=(debian prometheus)
  if [ "$provider" = faas-netes ]; then chart_images+=(ghcr.io/openfaas/faas-netes:0) builds+=(faas-netes); fi
  infra/kind/images.sh "${builds[@]}" >/dev/null
  for image in postgres:15 redis:7 apache/kafka:4 "${chart_images[@]}"; do
    images+=("$(local_image "$image")")
  done
else
  docker build -t ads/kafka-connector:0.1.0 infra/connector
  docker build -f infra/sql/Dockerfile -t ads/migrations:0.1.0 .
  mkdir -p template && cp -r templates/. template/
  "$faas_cli" build -f stack.yml
fi
if [ "$provider" = ads ]; then
  # Our provider on Debian 12: the locally built base here, Debian's published image elsewhere.
  if [ -n "$built_here" ]; then base=ads-local/debian:bookworm; else base=debian:bookworm-slim; docker pull -q "$base" >/dev/null; fi
  DEBIAN_IMAGE="$base" infra/kind/images.sh kube-provider >/dev/null
  images+=("$KUBE_PROVIDER_IMAGE")
fi
step "images: the cluster's registry (infra/kind/registry.sh), pushed where changed"
infra/kind/registry.sh up
infra/kind/registry.sh push "${images[@]}"

step "secrets from files (infra/k8s/secrets/create-secrets.sh)"
KUBECTL_CONTEXT="kind-$cluster" infra/k8s/secrets/create-secrets.sh | { grep -v '^==> secret ' || true; }

if [ -n "$built_here" ]; then
  step "volumes: local-path-provisioner, as kind's published node image has it (infra/kind/addons.sh)"
  KIND_CLUSTER="$cluster" infra/kind/addons.sh storage
fi
if [ "$stores" = plain ]; then
  step "Redis, PostgreSQL and Kafka in namespace ads (plain manifests, infra/k8s/plain/README.md)"
  with_local_images infra/k8s/redis/redis.yaml infra/k8s/plain/postgres.yaml infra/k8s/plain/kafka.yaml | apply -f -
  for set in redis ads-postgres ads-kafka; do
    # A StatefulSet does not replace a pod that never became ready (a broken revision): do it.
    revision="$(kubectl -n ads get statefulset "$set" -o jsonpath='{.status.updateRevision}')"
    if [ "$(kubectl -n ads get pod "$set-0" -o jsonpath='{.metadata.labels.controller-revision-hash}' 2>/dev/null)" != "$revision" ] \
      && [ "$(kubectl -n ads get pod "$set-0" -o jsonpath='{.status.containerStatuses[0].ready}' 2>/dev/null)" != true ]; then
      kubectl -n ads delete pod "$set-0" --ignore-not-found >/dev/null
    fi
  done
  for set in redis ads-postgres ads-kafka; do
    kubectl -n ads rollout status "statefulset/$set" --timeout=300s >/dev/null
  done
else
  step "CloudNativePG ${CNPG_VERSION} operator (namespace cnpg-system)"
  kubectl apply --server-side -f \
    "https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/release-${CNPG_VERSION%.*}/releases/cnpg-${CNPG_VERSION}.yaml"
  wait_for condition=Available 300s -n cnpg-system deployment/cnpg-controller-manager
  step "Strimzi ${STRIMZI_VERSION} operator (namespace strimzi, watching ads)"
  helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
    --version "$STRIMZI_VERSION" --namespace strimzi --create-namespace \
    --set 'watchNamespaces={ads}' --wait
  step "Redis, PostgreSQL (CloudNativePG Cluster) and Kafka (Strimzi) in namespace ads"
  apply -f infra/k8s/redis/ -f infra/k8s/postgres/cluster.yaml -f infra/k8s/kafka/
  wait_for condition=Ready 600s -n ads cluster.postgresql.cnpg.io/ads-postgres
fi

# run_job FILE NAME: the Job applied and waited for; re-created when it changed since its last
# run, e.g. its image (a Job's template cannot be changed in place).
run_job() {
  local file="$1" name="$2" manifest key
  manifest="$(with_local_images "$file")"
  key="$(echo "$manifest" | sha256sum | cut -c1-16)"
  if [ "$(kubectl -n ads get job "$name" -o jsonpath='{.metadata.labels.ads/manifest}' 2>/dev/null)" != "$key" ]; then
    kubectl -n ads delete job "$name" --ignore-not-found >/dev/null
  fi
  echo "$manifest" | kubectl label --local -f - -o yaml "ads/manifest=$key" | apply -f -
  wait_for condition=Complete 600s -n ads "job/$name"
}
step "migrations (Job ads-migrations runs infra/sql/apply_migrations.py)"
run_job infra/k8s/postgres/migrations-job.yaml ads-migrations
if [ "$stores" = plain ]; then
  step "Kafka topics (Job ads-kafka-topics)"
  run_job infra/k8s/plain/kafka-topics.yaml ads-kafka-topics
else
  wait_for condition=Ready 600s -n ads kafka/ads-kafka
fi
if [ -n "$built_here" ]; then
  # kindnet enforces them on the published path; our pod network does not (infra/kind/README.md).
  step "NetworkPolicy enforcement: kube-router's network policy controller (infra/kind/addons.sh)"
  KIND_CLUSTER="$cluster" infra/kind/addons.sh netpol
fi
step "NetworkPolicies (infra/k8s/network-policies)"
apply -f infra/k8s/network-policies/

if [ "$mode" = knative ]; then
  step "Knative ${KNATIVE_VERSION}: Serving with Kourier, Eventing, the Kafka source and sink"
  base=https://github.com
  kubectl apply -f "$base/knative/serving/releases/download/knative-v${KNATIVE_VERSION}/serving-crds.yaml"
  kubectl apply -f "$base/knative/serving/releases/download/knative-v${KNATIVE_VERSION}/serving-core.yaml"
  kubectl apply -f "$base/knative/net-kourier/releases/download/knative-v${KNATIVE_VERSION}/kourier.yaml"
  kubectl patch configmap/config-network -n knative-serving --type merge \
    -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
  kubectl apply -f "$base/knative/eventing/releases/download/knative-v${KNATIVE_VERSION}/eventing-crds.yaml"
  kubectl apply -f "$base/knative/eventing/releases/download/knative-v${KNATIVE_VERSION}/eventing-core.yaml"
  for part in controller source sink; do
    kubectl apply -f "$base/knative-extensions/eventing-kafka-broker/releases/download/knative-v${KNATIVE_VERSION}/eventing-kafka-${part}.yaml"
  done
  wait_for condition=Available 300s -n knative-serving deployment --all
  wait_for condition=Available 300s -n knative-eventing deployment --all
  step "functions as Knative Services, the router, Kafka sources and dead letters (infra/k8s/knative)"
  kubectl apply -f infra/k8s/knative/
  wait_for condition=Ready 300s -n ads ksvc --all
  echo
  echo "Up (Knative). Functions: http://127.0.0.1:8080/function/<name> (the router)."
  exit 0
fi

step "metrics-server (the HPAs read CPU from it)"
if [ -n "$built_here" ]; then
  KIND_CLUSTER="$cluster" infra/kind/addons.sh metrics-server
else
  helm upgrade --install metrics-server metrics-server \
    --repo https://kubernetes-sigs.github.io/metrics-server/ --version "$METRICS_SERVER_CHART" \
    --namespace kube-system --set 'args={--kubelet-insecure-tls}' --wait
fi

step "OpenFaaS CE chart ${OPENFAAS_CHART_VERSION} with infra/k8s/openfaas/values.yaml"
chart=(openfaas --repo https://openfaas.github.io/faas-netes/ --version "$OPENFAAS_CHART_VERSION")
if [ -n "${OPENFAAS_SOURCES_DIR:-}" ]; then
  archive="$OPENFAAS_SOURCES_DIR/openfaas-$OPENFAAS_CHART_VERSION.tgz"
  echo "$OPENFAAS_CHART_SHA256  $archive" | sha256sum --check --quiet - \
    || { echo "FAILED: $archive: sha256 differs from the pinned one" >&2; exit 1; }
  chart=("$archive")
fi
overrides=()
if [ -n "$built_here" ]; then
  overrides=(--set "gateway.image=$(pinned ghcr.io/openfaas/gateway:0)"
    --set "prometheus.image=$(pinned prom/prometheus:v3)")
  if [ "$provider" = faas-netes ]; then overrides+=(--set "faasnetes.image=$(pinned ghcr.io/openfaas/faas-netes:0)"); fi
fi
if [ "$provider" = ads ]; then
  # The chart's provider container (faas-netes's environment, port and Role) runs ours.
  overrides+=(--set "faasnetes.image=$(pinned "$KUBE_PROVIDER_IMAGE")")
fi
# Upgraded only when the chart, our values or the images changed (a no-op upgrade would still
# add a release revision).
key="$({ echo "${chart[*]} ${overrides[*]}"; cat infra/k8s/openfaas/values.yaml
  for image in gateway faas-netes prometheus; do docker image inspect --format '{{.Id}}' "$(local_image "ghcr.io/openfaas/$image:0")" 2>/dev/null || true; done
  [ "$provider" = faas-netes ] || docker image inspect --format '{{.Id}}' "$KUBE_PROVIDER_IMAGE"; } \
  | sha256sum | cut -c1-16)"
if [ "$(kubectl -n openfaas get secret -l owner=helm,name=openfaas,status=deployed -o jsonpath='{.items[0].metadata.labels.ads/values}' 2>/dev/null)" != "$key" ]; then
  helm upgrade --install openfaas "${chart[@]}" --namespace openfaas \
    -f infra/k8s/openfaas/values.yaml "${overrides[@]}" >/dev/null
  kubectl -n openfaas label secret -l owner=helm,name=openfaas,status=deployed "ads/values=$key" --overwrite >/dev/null
fi
# faas-netes (OpenFaaS CE) exits at start unless it reaches https://checkip.amazonaws.com (its
# licence check, pkg/config/connectivity.go): on a machine without Internet access the gateway
# never becomes ready. Say so at once instead of waiting for a timeout.
for _ in $(seq 120); do
  if [ "$(kubectl -n openfaas get deployment gateway -o jsonpath='{.status.readyReplicas}')" = 1 ] \
    && kubectl -n openfaas rollout status deployment/prometheus --timeout=1s >/dev/null 2>&1; then
    break
  fi
  if [ "$provider" = faas-netes ] \
    && kubectl -n openfaas logs deployment/gateway -c faas-netes --tail=3 2>/dev/null | grep -q 'offline environment'; then
    echo "FAILED: faas-netes (OpenFaaS CE) stops at start: it needs HTTPS access to checkip.amazonaws.com" >&2
    echo "(OpenFaaS CE's licence check; it cannot run on a machine without Internet access; KIND_PROVIDER=ads runs ours):" >&2
    kubectl -n openfaas logs deployment/gateway -c faas-netes --tail=1 >&2
    exit 1
  fi
  sleep 5
done
kubectl -n openfaas rollout status deployment/gateway --timeout=1s >/dev/null
apply -f infra/k8s/openfaas/prometheus-external.yaml

if [ -z "$built_here" ]; then
  step "Grafana with infra/grafana (dashboards and data source)"
  infra/k8s/grafana/create-configmaps.sh
  apply -f infra/k8s/grafana/grafana.yaml
fi

step "functions: faas-cli deploy -f stack.yml with infra/k8s/functions/cluster.env"
until curl -fsS "$gateway/healthz" >/dev/null 2>&1; do sleep 2; done
export OPENFAAS_CONFIG="$PWD/$state/faas-cli-$cluster"
"$faas_cli" login --gateway "$gateway" -u "$(cat .local/k8s/secrets/basic-auth-user)" \
  --password-stdin < .local/k8s/secrets/basic-auth-password >/dev/null
mkdir -p template && cp -r templates/. template/
set -a && . infra/k8s/functions/cluster.env && set +a
CLICK_BASE_URL="$gateway/function/click"
# One function at a time, and only where its image or settings changed since its last deploy
# (their hash is the annotation ads/deployed): faas-cli deploy always updates the Deployment.
for name in $("$python" -c 'import yaml; print(" ".join(yaml.safe_load(open("stack.yml"))["functions"]))'); do
  image="$("$python" -c 'import sys, yaml; print(yaml.safe_load(open("stack.yml"))["functions"][sys.argv[1]]["image"])' "$name")"
  key="$({ docker image inspect --format '{{.Id}}' "$image"; cat stack.yml infra/k8s/functions/cluster.env; echo "$CLICK_BASE_URL"; } | sha256sum | cut -c1-16)"
  if [ "$(kubectl -n ads get deployment "$name" -o jsonpath='{.metadata.annotations.ads/deployed}' 2>/dev/null)" = "$key" ]; then
    continue
  fi
  # The functions' own metrics (:8000) are scraped by the chart's Prometheus through these.
  "$faas_cli" deploy -f stack.yml --filter "$name" --gateway "$gateway" \
    --annotation prometheus.io.scrape=true --annotation prometheus.io.port=8000 \
    --annotation "ads/deployed=$key" | grep -v '^$' | grep -v -e '^Deploying' -e 'URL:' || true
done
# A replica is ready when the function says so (of-watchdog's /_/ready: its stores reachable
# and, in bid, the campaign snapshot loaded). export is ready once its bucket is: where the
# cluster cannot reach S3_ENDPOINT_URL (as on a machine without Internet access) it stays
# unready and the rest of the product runs on, which is said rather than failed.
for name in $("$python" -c 'import yaml; print(" ".join(yaml.safe_load(open("stack.yml"))["functions"]))'); do
  if [ "$name" = export ]; then
    kubectl -n ads rollout status deployment/export --timeout=30s >/dev/null 2>&1 \
      || echo "  export is not ready: no bucket at $S3_ENDPOINT_URL (infra/k8s/functions/cluster.env)" >&2
    continue
  fi
  kubectl -n ads rollout status "deployment/$name" --timeout=300s >/dev/null
done

step "the connector, and an HPA per function (OpenFaaS CE has no autoscaler)"
with_local_images infra/k8s/connector/connector.yaml infra/k8s/autoscaling/hpa.yaml | apply -f -
kubectl -n ads rollout status deployment/kafka-connector --timeout=300s >/dev/null

step "done"
echo "Up in $((SECONDS - started)) s. Gateway $gateway (user admin, password .local/k8s/secrets/basic-auth-password),"
echo "Prometheus http://127.0.0.1:${KIND_PROMETHEUS_PORT:-9090}."
if [ -z "$built_here" ]; then
  echo "Grafana http://127.0.0.1:${KIND_GRAFANA_PORT:-3000} (admin, .local/k8s/secrets/grafana-admin-password)."
fi
