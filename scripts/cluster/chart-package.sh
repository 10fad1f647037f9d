#!/usr/bin/env bash
# Print the path of the pinned package (.tgz) of one upstream chart, fetching it into the cache once.
#
#   scripts/cluster/chart-package.sh PREFIX     PREFIX of its pins in pins.env: STRIMZI, KPS, LOKI, TEMPO, ALLOY
#
# The package <CHART>-<VERSION>.tgz comes from the first of:
#   1. the cache ($cache_root/charts/);
#   2. a directory of upstream test inputs, DISTSUM_UPSTREAM_DIR (default: ../shared/upstream beside the
#      repository), checked against the SHA256SUMS file there before it is cached;
#   3. the chart repository pinned in pins.env (helm pull --version, needs internet).
# make cluster-up and the tests that render the upstream charts use the same package, so what is tested
# is what gets installed.
set -euo pipefail
me="chart-package.sh"
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib.sh"

prefix="${1:-}"
[[ $prefix =~ ^(STRIMZI|KPS|LOKI|TEMPO|ALLOY)$ ]] || die "usage: $0 STRIMZI|KPS|LOKI|TEMPO|ALLOY"
chart_var="${prefix}_CHART" version_var="${prefix}_VERSION" repo_var="${prefix}_REPO"
chart="${!chart_var}" version="${!version_var}" chart_repo="${!repo_var}"
package="$chart-$version.tgz"
cached="$cache_root/charts/$package"
inputs="${DISTSUM_UPSTREAM_DIR:-$repo/../shared/upstream}"

if [[ -f $cached ]]; then
  echo "$cached"
  exit 0
fi
mkdir -p "$cache_root/charts"
staging="$(mktemp -d "$cache_root/charts/.fetch.XXXXXX")"
on_exit rm -rf "$staging"

if [[ -f $inputs/$package ]]; then
  [[ -f $inputs/SHA256SUMS ]] || die "$inputs has $package but no SHA256SUMS to check it against"
  grep -E "^[0-9a-f]{64}  $package\$" "$inputs/SHA256SUMS" >"$staging/SHA256SUMS" \
    || die "$inputs/SHA256SUMS lists no checksum for $package"
  cp "$inputs/$package" "$staging/"
  (cd "$staging" && sha256sum --quiet --check SHA256SUMS) \
    || die "$inputs/$package does not match its checksum in $inputs/SHA256SUMS"
  log "$package from $inputs (checksum verified), cached in $cache_root/charts"
else
  helm="${DISTSUM_HELM:-$("$repo/scripts/go-tool.sh" helm)}"
  log "fetching $chart $version from $chart_repo"
  "$helm" pull "$chart" --repo "$chart_repo" --version "$version" --destination "$staging" >&2 \
    || die "cannot fetch $chart $version: no copy in $inputs (set DISTSUM_UPSTREAM_DIR to a directory of
chart packages with a SHA256SUMS file) and $chart_repo did not serve it"
  [[ -f $staging/$package ]] || die "helm pull did not write $package"
fi
mv "$staging/$package" "$cached"
echo "$cached"
