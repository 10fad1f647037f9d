#!/usr/bin/env bash
# The kind clusters, made one way for both callers: "distsum" (make cluster-up) and "distsum-e2e"
# (make e2e).
#
#   scripts/cluster/kind.sh up NAME     create cluster NAME, or reuse it when it answers; wait until the
#                                       node is Ready, CoreDNS and the storage provisioner are available
#   scripts/cluster/kind.sh down NAME   delete it
#   scripts/cluster/kind.sh path        print which path applies here: online or offline
#   scripts/cluster/kind.sh tools       print the kind, kubectl and helm to use, as shell assignments
#                                       (callers eval them)
#
# Two paths, decided within seconds and printed:
#   online   a container registry answers: kind's published node image and its default CNI
#            (k8s/kind/online.yaml)
#   offline  none answers: the node image and every image in it are built locally from pinned sources
#            (offline/kind-node/node-image.sh; ~10-15 min cold, nothing warm) and k8s/kind/offline.yaml
#   DISTSUM_CLUSTER_PATH=online|offline   force a path instead of probing
#   DISTSUM_KIND, DISTSUM_KUBECTL, DISTSUM_HELM
#                                         use these binaries instead of the pinned ones (kind and helm
#                                         built from pins.env; kubectl from the offline Kubernetes build
#                                         on the offline path, else the one on PATH)
#   KUBECONFIG                            where kind writes the context kind-NAME (kind's default)
set -euo pipefail
PROBE_SECONDS=5
READY_SECONDS=180
me="kind.sh"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/docker/lib.sh
source "$repo/scripts/docker/lib.sh"

# kind's own default node image reference, read from the pinned kind module (not repeated here).
online_image() {
  local dir
  dir="$(go_module_dir "sigs.k8s.io/kind@$KIND_VERSION")"
  sed -nE 's/^const Image = "(.*)"$/\1/p' "$dir/pkg/apis/config/defaults/image.go"
}

# choose_path: "online" when the registry of kind's node image answers for its manifest within
# PROBE_SECONDS (or the image is here already), else "offline". Never waits for a long time-out.
choose_path() {
  case "${DISTSUM_CLUSTER_PATH:-auto}" in
    online | offline) log "path: $DISTSUM_CLUSTER_PATH (forced by DISTSUM_CLUSTER_PATH)"; echo "$DISTSUM_CLUSTER_PATH"; return ;;
    auto) ;;
    *) die "DISTSUM_CLUSTER_PATH must be online, offline or auto, not '$DISTSUM_CLUSTER_PATH'" ;;
  esac
  local image
  image="$(online_image)"
  if present "$image" || timeout "$PROBE_SECONDS" docker manifest inspect "$image" >/dev/null 2>&1; then
    log "path: online (kind's node image $image is reachable)"
    echo online
  else
    log "path: offline (no container registry answered for kind's node image within ${PROBE_SECONDS}s)"
    echo offline
  fi
}

kubectl_for() {
  if [[ -n ${DISTSUM_KUBECTL:-} ]]; then
    echo "$DISTSUM_KUBECTL"
  elif [[ $1 == offline ]] || ! command -v kubectl >/dev/null; then
    echo "$("$repo/offline/kind-node/k8s-binaries.sh" | tail -n 1)/kubectl"
  else
    command -v kubectl
  fi
}

kind_bin() { echo "${DISTSUM_KIND:-$("$repo/scripts/go-tool.sh" kind)}"; }

# tools: the binaries every cluster script uses, as `name=path` lines quoted for eval.
tools() {
  local path
  path="$(choose_path)"
  printf 'kind=%q\nkubectl=%q\nhelm=%q\n' "$(kind_bin)" "$(kubectl_for "$path")" \
    "${DISTSUM_HELM:-$("$repo/scripts/go-tool.sh" helm)}"
}

wait_ready() {
  local kubectl=$1 start=$SECONDS
  "$kubectl" --context "$context" wait --for=condition=Ready node --all --timeout="${READY_SECONDS}s" >/dev/null \
    || die "the node did not become Ready within ${READY_SECONDS}s"
  log "node Ready after $((SECONDS - start))s"
  "$kubectl" --context "$context" -n kube-system rollout status deployment/coredns --timeout="${READY_SECONDS}s" \
    >/dev/null || die "CoreDNS did not become available within ${READY_SECONDS}s"
  log "CoreDNS available after $((SECONDS - start))s"
  # kind's default StorageClass "standard" (local-path): the ledger's PVC needs its provisioner.
  "$kubectl" --context "$context" -n local-path-storage rollout status deployment/local-path-provisioner \
    --timeout="${READY_SECONDS}s" >/dev/null || die "the local-path provisioner did not become available"
  log "storage provisioner available after $((SECONDS - start))s"
}

exists() { grep -qx "$cluster" <<<"$("$kind" get clusters 2>/dev/null)"; }

up() {
  SECONDS=0
  "$repo/scripts/docker/engine.sh" up
  if lacks_sys_resource && [[ $(docker info --format '{{.DefaultRuntime}}') != runc-nosysres ]]; then
    die "this machine lacks CAP_SYS_RESOURCE, and the running Docker engine was started without the runc
wrapper kind's privileged nodes need here. Restart it: scripts/docker/engine.sh down; scripts/docker/engine.sh up"
  fi
  local path kubectl args=()
  path="$(choose_path)"
  kubectl="$(kubectl_for "$path")"
  if exists; then
    if "$kubectl" --context "$context" get --raw /readyz >/dev/null 2>&1; then
      log "reusing the kind cluster $cluster"
      wait_ready "$kubectl"
      return
    fi
    log "the kind cluster $cluster does not answer; creating it again"
    "$kind" delete cluster --name "$cluster"
  fi
  if [[ $path == offline ]]; then
    args=(--config "$repo/k8s/kind/offline.yaml" --image "$("$repo/offline/kind-node/node-image.sh" | tail -n 1)")
  else
    args=(--config "$repo/k8s/kind/online.yaml")
  fi
  log "creating the kind cluster $cluster (${args[*]})"
  local start=$SECONDS
  "$kind" create cluster --name "$cluster" "${args[@]}" || die "kind create cluster failed"
  log "kind create cluster took $((SECONDS - start))s"
  wait_ready "$kubectl"
  log "cluster $cluster is up ($path path, ${SECONDS}s in all); kubectl context $context, kubectl $kubectl"
}

down() {
  if exists; then
    "$kind" delete cluster --name "$cluster"
  else
    log "no kind cluster named $cluster"
  fi
}

usage() { die "usage: $0 up NAME | down NAME | path | tools"; }
case "${1:-}" in
  up | down)
    [[ $# == 2 && $2 =~ ^[a-z0-9][a-z0-9-]*$ ]] || usage
    cluster=$2
    context="kind-$cluster"
    kind="$(kind_bin)"
    "$1"
    ;;
  path) choose_path ;;
  tools) tools ;;
  *) usage ;;
esac
