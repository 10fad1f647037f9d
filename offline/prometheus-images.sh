#!/usr/bin/env bash
# Build the images kube-prometheus-stack runs in the offline e2e cluster and print them, one
# `<component>=<image>` line each (stdout): the Prometheus Operator and its config reloader at the chart's
# appVersion, and Prometheus at the chart's default version, built from the Go module proxy
# (scripts/go-tool.sh, wrapper modules in offline/go/), each on a debootstrapped Debian bookworm with
# ca-certificates. Grafana, Alertmanager, node-exporter and kube-state-metrics stay off offline.
#
# Each image runs its program as ENTRYPOINT, as the upstream images do: the chart and the operator give
# the containers their arguments only.
set -euo pipefail
PACKAGES=ca-certificates
me="prometheus-images"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=scripts/docker/lib.sh
source "$repo/scripts/docker/lib.sh"
work_dir="$docker_cache/prometheus"
mkdir -p "$work_dir"

base_tag="$(debian_image minimal "$PACKAGES")"

# image COMPONENT TOOL VERSION: the image of one go-tool.sh binary, tagged by the binary's hash.
image() {
  local component=$1 tool=$2 version=$3 binary tag ctx
  binary="$("$repo/scripts/go-tool.sh" "$tool" | tail -n 1)"
  tag="distsum-e2e/$tool:$version-$(cat "${BASH_SOURCE[0]}" "$binary" | sha256sum | cut -c1-8)"
  if ! present "$tag"; then
    ctx="$(mktemp -d "$work_dir/context.XXXXXX")"
    cp "$binary" "$ctx/$tool"
    printf 'FROM %s\nCOPY %s /bin/%s\nUSER 65534:65534\nENTRYPOINT ["/bin/%s"]\n' \
      "$base_tag" "$tool" "$tool" "$tool" >"$ctx/Dockerfile"
    log "building $tag"
    docker build -t "$tag" "$ctx" >"$work_dir/build.log" 2>&1 \
      || die "docker build of $tag failed; see $work_dir/build.log"
    rm -rf -- "$ctx"
  fi
  echo "$component=$tag"
}

image operator prometheus-operator "$PROMETHEUS_OPERATOR_VERSION"
image config-reloader prometheus-config-reloader "$PROMETHEUS_OPERATOR_VERSION"
image prometheus prometheus "$PROMETHEUS_VERSION"
