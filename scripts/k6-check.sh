#!/usr/bin/env bash
# Type-check the k6 load test against the pinned k6 type definitions, without k6 (which cannot be
# installed on CI machines): tsc --allowJs --checkJs --noEmit, strict. Exit status 0 when it types.
#   scripts/k6-check.sh [TSCONFIG]     default loadtest/tsconfig.json
# typescript and @types/k6 come from the npm registry once and are cached under the distsum cache.
# TYPESCRIPT_VERSION and K6_TYPES_VERSION (the @types/k6 release of the k6 image in loadtest/values.yaml,
# same major.minor) are pinned in pins.env.
set -euo pipefail
me="k6-check"
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
project="${1:-$repo/loadtest/tsconfig.json}"

tools="$cache_root/npm/k6-check-typescript-$TYPESCRIPT_VERSION-k6-types-$K6_TYPES_VERSION"
mkdir -p "$cache_root/npm"
exec 9>"$cache_root/npm/.lock"
flock 9
if [[ ! -x $tools/node_modules/.bin/tsc ]]; then
  # 77: a tool is missing (tests/deploy tells that from a failed check).
  command -v npm >/dev/null \
    || { log "npm is needed to fetch typescript and @types/k6 (Debian: apt-get install npm)"; exit 77; }
  log "installing typescript $TYPESCRIPT_VERSION and @types/k6 $K6_TYPES_VERSION (once; cached in $tools)"
  rm -rf "$tools.partial"
  mkdir -p "$tools.partial"
  npm install --prefix "$tools.partial" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    --loglevel=error "typescript@$TYPESCRIPT_VERSION" "@types/k6@$K6_TYPES_VERSION" >&2
  mv "$tools.partial" "$tools"
fi
flock -u 9

exec "$tools/node_modules/.bin/tsc" --project "$project" --typeRoots "$tools/node_modules/@types" --pretty false
