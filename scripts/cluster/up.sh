#!/usr/bin/env bash
# Bring up the whole stack on a local kind cluster named "distsum" (make cluster-up):
#   1. the kind cluster (scripts/cluster/kind.sh up distsum, the same script make e2e uses), reused when
#      it answers;
#   2. the namespaces with their Pod Security labels and the Grafana admin Secret (prepare.sh);
#   3. the Strimzi operator, then kube-prometheus-stack, Loki, Tempo and Alloy (charts and versions pinned
#      in pins.env, packages from scripts/cluster/chart-package.sh, values in k8s/observability/);
#   4. our images (make images), loaded into the kind node;
#   5. charts/distributed-sum with values-kind.yaml, waiting until Kafka and the services are ready.
# Re-running it upgrades everything in place.
#
#   scripts/cluster/up.sh [--no-observability]
#
#   --no-observability    (or DISTSUM_OBSERVABILITY=0) for small machines: only Strimzi and the app,
#                         with the app's ServiceMonitors, rules, dashboards and tracing turned off
#                         (they are turned on otherwise).
#   DISTSUM_IMAGE_TAG     tag of the images to load (default: appVersion of charts/distributed-sum).
#
# Needs make, Go (kind and helm are built from pins.env once; see scripts/cluster/kind.sh for using your
# own), a Docker engine (started by kind.sh when it is not running) and access to the internet: the
# cluster pulls the third-party images itself, and the charts come from their public chart repositories
# unless a directory of their packages is at hand (see chart-package.sh).
set -euo pipefail
me="cluster-up"
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib.sh"
cd "$repo"

cluster=distsum
context="kind-$cluster"
kind="" kubectl="" helm="" # set in main from scripts/cluster/kind.sh tools
helm_timeout=15m
images=(distributed-sum/sum-svc distributed-sum/ledger-svc)

observability="${DISTSUM_OBSERVABILITY:-1}"
case "${1:-}" in
  "") ;;
  --no-observability) observability=0 ;;
  -h | --help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (usage: $0 [--no-observability])" ;;
esac
[[ $observability == 0 || $observability == 1 ]] || die "DISTSUM_OBSERVABILITY must be 0 or 1"

check_prerequisites() {
  command -v make >/dev/null 2>&1 || die "missing tool(s): make. Install it and run again."
  [[ -f $APP_CHART/Chart.yaml ]] || die "$APP_CHART/Chart.yaml is missing"
  [[ -f $APP_VALUES ]] || die "$APP_VALUES is missing"
}

install_chart() { install_pinned_chart "$helm" "$context" "$1" --wait --timeout "$helm_timeout"; }

wait_for_crds() {
  "$kubectl" --context "$context" wait --for condition=Established --timeout=120s "${@/#/crd/}"
}

install_operator() {
  install_chart STRIMZI
  wait_for_crds kafkas.kafka.strimzi.io kafkanodepools.kafka.strimzi.io kafkatopics.kafka.strimzi.io
}

install_observability() {
  install_chart KPS
  # The app chart's ServiceMonitors and PrometheusRule need these CRDs to be served first.
  wait_for_crds servicemonitors.monitoring.coreos.com prometheusrules.monitoring.coreos.com
  install_chart LOKI
  install_chart TEMPO
  install_chart ALLOY
}

image_tag() {
  if [[ -n ${DISTSUM_IMAGE_TAG:-} ]]; then
    echo "$DISTSUM_IMAGE_TAG"
  else
    sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' "$APP_CHART/Chart.yaml"
  fi
}

build_and_load_images() {
  local tag=$1 image refs=()
  log "building the images (make images)"
  make images
  for image in "${images[@]}"; do
    docker image inspect "$image:$tag" >/dev/null 2>&1 \
      || die "make images did not produce $image:$tag (set DISTSUM_IMAGE_TAG to the tag it built)"
    refs+=("$image:$tag")
  done
  log "loading ${refs[*]} into the kind node"
  "$kind" load docker-image --name "$cluster" "${refs[@]}"
}

