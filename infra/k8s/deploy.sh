#!/usr/bin/env bash
# Install the whole product on the current kubectl context (the kind cluster of `make kind-up`):
#
#   infra/k8s/deploy.sh openfaas     # OpenFaaS CE from its Helm chart (make kind-deploy)
#   infra/k8s/deploy.sh knative      # the fully open-source path: Knative (make knative-deploy)
#
# Each step says what it does. Idempotent: run it again after a change. Needs docker, kind,
# kubectl and helm (the Makefile checks), and faas-cli (.local/bin/faas-cli, `make deploy-tools`).
set -euo pipefail
cd "$(dirname "$0")/../.."
mode="${1:-openfaas}"
cluster="${KIND_CLUSTER:-adserver}"
faas_cli="${FAAS_CLI:-.local/bin/faas-cli}"

# Operator and platform versions, pinned. The CRD schemas the tests validate against come from
# the same CloudNativePG and Knative versions (infra/local/localplatform/deploy_tools.py).
CNPG_VERSION=1.28.0
STRIMZI_VERSION=0.48.0
KNATIVE_VERSION=1.20.0 # Knative Serving/Eventing modules v0.47.0
METRICS_SERVER_CHART=3.12.2
# The OpenFaaS chart version: unset installs the newest (see infra/k8s/openfaas/README.md).
OPENFAAS_CHART_VERSION="${OPENFAAS_CHART_VERSION:-}"

step() { echo; echo "==> $*"; }
wait_for() { kubectl wait --timeout="${2:-300s}" --for="$1" "${@:3}"; }

step "namespaces openfaas and ads (infra/k8s/namespaces.yaml)"
kubectl apply -f infra/k8s/namespaces.yaml

step "CloudNativePG ${CNPG_VERSION} operator (namespace cnpg-system)"
kubectl apply --server-side -f \
  "https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/release-${CNPG_VERSION%.*}/releases/cnpg-${CNPG_VERSION}.yaml"
wait_for condition=Available -n cnpg-system deployment/cnpg-controller-manager

step "Strimzi ${STRIMZI_VERSION} operator (namespace strimzi, watching ads)"
helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
  --version "$STRIMZI_VERSION" --namespace strimzi --create-namespace \
  --set 'watchNamespaces={ads}' --wait

step "secrets from files (infra/k8s/secrets/create-secrets.sh)"
infra/k8s/secrets/create-secrets.sh

step "images: functions (faas-cli build), connector, migrations; loaded into kind"
images=(ads/kafka-connector:0.1.0 ads/migrations:0.1.0)
docker build -t ads/kafka-connector:0.1.0 infra/connector
docker build -f infra/sql/Dockerfile -t ads/migrations:0.1.0 .
mkdir -p template && cp -r templates/. template/
"$faas_cli" build -f stack.yml
images+=($(.venv/bin/python -c 'import yaml; print(" ".join(f["image"] for f in yaml.safe_load(open("stack.yml"))["functions"].values()))'))
for image in "${images[@]}"; do kind load docker-image --name "$cluster" "$image"; done

step "Redis, PostgreSQL (CloudNativePG Cluster) and Kafka (Strimzi) in namespace ads"
kubectl apply -f infra/k8s/redis/ -f infra/k8s/postgres/cluster.yaml -f infra/k8s/kafka/
wait_for condition=Ready -n ads cluster.postgresql.cnpg.io/ads-postgres 600s
step "migrations (Job ads-migrations runs infra/sql/apply_migrations.py)"
kubectl -n ads delete job ads-migrations --ignore-not-found
kubectl apply -f infra/k8s/postgres/migrations-job.yaml
wait_for condition=Complete -n ads job/ads-migrations 300s
wait_for condition=Ready -n ads kafka/ads-kafka 600s
kubectl apply -f infra/k8s/network-policies/

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
  wait_for condition=Available -n knative-serving deployment --all
  wait_for condition=Available -n knative-eventing deployment --all
  step "functions as Knative Services, the router, Kafka sources and dead letters (infra/k8s/knative)"
  kubectl apply -f infra/k8s/knative/
  wait_for condition=Ready -n ads ksvc --all 300s
  echo
  echo "Up (Knative). Functions: http://127.0.0.1:8080/function/<name> (the router)."
  exit 0
fi

step "metrics-server (the HPAs read CPU from it)"
helm upgrade --install metrics-server metrics-server \
  --repo https://kubernetes-sigs.github.io/metrics-server/ --version "$METRICS_SERVER_CHART" \
  --namespace kube-system --set 'args={--kubelet-insecure-tls}' --wait

step "OpenFaaS CE from its Helm chart with infra/k8s/openfaas/values.yaml"
helm upgrade --install openfaas openfaas \
  --repo https://openfaas.github.io/faas-netes/ ${OPENFAAS_CHART_VERSION:+--version "$OPENFAAS_CHART_VERSION"} \
  --namespace openfaas -f infra/k8s/openfaas/values.yaml --wait
kubectl apply -f infra/k8s/openfaas/prometheus-external.yaml

step "Grafana with infra/grafana (dashboards and data source)"
infra/k8s/grafana/create-configmaps.sh
kubectl apply -f infra/k8s/grafana/grafana.yaml

step "functions: faas-cli deploy -f stack.yml with infra/k8s/functions/cluster.env"
gateway=http://127.0.0.1:8080
until curl -fsS "$gateway/healthz" >/dev/null; do sleep 2; done
"$faas_cli" login --gateway "$gateway" -u "$(cat .local/k8s/secrets/basic-auth-user)" \
  --password-stdin < .local/k8s/secrets/basic-auth-password
set -a && . infra/k8s/functions/cluster.env && set +a
# The functions' own metrics (:8000) are scraped by the chart's Prometheus through these.
"$faas_cli" deploy -f stack.yml --gateway "$gateway" \
  --annotation prometheus.io.scrape=true --annotation prometheus.io.port=8000

step "the connector, and an HPA per function (OpenFaaS CE has no autoscaler)"
kubectl apply -f infra/k8s/connector/ -f infra/k8s/autoscaling/

echo
echo "Up. Gateway http://127.0.0.1:8080 (user admin, password .local/k8s/secrets/basic-auth-password),"
echo "Prometheus http://127.0.0.1:9090, Grafana http://127.0.0.1:3000 (admin, .local/k8s/secrets/grafana-admin-password)."
