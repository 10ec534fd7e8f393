#!/usr/bin/env bash
# `make kind-reconcile`: `make reconcile`'s check (localplatform.reconcile) against the kind
# cluster's PostgreSQL and Redis, reached through `kubectl port-forward` on free local ports.
# Prints a line per campaign and every difference; exits 1 when there is one.
#
#   infra/k8s/reconcile.sh [--date 2026-12-03]
#
# Settings: KIND_CLUSTER (adserver); the password from .local/k8s/secrets/postgres-password, the
# file infra/k8s/secrets/create-secrets.sh made the cluster's secret from.
set -euo pipefail
cd "$(dirname "$0")/../.."
cluster="${KIND_CLUSTER:-adserver}"
python="${PYTHON:-$PWD/.venv/bin/python}"
password_file=.local/k8s/secrets/postgres-password
# The pinned kubectl that `make kind-up` built, where it built it.
if [ -d .local/kind/bin ]; then PATH="$PWD/.local/kind/bin:$PATH"; fi
[ -f "$password_file" ] || { echo "FAILED: $password_file is missing (make kind-deploy writes it)" >&2; exit 1; }

logs="$(mktemp -d)"
forwards=()
trap 'kill "${forwards[@]}" 2>/dev/null || true; rm -rf "$logs"' EXIT
for service in ads-postgres-rw:5432 redis:6379; do
  kubectl --context "kind-$cluster" -n ads port-forward --address 127.0.0.1 \
    "service/${service%:*}" ":${service#*:}" >"$logs/${service%:*}" 2>&1 &
  forwards+=($!)
done
# local_port SERVICE: the port kubectl chose, once it listens (it prints "Forwarding from ...").
local_port() {
  local port
  for _ in $(seq 150); do
    port="$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$logs/$1" | head -n 1)"
    if [ -n "$port" ]; then echo "$port"; return; fi
    sleep 0.2
  done
  echo "FAILED: kubectl port-forward to service/$1 in namespace ads: $(cat "$logs/$1")" >&2
  exit 1
}
postgres_port="$(local_port ads-postgres-rw)"
redis_port="$(local_port redis)"
PYTHONPATH="$PWD:$PWD/infra/local" "$python" -m localplatform.reconcile \
  --database-url "postgresql://adserver@127.0.0.1:$postgres_port/adserver" \
  --redis-url "redis://127.0.0.1:$redis_port/0" --postgres-password-file "$password_file" "$@"
