#!/usr/bin/env bash
# The secret files docker-compose.yml reads, each a random value, created once (an existing file
# is kept). The folder is private to you (0700); the files are readable (0444) because compose
# mounts them as they are, and the containers' users are not root. ADS_COMPOSE_SECRETS moves
# the folder (the compose file's paths then need the same change).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${ADS_COMPOSE_SECRETS:-$root/.local/compose/secrets}"
mkdir -p "$dir"
chmod 700 "$dir"
[[ -e "$dir/basic-auth-user" ]] || printf admin >"$dir/basic-auth-user"
for name in postgres-password basic-auth-password click-signing-key campaigns-admin-token \
    openrtb-notice-key grafana-admin-password; do
    # 32 random bytes, URL-safe base64 without padding (as the local platform's secrets).
    [[ -e "$dir/$name" ]] || head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$dir/$name"
done
chmod 444 "$dir"/*
echo "$dir"