install_app() {
  local tag=$1 workload name
  local args=(
    --set "sum.image.repository=${images[0]}" --set "sum.image.tag=$tag"
    --set "ledger.image.repository=${images[1]}" --set "ledger.image.tag=$tag"
  )
  # values-kind.yaml leaves the Prometheus Operator objects and trace export off; they follow the
  # observability stack here, stated explicitly either way.
  local on=false
  ((observability)) && on=true
  args+=(
    --set "monitoring.serviceMonitor.enabled=$on" --set "monitoring.prometheusRule.enabled=$on"
    --set "monitoring.dashboards.enabled=$on" --set "tracing.enabled=$on"
  )
  log "installing $APP_CHART as '$APP_RELEASE' in $APP_NAMESPACE (Kafka starts first: a few minutes)"
  "$helm" upgrade --install "$APP_RELEASE" "$APP_CHART" --kube-context "$context" \
    --namespace "$APP_NAMESPACE" --values "$APP_VALUES" "${args[@]}" --wait --timeout "$helm_timeout"
  "$kubectl" --context "$context" -n "$APP_NAMESPACE" wait kafka --all --for condition=Ready --timeout=10m
  for workload in deployment statefulset; do
    for name in $("$kubectl" --context "$context" -n "$APP_NAMESPACE" get "$workload" \
      -l "app.kubernetes.io/instance=$APP_RELEASE" -o name); do
      "$kubectl" --context "$context" -n "$APP_NAMESPACE" rollout status "$name" --timeout=5m
    done
  done
}

# service_with_port PORT: the app Service that exposes PORT (names follow the release, so look them up).
service_with_port() {
  "$kubectl" --context "$context" -n "$APP_NAMESPACE" get service \
    -l "app.kubernetes.io/instance=$APP_RELEASE" \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.ports[*].port}{"\n"}{end}' \
    | awk -v port="$1" '!found { for (i = 2; i <= NF; i++) if ($i == port) { print $1; found = 1; break } }'
}

print_access() {
  local sum_svc ledger_svc namespaces="$STRIMZI_NAMESPACE, $APP_NAMESPACE" k="$kubectl --context $context"
  ((observability)) && namespaces+=", $KPS_NAMESPACE"
  sum_svc="$(service_with_port 50051)"
  ledger_svc="$(service_with_port 8080)"
  cat <<EOF

The stack is up (kube context $context; namespaces $namespaces).

Use the services from this machine:
  $k -n $APP_NAMESPACE port-forward svc/${sum_svc:-<sum service>} 50051:50051 &
  $k -n $APP_NAMESPACE port-forward svc/${ledger_svc:-<ledger service>} 8080:8080 &
  .venv/bin/distsum add 2 3
  .venv/bin/distsum total
  grpcurl -plaintext -d "{\"request_id\":\"\$(uuidgen)\",\"a\":\"2\",\"b\":\"3\"}" \\
    127.0.0.1:50051 distsum.v1.SumService/Add
  curl -s 127.0.0.1:8080/v1/total
EOF
  ((observability)) || return 0
  cat <<EOF

Grafana (datasources Prometheus, Loki and Tempo, linked by trace id; the app's dashboards under Dashboards):
  $k -n $KPS_NAMESPACE port-forward svc/$KPS_RELEASE-grafana 3000:80 &
  open http://127.0.0.1:3000 and log in as admin with the password printed by:
  $k -n $KPS_NAMESPACE get secret grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d; echo
Prometheus:
  $k -n $KPS_NAMESPACE port-forward svc/$KPS_RELEASE-prometheus 9090:9090 &
In the cluster: Loki http://loki.$LOKI_NAMESPACE.svc.cluster.local:3100,
Tempo http://tempo.$TEMPO_NAMESPACE.svc.cluster.local:3200 (OTLP gRPC :4317, HTTP :4318).
EOF
}

main() {
  local tag tools prepare_args=()
  check_prerequisites
  # One path (online or offline) and one set of binaries for every step.
  DISTSUM_CLUSTER_PATH="$(scripts/cluster/kind.sh path)"
  export DISTSUM_CLUSTER_PATH
  tools="$(scripts/cluster/kind.sh tools)"
  eval "$tools" # sets kind, kubectl, helm
  tag="$(image_tag)"
  [[ -n $tag ]] || die "cannot read appVersion from $APP_CHART/Chart.yaml; set DISTSUM_IMAGE_TAG"
  scripts/cluster/kind.sh up "$cluster"
  ((observability)) || prepare_args+=(--no-observability)
  log "preparing namespaces"
  # The ${a[@]+...} form keeps an empty array from tripping `set -u` in the bash 3.2 of macOS.
  DISTSUM_KUBECTL="$kubectl" KUBE_CONTEXT="$context" scripts/cluster/prepare.sh ${prepare_args[@]+"${prepare_args[@]}"}
  install_operator
  if ((observability)); then
    install_observability
  else
    log "skipping Prometheus, Loki, Tempo and Alloy (--no-observability)"
  fi
  build_and_load_images "$tag"
  install_app "$tag"
  print_access
}

main
