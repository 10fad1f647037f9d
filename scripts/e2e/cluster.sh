#!/usr/bin/env bash
# The kind cluster "distsum-e2e" the end-to-end tests run against.
#
#   scripts/e2e/cluster.sh up     create it, or reuse it when it answers; wait until the node is Ready,
#                                 CoreDNS and the storage provisioner are available
#   scripts/e2e/cluster.sh down   delete it
#   scripts/e2e/cluster.sh path   print which path applies here: online or offline
#
# Two paths, decided within seconds and printed:
#   online   a container registry answers: kind's published node image and its default CNI
#            (k8s/kind/e2e.yaml)
#   offline  none answers: the node image and every image in it are built locally from pinned sources
#            (offline/kind-node/node-image.sh; ~10-15 min cold, nothing warm) and k8s/kind/e2e-offline.yaml
#   DISTSUM_E2E_PATH=online|offline   force a path instead of probing
#   KUBECONFIG                        where kind writes the context kind-distsum-e2e (kind's default)
set -euo pipefail
CLUSTER=distsum-e2e
PROBE_SECONDS=5
READY_SECONDS=180
me="e2e-cluster"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/docker/lib.sh
source "$repo/scripts/docker/lib.sh"
context="kind-$CLUSTER"

# kind's own default node image reference, read from the pinned kind module (not repeated here).
online_image() {
  local dir
  dir="$(go_module_dir "sigs.k8s.io/kind@$KIND_VERSION")"
  sed -nE 's/^const Image = "(.*)"$/\1/p' "$dir/pkg/apis/config/defaults/image.go"
}

# choose_path: "online" when the registry of kind's node image answers for its manifest within
# PROBE_SECONDS (or the image is here already), else "offline". Never waits for a long time-out.
choose_path() {
  case "${DISTSUM_E2E_PATH:-auto}" in
    online | offline) log "path: $DISTSUM_E2E_PATH (forced by DISTSUM_E2E_PATH)"; echo "$DISTSUM_E2E_PATH"; return ;;
    auto) ;;
    *) die "DISTSUM_E2E_PATH must be online, offline or auto, not '$DISTSUM_E2E_PATH'" ;;
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

kubectl_bin() {
  if [[ $1 == offline ]] || ! command -v kubectl >/dev/null; then
    echo "$("$repo/offline/kind-node/k8s-binaries.sh" | tail -n 1)/kubectl"
  else
    command -v kubectl
  fi
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

exists() { grep -qx "$CLUSTER" <<<"$("$kind" get clusters 2>/dev/null)"; }

up() {
  SECONDS=0
  "$repo/scripts/docker/engine.sh" up
  if lacks_sys_resource && [[ $(docker info --format '{{.DefaultRuntime}}') != runc-nosysres ]]; then
    die "this machine lacks CAP_SYS_RESOURCE, and the running Docker engine was started without the runc
wrapper kind's privileged nodes need here. Restart it: scripts/docker/engine.sh down; scripts/docker/engine.sh up"
  fi
  local path kubectl args=()
  path="$(choose_path)"
  kubectl="$(kubectl_bin "$path")"
  if exists; then
    if "$kubectl" --context "$context" get --raw /readyz >/dev/null 2>&1; then
      log "reusing the kind cluster $CLUSTER"
      wait_ready "$kubectl"
      return
    fi
    log "the kind cluster $CLUSTER does not answer; creating it again"
    "$kind" delete cluster --name "$CLUSTER"
  fi
  if [[ $path == offline ]]; then
    args=(--config "$repo/k8s/kind/e2e-offline.yaml" --image "$("$repo/offline/kind-node/node-image.sh" | tail -n 1)")
  else
    args=(--config "$repo/k8s/kind/e2e.yaml")
  fi
  log "creating the kind cluster $CLUSTER (${args[*]})"
  local start=$SECONDS
  "$kind" create cluster --name "$CLUSTER" "${args[@]}" || die "kind create cluster failed"
  log "kind create cluster took $((SECONDS - start))s"
  wait_ready "$kubectl"
  log "cluster $CLUSTER is up ($path path, ${SECONDS}s in all); kubectl context $context, kubectl $kubectl"
}

down() {
  if exists; then
    "$kind" delete cluster --name "$CLUSTER"
  else
    log "no kind cluster named $CLUSTER"
  fi
}

kind="$("$repo/scripts/go-tool.sh" kind)"
case "${1:-}" in
  up) up ;;
  down) down ;;
  path) choose_path ;;
  *) die "usage: $0 up|down|path" ;;
esac
