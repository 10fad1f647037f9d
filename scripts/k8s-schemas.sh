#!/usr/bin/env bash
# Build (once) the offline JSON schemas kubeconform validates the Helm chart against; print their directory.
#   scripts/k8s-schemas.sh        -> .../k8s-schemas/k8s-1.37.0-prometheus-operator-v0.85.0-<converter hash>
#   scripts/k8s-schemas.sh --kube-version   -> 1.37.0
# The versions are pinned here. Kubernetes 1.37.0 is the node image of kind v0.33.0 (scripts/go-tool.sh),
# and tests/chart renders the chart with `helm template --kube-version` of the same version.
set -euo pipefail

KUBE_VERSION=1.37.0
# PyPI package with the Kubernetes schemas; pinned in requirements/dev.lock too.
KUBERNETES_VALIDATE_VERSION=1.37.0
# Go module whose example/prometheus-operator-crd/ holds the monitoring.coreos.com CRDs.
PROMETHEUS_OPERATOR_VERSION=v0.85.0

if [[ "${1:-}" == "--kube-version" ]]; then
  echo "$KUBE_VERSION"
  exit 0
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${DISTSUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/distsum}"
# A changed converter writes a new directory instead of reusing one in the old layout.
converter="$(sha256sum "$root/scripts/k8s_schemas.py" | cut -c1-12)"
out="$cache/k8s-schemas/k8s-$KUBE_VERSION-prometheus-operator-$PROMETHEUS_OPERATOR_VERSION-$converter"
python="${PYTHON:-$root/.venv/bin/python}"

mkdir -p "$(dirname "$out")"
exec 9>"$(dirname "$out")/.lock"
flock 9
if [[ ! -d "$out" ]]; then
  command -v go >/dev/null || { echo "k8s-schemas.sh: Go is needed to fetch the prometheus-operator CRDs" >&2; exit 1; }
  echo "k8s-schemas.sh: building schemas for Kubernetes $KUBE_VERSION (once; cached in $out)" >&2
  module_dir="$(cd "$cache" && GOFLAGS=-mod=mod go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    | "$python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  crds="$module_dir/example/prometheus-operator-crd"
  "$python" "$root/scripts/k8s_schemas.py" \
    --kube-version "$KUBE_VERSION" \
    --kubernetes-validate-version "$KUBERNETES_VALIDATE_VERSION" \
    --out "$out" \
    "$crds/monitoring.coreos.com_servicemonitors.yaml" \
    "$crds/monitoring.coreos.com_prometheusrules.yaml" \
    "$crds/monitoring.coreos.com_podmonitors.yaml"
fi
echo "$out"
