#!/usr/bin/env bash
# Check the Strimzi custom resources in rendered YAML files against the Strimzi API model for
# kafka.strimzi.io/v1 (tests/chart/strimzi/src/StrimziCheck.java). Exit status 1 on any problem.
#   scripts/strimzi-check.sh rendered.yaml...
# Strimzi publishes no CRD files through a package registry, but Maven Central has io.strimzi:api: the
# classes the operators read these resources into. The jars (tests/chart/strimzi/pom.xml, pinned) and the
# compiled checker are cached under the distsum cache directory on first use.
# STRIMZI_VERSION is pinned in pins.env; tests/chart/strimzi/pom.xml repeats it, checked below.
set -euo pipefail
me="strimzi-check"
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

project="$repo/tests/chart/strimzi"
cache="$cache_root/strimzi-api-$STRIMZI_VERSION"
libs="$cache/libs"

grep -q "<strimzi.version>$STRIMZI_VERSION</strimzi.version>" "$project/pom.xml" \
  || { log "STRIMZI_VERSION=$STRIMZI_VERSION does not match <strimzi.version> in $project/pom.xml"; exit 2; }
for tool in java javac mvn; do
  command -v "$tool" >/dev/null || { log "$tool not found on PATH (Debian: apt-get install maven default-jdk-headless)"; exit 2; }
done

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ ! -f "$libs/api-$STRIMZI_VERSION.jar" ]]; then
  log "fetching io.strimzi:api:$STRIMZI_VERSION and its dependencies (once; cached in $libs)"
  rm -rf "$libs.partial"
  mvn -q -B -Dstyle.color=never -f "$project/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs.partial" >&2
  mv "$libs.partial" "$libs"
fi
# The classes are cached per version of the sources, so an edited checker is rebuilt.
sources_hash="$(cd "$project/src" && find . -name '*.java' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
classes="$cache/classes-$sources_hash"
if [[ ! -d "$classes" ]]; then
  rm -rf "$classes.partial"
  mapfile -t sources < <(find "$project/src" -name '*.java')
  javac -nowarn -d "$classes.partial" -cp "$libs/*" "${sources[@]}"
  mv "$classes.partial" "$classes"
fi
flock -u 9

exec java -Dslf4j.internal.verbosity=ERROR -cp "$classes:$libs/*" StrimziCheck "$@"
