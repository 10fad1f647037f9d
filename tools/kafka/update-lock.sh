#!/usr/bin/env bash
# Regenerates tools/kafka/jars.sha256 from a fresh resolution of pom.xml, for
# when the Kafka (or log4j) version is bumped. A throwaway local Maven repo is
# used so every jar is downloaded again under strict checksums (-C) instead of
# trusting whatever happens to be in ~/.m2. Review the diff before committing.
set -euo pipefail
me="update-lock"
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

script_dir="$repo/tools/kafka"
pom="$script_dir/pom.xml"
lock="$script_dir/jars.sha256"

command -v mvn >/dev/null || die "mvn not found on PATH (Debian: apt-get install maven)"

pom_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
[[ $pom_version == "$KAFKA_VERSION" ]] \
  || die "pom.xml has kafka.version=$pom_version but pins.env has KAFKA_VERSION=$KAFKA_VERSION"

work="$(mktemp -d)"
on_exit rm -rf -- "$work"

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
