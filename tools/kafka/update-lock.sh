#!/usr/bin/env bash
# Regenerates tools/kafka/jars.sha256 from a fresh resolution of pom.xml, for
# when the Kafka (or log4j) version is bumped. A throwaway local Maven repo is
# used so every jar is downloaded again under strict checksums (-C) instead of
# trusting whatever happens to be in ~/.m2. Review the diff before committing.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
pom="$script_dir/pom.xml"
lock="$script_dir/jars.sha256"

log() { printf 'update-lock: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v mvn >/dev/null || die "mvn not found on PATH (Debian: apt-get install maven)"

pom_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
script_version="$(sed -n 's/^KAFKA_VERSION=//p' "$script_dir/fetch-kafka.sh")"
[[ $pom_version == "$script_version" ]] \
  || die "pom.xml has kafka.version=$pom_version but fetch-kafka.sh has KAFKA_VERSION=$script_version"

work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT

log "resolving Apache Kafka $pom_version with a fresh local Maven repository (downloads ~50 MB)"
mvn -B -q -C -f "$pom" -Dmaven.repo.local="$work/m2" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$work/libs" >&2 \
  || die "mvn dependency:copy-dependencies failed for $pom"

(cd "$work/libs" && sha256sum -- *.jar) | LC_ALL=C sort -k2 >"$work/jars.sha256"
[[ -s $work/jars.sha256 ]] || die "mvn resolved no jars"

if [[ -f $lock ]] && cmp -s "$lock" "$work/jars.sha256"; then
  log "$lock is already up to date ($(wc -l <"$lock") jars)"
else
  if [[ -f $lock ]]; then
    diff -u --label old --label new "$lock" "$work/jars.sha256" >&2 || true
  fi
  mv -- "$work/jars.sha256" "$lock"
  log "wrote $lock ($(wc -l <"$lock") jars, $(du -sh "$work/libs" | cut -f1))"
fi
