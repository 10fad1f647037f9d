#!/usr/bin/env bash
# Print the path of skaffold's JSON schema for the apiVersion of skaffold.yaml, fetching it once into the
# cache. The schema ships inside skaffold's Go module (docs-v2/content/en/schemas/<version>.json), so it
# comes from the Go module proxy like any Go dependency; tests/deploy validates skaffold.yaml against it.
#
#   DISTSUM_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-~/.cache}/distsum)
set -euo pipefail
me="fetch-skaffold-schema"
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# skaffold v2.19.0 introduced config version v4beta14, the one skaffold.yaml uses.
MODULE=github.com/GoogleContainerTools/skaffold/v2
MODULE_VERSION=v2.19.0
MODULE_SUM=h1:qH0CVdT2qAT3PNCfbBXb8Rhb6H5tuWEyQOwK9VaePsE=
SCHEMA_VERSION=v4beta14
SCHEMA_SHA256=7c29a621995d2c6143d3c423c8e3d3dfb25703a49fd1cf77644b54168414b39e

schema="$cache_root/skaffold-schema-$MODULE_VERSION/$SCHEMA_VERSION.json"

verified() { [[ -f $1 ]] && sha256sum --status -c <<<"$SCHEMA_SHA256  $1"; }

if ! verified "$schema"; then
  command -v go >/dev/null || die "Go is needed to fetch skaffold's schema from the Go module proxy"
  log "fetching $MODULE@$MODULE_VERSION for its $SCHEMA_VERSION schema (once; cached in ${schema%/*})"
  work="$(mktemp -d)"
  on_exit rm -rf "$work"
  # A private module cache keeps the 45 MB module out of the user's. The checksum database does not
  # answer for this module here, so it is off and the module's hash is checked against MODULE_SUM instead.
  # Run outside any Go module so that no go.mod is consulted or touched.
  info="$(cd "$work" && GOMODCACHE="$work/mod" GOFLAGS=-modcacherw GOSUMDB=off \
    go mod download -json "$MODULE@$MODULE_VERSION")" || die "go mod download failed: $info"
  sum="$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")"
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")"
  [[ $sum == "$MODULE_SUM" ]] || die "$MODULE@$MODULE_VERSION has hash '$sum', expected $MODULE_SUM"
  mkdir -p "${schema%/*}"
  cp "$dir/docs-v2/content/en/schemas/$SCHEMA_VERSION.json" "$schema.tmp"
  verified "$schema.tmp" || die "schema $SCHEMA_VERSION.json does not match SCHEMA_SHA256"
  mv "$schema.tmp" "$schema"
fi
echo "$schema"
