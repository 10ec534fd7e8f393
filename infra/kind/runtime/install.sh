#!/usr/bin/env bash
# Test-harness only: make privileged containers (kind's nodes) run on a machine whose capability
# bounding set lacks CAP_SYS_RESOURCE, as some CI sandboxes do. On such a machine it installs
# runc-without-sys-resource and makes it dockerd's default runtime in /etc/docker/daemon.json,
# then sends dockerd SIGHUP, which reloads `runtimes` and `default-runtime` without a restart.
# Idempotent. On a normal machine (a laptop) it changes nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=runc-without-sys-resource
installed="/usr/local/libexec/ads-kind/$name"
config=/etc/docker/daemon.json
CAP_SYS_RESOURCE=24

bounding=$((16#$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)))
if (((bounding >> CAP_SYS_RESOURCE) & 1)); then
    exit 0 # the capability is there: Docker's own runtime works
fi
if docker info --format '{{.DefaultRuntime}}' 2>/dev/null | grep -qx "$name" \
    && cmp -s "$here/$name" "$installed"; then
    exit 0
fi
[[ $(id -u) == 0 ]] || { echo "FAILED: $0 must run as root to configure dockerd" >&2; exit 1; }
echo "==> kind: this machine lacks CAP_SYS_RESOURCE; dockerd's default runtime becomes $installed"
# A copy outside the work tree: dockerd keeps using it after this checkout moves.
install -D -m 0755 "$here/$name" "$installed"
mkdir -p "$(dirname "$config")"
python3 - "$config" "$name" "$installed" <<'PY'
import json, os, sys
path, name, wrapper = sys.argv[1:]
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
config.setdefault("runtimes", {})[name] = {"path": wrapper}
config["default-runtime"] = name
with open(path + ".new", "w") as handle:
    json.dump(config, handle, indent=2)
os.replace(path + ".new", path)
PY
pid="$(pgrep -xo dockerd)" || { echo "FAILED: no dockerd to reload" >&2; exit 1; }
kill -HUP "$pid"
for _ in $(seq 1 20); do
    if docker info --format '{{.DefaultRuntime}}' 2>/dev/null | grep -qx "$name"; then
        exit 0
    fi
    sleep 0.5
done
echo "FAILED: dockerd did not take $name as its default runtime (see its log)" >&2
exit 1
