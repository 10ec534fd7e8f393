#!/usr/bin/env bash
# Start Docker's daemon in the background when `docker info` does not answer, then wait until it
# does. For machines without systemd (CI, containers); idempotent: with a daemon already up it
# only checks. The daemon's log goes to .local/docker/dockerd.log, its pid to dockerd.pid.
#
#   infra/docker/start-dockerd.sh            # waits up to DOCKERD_WAIT_S (default 60) seconds
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state="$root/.local/docker"
wait_s="${DOCKERD_WAIT_S:-60}"

if docker info >/dev/null 2>&1; then
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "FAILED: dockerd is not installed (Debian: apt-get install docker.io)" >&2
    exit 1
fi

mkdir -p "$state"
# A daemon this script started earlier may still be coming up: wait for it rather than start a
# second one (which would fail on dockerd's own pid file anyway).
pid=""
if [[ -s "$state/dockerd.pid" ]] && kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null; then
    pid="$(cat "$state/dockerd.pid")"
elif pgrep -x dockerd >/dev/null 2>&1; then
    pid="$(pgrep -xo dockerd)"
else
    # setsid: the daemon outlives the shell (and the make or CI step) that started it.
    setsid dockerd >>"$state/dockerd.log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" >"$state/dockerd.pid"
    echo "==> dockerd started (pid $pid, log $state/dockerd.log)"
fi

for _ in $(seq 1 "$wait_s"); do
    if docker info >/dev/null 2>&1; then
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "FAILED: dockerd exited; last lines of $state/dockerd.log:" >&2
        tail -n 20 "$state/dockerd.log" >&2
        exit 1
    fi
    sleep 1
done
echo "FAILED: dockerd (pid $pid) did not answer within ${wait_s}s; see $state/dockerd.log" >&2
exit 1
