#!/usr/bin/env bash
# `make e2e`: the end-to-end tests (tests/e2e) against a real kind cluster.
#   1. the cluster distsum-e2e (scripts/cluster/kind.sh up: online or offline path, printed);
#   2. our images (make images) and the local Kafka image (kafka-image.sh), loaded into the node; on the
#      offline path, a NetworkPolicy enforcer too (its bridge CNI enforces none; kind's CNI does online);
#   3. the namespaces of k8s/kind/namespaces.yaml and kube-prometheus-stack's Prometheus Operator and
#      Prometheus (the way make cluster-up installs the stack, fewer components);
#   4. pytest tests/e2e against the context kind-distsum-e2e (with skaffold run and skaffold dev);
#   5. the cluster is deleted again, unless DISTSUM_E2E_KEEP=1.
#   DISTSUM_CLUSTER_PATH=online|offline   force a path (see scripts/cluster/kind.sh)
#   DISTSUM_E2E_KEEP=1                    keep the cluster (a later run reuses it)
#   PYTEST_ARGS                           extra pytest arguments, e.g. "-k helm -x"
set -euo pipefail
me="e2e"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/lib.sh
source "$repo/scripts/lib.sh"
cd "$repo"
image_tag=dev # what make images tags besides the version

cluster=distsum-e2e
path="$(scripts/cluster/kind.sh path)"
# The same path for every step below, decided once.
export DISTSUM_CLUSTER_PATH="$path"
kind="" kubectl="" helm=""
tools="$(scripts/cluster/kind.sh tools)"
eval "$tools" # sets kind, kubectl, helm
if [[ ${DISTSUM_E2E_KEEP:-0} != 1 ]]; then
  on_exit scripts/cluster/kind.sh down "$cluster"
fi
timed() {
  local start=$SECONDS
  "$@"
  log "$* took $((SECONDS - start))s"
}
timed scripts/cluster/kind.sh up "$cluster"
timed scripts/docker/build-images.sh
# Kafka from the verified jars on both paths for now (Strimzi on the online path is still to come).
DISTSUM_E2E_KAFKA_IMAGE="$(timed offline/kafka-image.sh | tail -n 1)"
export DISTSUM_E2E_KAFKA_IMAGE
images=("distributed-sum/sum-svc:$image_tag" "distributed-sum/ledger-svc:$image_tag" "$DISTSUM_E2E_KAFKA_IMAGE")
enforcer=""
# kube-prometheus-stack's operator and Prometheus (k8s/kind/kube-prometheus-stack-e2e.yaml): offline, from
# images built here, each set as <registry>/<repository>:<tag> the way the chart composes them.
prometheus_args=(--values k8s/kind/kube-prometheus-stack-e2e.yaml)
if [[ $path == offline ]]; then
  enforcer="$(timed offline/network-policy-image.sh | tail -n 1)"
  images+=("$enforcer")
  declare -A image_keys=([operator]=prometheusOperator.image
    [config-reloader]=prometheusOperator.prometheusConfigReloader.image [prometheus]=prometheus.prometheusSpec.image)
  while IFS='=' read -r component image; do
    name="${image%:*}"
    prometheus_args+=(--set "${image_keys[$component]}.registry=${name%%/*}"
      --set "${image_keys[$component]}.repository=${name#*/}" --set "${image_keys[$component]}.tag=${image##*:}")
    images+=("$image")
  done < <(timed offline/prometheus-images.sh)
fi
export DISTSUM_E2E_KUBECTL="$kubectl" DISTSUM_E2E_HELM="$helm" DISTSUM_E2E_KIND="$kind"
export DISTSUM_E2E_IMAGE_TAG="$image_tag" DISTSUM_E2E_CONTEXT="kind-$cluster"
timed "$kind" load docker-image --name "$cluster" "${images[@]}"
# enforcer_ready: every node runs a ready enforcer (rollout status returns at once for a DaemonSet its
# controller has not counted yet).
enforcer_ready() {
  local counts desired ready deadline=$((SECONDS + 120))
  while ((SECONDS < deadline)); do
    counts="$("$kubectl" --context "kind-$cluster" -n kube-system get daemonset network-policy-enforcer \
      -o jsonpath='{.status.desiredNumberScheduled} {.status.numberReady}')"
    read -r desired ready <<<"$counts"
    ((${desired:-0} > 0 && ${ready:-0} == desired)) && return 0
    sleep 1
  done
  die "the NetworkPolicy enforcer is not ready on every node after 120s ($counts)"
}
if [[ -n $enforcer ]]; then
  sed "s|@image@|$enforcer|" k8s/kind/network-policy-enforcer.yaml | "$kubectl" --context "kind-$cluster" apply -f -
  timed enforcer_ready
fi
"$kubectl" --context "kind-$cluster" apply -f k8s/kind/namespaces.yaml
timed install_pinned_chart "$helm" "kind-$cluster" KPS "${prometheus_args[@]}" --wait --timeout 5m
# tests/e2e/test_skaffold.py: the pinned skaffold builds the images itself on the same base (profile
# offline) with the buildx plugin, and loads them with kind. Building skaffold takes ~4 min once.
DISTSUM_E2E_SKAFFOLD="$(timed scripts/go-tool.sh skaffold | tail -n 1)"
DISTSUM_E2E_DOCKER_CONFIG="$(timed scripts/docker/buildx-config.sh | tail -n 1)"
DISTSUM_E2E_BASE_IMAGE="$(offline/base-image.sh | tail -n 1)"
export DISTSUM_E2E_SKAFFOLD DISTSUM_E2E_DOCKER_CONFIG DISTSUM_E2E_BASE_IMAGE
# shellcheck disable=SC2086 # PYTEST_ARGS is a list of words
timed .venv/bin/pytest tests/e2e ${PYTEST_ARGS:-}
