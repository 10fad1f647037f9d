#!/usr/bin/env bash
# Fetches the Apache Kafka broker jars (tools/kafka/pom.xml) from Maven Central
# with mvn into a per-user cache, verifies them against tools/kafka/jars.sha256
# and prints the libs directory as the last line of stdout. Progress goes to
# stderr. Idempotent: a cache that already verifies is reused without mvn.
#
#   DISTSUM_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-~/.cache}/distsum)
set -euo pipefail
me="fetch-kafka"
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

script_dir="$repo/tools/kafka"
pom="$script_dir/pom.xml"
lock="$script_dir/jars.sha256"
cache="$cache_root/kafka-$KAFKA_VERSION"
libs="$cache/libs"

[[ -s $lock ]] || die "lock file $lock is missing or empty (run tools/kafka/update-lock.sh)"
grep -q "<kafka.version>$KAFKA_VERSION</kafka.version>" "$pom" \
  || die "KAFKA_VERSION=$KAFKA_VERSION in pins.env does not match <kafka.version> in $pom"

# verify DIR: DIR holds exactly the jars named in the lock file, each with the
# locked hash. Reports every problem on stderr; returns non-zero on any.
verify() {
  local dir=$1 missing extra bad
  [[ -d $dir ]] || { log "$dir does not exist"; return 1; }
  missing="$(comm -23 <(awk '{print $2}' "$lock" | LC_ALL=C sort) \
    <(cd "$dir" && find . -maxdepth 1 -type f -name '*.jar' -printf '%f\n' | LC_ALL=C sort))"
  extra="$(comm -13 <(awk '{print $2}' "$lock" | LC_ALL=C sort) \
    <(cd "$dir" && find . -maxdepth 1 -type f -name '*.jar' -printf '%f\n' | LC_ALL=C sort))"
  [[ -z $missing ]] || log "missing jar(s) in $dir: $(paste -sd' ' <<<"$missing")"
  [[ -z $extra ]] || log "jar(s) in $dir not in $lock: $(paste -sd' ' <<<"$extra")"
  [[ -z $missing && -z $extra ]] || return 1
  # sha256sum --quiet prints only the failures ("NAME: FAILED"), on stdout.
  if ! bad="$(cd "$dir" && LC_ALL=C sha256sum --check --quiet --strict "$lock" 2>&1)"; then
    log "sha256 mismatch in $dir:"
    printf '  %s\n' "${bad//$'\n'/$'\n'  }" >&2
    return 1
  fi
}

if [[ -d $libs ]] && verify "$libs" 2>/dev/null; then
  echo "$libs"
  exit 0
fi

command -v mvn >/dev/null || die "mvn not found on PATH (Debian: apt-get install maven)"
mkdir -p "$cache"

# Serialise concurrent fetches (parallel test workers, make run + pytest).
exec 9>"$cache/.lock"
flock 9
if [[ -d $libs ]]; then
  # Another process may have finished the fetch while we waited for the lock.
  if verify "$libs"; then
    echo "$libs"
    exit 0
  fi
  log "cached $libs does not verify; fetching again"
fi

tmp="$(mktemp -d "$cache/libs.tmp.XXXXXX")"
chmod u=rwx,go=rx "$tmp"  # mktemp -d makes it 0700
on_exit rm -rf -- "$tmp"

log "resolving Apache Kafka $KAFKA_VERSION jars with mvn into $cache"
# -C: fail on a checksum mismatch while downloading. mvn's stdout goes to
# stderr so that stdout carries nothing but the libs path.
mvn -B -q -C -f "$pom" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" >&2 \
  || die "mvn dependency:copy-dependencies failed for $pom"

verify "$tmp" || die "downloaded jars do not match $lock (if Kafka was bumped on purpose, run tools/kafka/update-lock.sh)"

if [[ -e $libs ]]; then
  # rename(2) cannot replace a non-empty directory: move the stale one aside first.
  stale="$(mktemp -d "$cache/libs.stale.XXXXXX")"
  mv -T -- "$libs" "$stale/libs"
  mv -T -- "$tmp" "$libs"
  rm -rf -- "$stale"
else
  mv -T -- "$tmp" "$libs"
fi
log "$(find "$libs" -maxdepth 1 -name '*.jar' | wc -l) jars verified in $libs"
echo "$libs"
