#!/usr/bin/env bash
# Every secret the product reads on Kubernetes, created from files (never from committed values,
# never on a command line). Usage:
#
#   infra/k8s/secrets/create-secrets.sh [DIR]      # DIR defaults to .local/k8s/secrets
#
# Each value is the content of DIR/<file>. A missing file is generated once (random, mode 0600)
# and kept, so a re-run changes nothing; put your own files there first to choose values. Safe
# to run again: every secret is applied (created or updated), not only created.
# tests/deploy reads the `secret` lines below: a secret referenced by stack.yml or a manifest
# and missing here fails the tests.
set -euo pipefail
cd "$(dirname "$0")/../../.."
dir="${1:-.local/k8s/secrets}"
command -v kubectl >/dev/null || { echo "create-secrets: kubectl not found (install it first)" >&2; exit 1; }
# KUBECTL_CONTEXT: the cluster to create them in (default: kubectl's current context).
kubectl() { command kubectl ${KUBECTL_CONTEXT:+--context "$KUBECTL_CONTEXT"} "$@"; }
mkdir -p "$dir" && chmod 700 "$dir"

# A file with a random value unless it exists (the gateway user is `admin`).
ensure_file() {
  local path="$dir/$1"
  [ -s "$path" ] && return
  if [ "$1" = basic-auth-user ]; then
    printf admin > "$path"
  else
    python3 -c 'import secrets, sys; sys.stdout.write(secrets.token_urlsafe(32))' > "$path"
  fi
  chmod 600 "$path"
  echo "==> generated $path"
}

# secret NAMESPACE NAME [--type=TYPE] KEY=FILE ... : apply a secret whose keys are files in $dir.
# A KEY=literal:VALUE pair is a value that is no secret (a user name).
secret() {
  local namespace=$1 name=$2 args=()
  shift 2
  for pair in "$@"; do
    case "$pair" in
      --type=*) args+=("$pair") ;;
      *=literal:*) args+=("--from-literal=${pair%%=*}=${pair#*=literal:}") ;;
      *) ensure_file "${pair#*=}"; args+=("--from-file=${pair%%=*}=$dir/${pair#*=}") ;;
    esac
  done
  kubectl create secret generic "$name" --namespace "$namespace" "${args[@]}" \
    --dry-run=client -o yaml | kubectl apply -f - | { grep -v ' unchanged$' || true; }
  echo "==> secret $namespace/$name"
}

# The gateway's credentials (the OpenFaaS chart runs with generateBasicAuth=false).
secret openfaas basic-auth basic-auth-user=basic-auth-user basic-auth-password=basic-auth-password
# The same credentials for our connector, which lists functions through the gateway.
secret ads connector-gateway-auth basic-auth-user=basic-auth-user basic-auth-password=basic-auth-password
# Function secrets (stack.yml `secrets:`), mounted at /var/openfaas/secrets/<name>.
secret ads postgres-password postgres-password=postgres-password
secret ads campaigns-admin-token campaigns-admin-token=campaigns-admin-token
secret ads click-signing-key click-signing-key=click-signing-key
secret ads openrtb-notice-key openrtb-notice-key=openrtb-notice-key
# The log-level export's S3 credentials: put your bucket's access key files in DIR first (a
# generated value is refused by S3, and the export then stops at start saying so).
secret ads export-s3-access-key-id export-s3-access-key-id=export-s3-access-key-id
secret ads export-s3-secret-access-key export-s3-secret-access-key=export-s3-secret-access-key
# The `adserver` role's password for CloudNativePG's initdb: the same file as postgres-password.
secret ads ads-postgres-credentials --type=kubernetes.io/basic-auth username=literal:adserver password=postgres-password
# Grafana's admin login.
secret openfaas grafana-admin admin-user=literal:admin admin-password=grafana-admin-password
