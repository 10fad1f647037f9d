#!/usr/bin/env bash
# Prepare a cluster for the Helm releases: apply the namespaces with their Pod Security labels
# (k8s/kind/namespaces.yaml) and create the Grafana admin Secret with a random password.
# Idempotent, so scripts/cluster/up.sh runs it once and skaffold runs it before every deploy.
#
#   scripts/cluster/prepare.sh [--no-observability]
#
#   KUBE_CONTEXT           kubectl context; default: the one skaffold passes, else kind-distsum
#   DISTSUM_KUBECTL        the kubectl to use (default: the one on PATH)
#   --no-observability     skip the Grafana Secret (nothing reads it without kube-prometheus-stack)
set -euo pipefail

repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
context="${KUBE_CONTEXT:-${SKAFFOLD_KUBE_CONTEXT:-kind-distsum}}"
grafana_secret=grafana-admin
kubectl="${DISTSUM_KUBECTL:-kubectl}"

observability=1
case "${1:-}" in
  "") ;;
  --no-observability) observability=0 ;;
  *) echo "usage: $0 [--no-observability]" >&2; exit 2 ;;
esac

"$kubectl" --context "$context" apply -f "$repo_root/k8s/kind/namespaces.yaml"

if ((observability)); then
  if "$kubectl" --context "$context" -n monitoring get secret "$grafana_secret" >/dev/null 2>&1; then
    echo "prepare: secret monitoring/$grafana_secret exists; keeping its password" >&2
  else
    # The password travels through a pipe only: never in a file, a Helm value or a command line.
    head -c 24 /dev/urandom | base64 | tr -d '\n' \
      | "$kubectl" --context "$context" -n monitoring create secret generic "$grafana_secret" \
          --from-literal=admin-user=admin --from-file=admin-password=/dev/stdin
  fi
fi
