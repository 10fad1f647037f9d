#!/usr/bin/env bash
# `make loadtest`: run the k6 load test (the chart loadtest/) as a Job in the cluster of the current
# kubectl context, print k6's output with its summary, and exit with k6's status: 99 when a threshold
# failed. The Job of an earlier run is replaced.
#   LOADTEST_NAMESPACE   namespace of the app release; the Job runs there (default distsum)
#   LOADTEST_RELEASE     the app's Helm release, whose Services are loaded (default distributed-sum)
#   LOADTEST_SET         more values of loadtest/values.yaml, helm --set syntax: load.peakVUs=50,load.hold=10m
#   LOADTEST_TIMEOUT     seconds to wait for the Job in all (default 2400)
#   HELM                 helm to render with (default: helm on PATH, else scripts/go-tool.sh helm)
set -euo pipefail
me="loadtest"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=scripts/lib.sh
source "$repo/scripts/lib.sh"
cd "$repo"

namespace="${LOADTEST_NAMESPACE:-distsum}"
release="${LOADTEST_RELEASE:-distributed-sum}"
timeout="${LOADTEST_TIMEOUT:-2400}"
job=distsum-loadtest
command -v kubectl >/dev/null || die "kubectl is needed"
helm="${HELM:-$(command -v helm || scripts/go-tool.sh helm)}"

values=(--set "target.release=$release")
[[ -z ${LOADTEST_SET:-} ]] || values+=(--set "$LOADTEST_SET")
manifest="$("$helm" template "$job" loadtest --namespace "$namespace" "${values[@]}")"

k=(kubectl --namespace "$namespace")
log "context $(kubectl config current-context), namespace $namespace, loading the release $release"
# Foreground: the old pod is gone before the new one, so the exit code read below is this run's.
"${k[@]}" delete job "$job" --ignore-not-found --cascade=foreground --wait >&2
"${k[@]}" apply -f - <<<"$manifest" >&2

deadline=$((SECONDS + timeout))
followed=1
"${k[@]}" logs --follow "job/$job" --pod-running-timeout="${timeout}s" || followed=0
until status="$("${k[@]}" get job "$job" -o jsonpath='{.status.succeeded}/{.status.failed}')" \
  && [[ $status == 1/* || $status == */1 ]]; do
  ((SECONDS < deadline)) || die "the Job did not finish within ${timeout}s; see kubectl -n $namespace describe job $job"
  sleep 2
done
((followed)) || "${k[@]}" logs "job/$job" || true

code="$("${k[@]}" get pods --selector "job-name=$job" \
  -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}')"
case "$code" in
  0) log "k6 passed" ;;
  99) log "k6 exited with 99: a threshold failed (the summary above says which)" ;;
  "") log "the load pod did not run to its end; see kubectl -n $namespace describe job $job"; code=1 ;;
  *) log "k6 exited with $code" ;;
esac
exit "$code"
