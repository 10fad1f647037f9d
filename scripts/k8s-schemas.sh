#!/usr/bin/env bash
# Build (once) the offline JSON schemas kubeconform validates the Helm chart against; print their directory.
#   scripts/k8s-schemas.sh        -> .../k8s-schemas/k8s-<KUBE_SCHEMA_VERSION>-prometheus-operator-<PROMETHEUS_OPERATOR_VERSION>-cert-manager-<CERT_MANAGER_VERSION>-<converter hash>
#   scripts/k8s-schemas.sh --kube-version   -> KUBE_SCHEMA_VERSION
# The versions are pinned in pins.env: the Kubernetes schemas (the PyPI package kubernetes-validate, in
# requirements/dev.lock too), the Go module whose example/prometheus-operator-crd/ holds the
# monitoring.coreos.com CRDs, and cert-manager's, whose deploy/crds/ holds the cert-manager.io ones.
set -euo pipefail
me="k8s-schemas.sh"
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
KUBE_VERSION=$KUBE_SCHEMA_VERSION

if [[ "${1:-}" == "--kube-version" ]]; then
  echo "$KUBE_VERSION"
  exit 0
fi

# A changed converter writes a new directory instead of reusing one in the old layout.
converter="$(sha256sum "$repo/scripts/k8s_schemas.py" | cut -c1-12)"
out="$cache_root/k8s-schemas/k8s-$KUBE_VERSION-prometheus-operator-$PROMETHEUS_OPERATOR_VERSION-cert-manager-$CERT_MANAGER_VERSION-$converter"
python="${PYTHON:-$repo/.venv/bin/python}"

mkdir -p "$(dirname "$out")"
exec 9>"$(dirname "$out")/.lock"
flock 9
if [[ ! -d "$out" ]]; then
  command -v go >/dev/null || { echo "k8s-schemas.sh: Go is needed to fetch the CRDs" >&2; exit 1; }
  echo "k8s-schemas.sh: building schemas for Kubernetes $KUBE_VERSION (once; cached in $out)" >&2
  module_dir() {
    (cd "$cache_root" && GOFLAGS=-mod=mod go mod download -json "$1") \
      | "$python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
  }
  crds="$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")/example/prometheus-operator-crd"
  cert_manager_crds="$(module_dir "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION")/deploy/crds"
  "$python" "$repo/scripts/k8s_schemas.py" \
    --kube-version "$KUBE_VERSION" \
    --kubernetes-validate-version "$KUBERNETES_VALIDATE_VERSION" \
    --out "$out" \
    "$crds/monitoring.coreos.com_servicemonitors.yaml" \
    "$crds/monitoring.coreos.com_prometheusrules.yaml" \
    "$crds/monitoring.coreos.com_podmonitors.yaml" \
    "$cert_manager_crds/cert-manager.io_certificates.yaml"
fi
echo "$out"
