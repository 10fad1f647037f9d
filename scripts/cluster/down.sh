#!/usr/bin/env bash
# Delete the local kind cluster "distsum" (make cluster-down) and everything in it. The images built by
# `make images` stay in the local Docker daemon.
set -euo pipefail

cluster=distsum

if ! command -v kind >/dev/null 2>&1; then
  echo "cluster-down: kind is not installed, so there is no kind cluster to delete" >&2
  exit 1
fi

if grep -qx "$cluster" <<<"$(kind get clusters 2>/dev/null)"; then
  kind delete cluster --name "$cluster"
else
  echo "cluster-down: no kind cluster named $cluster" >&2
fi
