#!/usr/bin/env bash
# The ConfigMaps Grafana mounts (grafana.yaml), made from the repository's files so there is one
# copy of each: grafana-provisioning from infra/grafana/provisioning (data source, dashboard
# provider) and grafana-dashboards from every infra/grafana/dashboards/*.json (none is fine).
# Re-run after a dashboard changes; Grafana picks it up within 30 s.
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v kubectl >/dev/null || { echo "create-configmaps: kubectl not found" >&2; exit 1; }
apply() { kubectl create configmap "$@" --namespace openfaas --dry-run=client -o yaml | kubectl apply -f - >/dev/null; }
apply grafana-provisioning \
  --from-file=datasources-prometheus.yaml=infra/grafana/provisioning/datasources/prometheus.yaml \
  --from-file=dashboards-adserver.yaml=infra/grafana/provisioning/dashboards/adserver.yaml
dashboards=()
for file in infra/grafana/dashboards/*.json; do
  [ -e "$file" ] && dashboards+=("--from-file=$(basename "$file")=$file")
done
apply grafana-dashboards "${dashboards[@]}"
echo "==> grafana: provisioning and ${#dashboards[@]} dashboard(s)"
