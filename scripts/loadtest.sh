#!/usr/bin/env bash
# `make loadtest`: run the k6 load test (the chart loadtest/) as a Job in the cluster of the current
# kubectl context, print k6's output with its summary, then compare the ledger's total (read through a
# port-forward) with what k6 had acknowledged (scripts/loadtest_verdict.py). Exits with k6's status (99
# when a threshold failed), or 1 when k6 passed but the totals differ. The Job of an earlier run is
# replaced.
#   LOADTEST_NAMESPACE   namespace of the app release; the Job runs there (default distsum)
#   LOADTEST_RELEASE     the app's Helm release, whose Services are loaded (default distributed-sum)
#   LOADTEST_SET         more values of loadtest/values.yaml, helm --set syntax: load.peakVUs=50,load.hold=10m
#   LOADTEST_TIMEOUT     seconds to wait for the Job in all (default 2400)
#   LOADTEST_SETTLE      seconds the ledger may take to count what k6 had acknowledged (default 120)
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

# compare_totals: the ledger (through a port-forward to its Service) against k6's result line. With TLS
# on, the ledger is read with the client certificate the Job mounted (from the Secret it names).
compare_totals() {
  local result service port forward_log pid secret tls_dir key scheme=http local_port=""
  result="$("${k[@]}" logs "job/$job" | sed -n 's/^distsum-loadtest-result //p' | tail -n 1)"
  [[ -n $result ]] || { log "k6 printed no distsum-loadtest-result line: the totals cannot be compared"; return 1; }
  local selector="app.kubernetes.io/instance=$release,app.kubernetes.io/component=ledger"
  local each='{range .items[*]}{.metadata.name} {.spec.ports[?(@.name=="http")].port}{"\n"}{end}'
  read -r service port < <("${k[@]}" get service -l "$selector" -o "jsonpath=$each" | awk 'NF == 2' | head -n 1)
  [[ -n ${port:-} ]] || { log "no Service of release $release exposes the ledger's http port"; return 1; }
  forward_log="$(mktemp)"
  "${k[@]}" port-forward "service/$service" ":$port" >"$forward_log" 2>&1 &
  pid=$!
  on_exit kill "$pid"
  on_exit rm -f "$forward_log"
  for _ in $(seq 1 50); do
    local_port="$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$forward_log" | head -n 1)"
    [[ -z $local_port ]] || break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  [[ -n $local_port ]] || { log "kubectl port-forward to service/$service failed: $(cat "$forward_log")"; return 1; }
  secret="$("${k[@]}" get job "$job" -o 'jsonpath={.spec.template.spec.volumes[?(@.name=="tls")].secret.secretName}')"
  if [[ -n $secret ]]; then
    tls_dir="$(mktemp -d)"
    on_exit rm -rf "$tls_dir"
    for key in ca.crt tls.crt tls.key; do
      "${k[@]}" get secret "$secret" -o "jsonpath={.data.${key//./\\.}}" | base64 -d >"$tls_dir/$key" \
        || { log "cannot read $key of the Secret $secret"; return 1; }
    done
    # The ledger's certificate names 127.0.0.1, which a port-forward client dials.
    scheme=https
    export DISTSUM_TLS_CA_FILE="$tls_dir/ca.crt" DISTSUM_TLS_CERT_FILE="$tls_dir/tls.crt" \
      DISTSUM_TLS_KEY_FILE="$tls_dir/tls.key"
  fi
  python3 scripts/loadtest_verdict.py "$result" "$scheme://127.0.0.1:$local_port" "${LOADTEST_SETTLE:-120}"
}

verdict=0
compare_totals || verdict=$?
# k6's own failure says more; a load that passed its thresholds still fails on a wrong total.
[[ $code != 0 ]] || code=$verdict
exit "$code"
