#!/usr/bin/env bash
# The cluster stage's Go builds (Kubernetes, etcd, CoreDNS and the add-ons: tools.sh), started in
# the background at idle CPU priority while `make test` runs its main suite, so that a cold
# machine's long compile uses the cycles the suite leaves idle instead of adding to the run.
# Idle priority (SCHED_IDLE) yields the CPU to every other process at once, so the suite's
# timings are unaffected. On a warm machine every build is cached and this ends in a second.
#
#   infra/kind/prebuild.sh start   # returns at once; the log is .local/kind/prebuild.log
#   infra/kind/prebuild.sh wait    # until it ends (at once if none was started); its exit status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOG="$KIND_STATE/prebuild.log"
STATUS="$KIND_STATE/prebuild.status"
LOCK="$KIND_STATE/prebuild.lock"
# What up.sh and deploy.sh build for the tested path (faas-netes runs only with
# KIND_PROVIDER=faas-netes, so it is not here).
TOOLS=(kind crictl pause etcd kubernetes coredns helm kube-provider prometheus local-path-provisioner
    metrics-server kube-router)

case "${1:-}" in
    start)
        rm -f "$STATUS"
        # The lock is taken here and held by the background job until it ends, so a `wait` that
        # comes at once still finds it.
        exec 9>"$LOCK"
        flock 9
        progress "building the cluster's tools in the background at idle priority (log: $LOG)"
        (
            status=0
            chrt --idle 0 nice -n 19 "$KIND_HERE/tools.sh" "${TOOLS[@]}" || status=$?
            echo "$status" >"$STATUS"
        ) </dev/null >"$LOG" 2>&1 &
        ;;
    wait)
        started=$SECONDS
        exec 9>"$LOCK"
        flock 9
        [[ -f "$STATUS" ]] || exit 0 # none was started
        if (($(cat "$STATUS") != 0)); then
            tail -n 30 "$LOG" >&2
            fail "the background build of the cluster's tools exited $(cat "$STATUS") (log: $LOG)"
        fi
        progress "the cluster's tools are built (waited $((SECONDS - started)) s; log: $LOG)"
        ;;
    *)
        echo "usage: $0 start|wait" >&2
        exit 2
        ;;
esac
