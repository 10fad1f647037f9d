#!/usr/bin/env bash
# `make images`: build distributed-sum/sum-svc and distributed-sum/ledger-svc from Dockerfile.sum and
# Dockerfile.ledger, each tagged IMAGE_TAG (default dev) and the project version from pyproject.toml.
#
# Works where no container registry is reachable: it starts a Docker engine if none answers
# (engine.sh) and builds from a local Debian base when the public base image cannot be pulled
# (base-image.sh). This machine's pip settings (CA bundle, index URLs, proxies) are handed to the
# build at build time only, so the Dockerfiles stay the ones a public user builds. Idempotent: with
# everything cached it only confirms the images.
#
#   IMAGE_TAG                  tag besides the version (default: dev)
#   BASE_IMAGE                 base image (default: PYTHON_BASE_IMAGE of pins.env, else the local base)
#   DISTSUM_BUILD_NETWORK      network of the build steps (default: host, which also works without
#                              a bridge)
#   DISTSUM_CACHE_DIR          cache root for logs and the local base (default: ~/.cache/distsum)
#
# Each image's SBOM (CycloneDX JSON, by the pinned syft: its Debian and Python packages) is written to
# build/sbom/<image>-<version>.cdx.json.
set -euo pipefail
me="build-images"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/docker/lib.sh
source "$repo/scripts/docker/lib.sh"
mkdir -p "$docker_cache"
cd "$repo"

tag="${IMAGE_TAG:-dev}"
version="$(sed -nE 's/^version = "([^"]+)"$/\1/p' pyproject.toml | head -n 1)"
[[ -n $version ]] || die "no version in pyproject.toml"
SECONDS=0

"$repo/scripts/docker/engine.sh" up
base="$("$repo/offline/base-image.sh" | tail -n 1)"

# The Dockerfiles use build secrets and cache mounts, so they need BuildKit: through the buildx
# plugin, or built into docker CLIs before 23.0 (like the one in Debian's docker.io).
buildkit_cli() {
  if docker buildx version >/dev/null 2>&1; then
    echo docker
    return
  fi
  local cli client
  for cli in $(type -ap docker) /usr/bin/docker; do
    client="$("$cli" version --format '{{.Client.Version}}' 2>/dev/null)" || continue
    if ((${client%%.*} < 23)); then
      echo "$cli"
      return
    fi
  done
  die "building needs BuildKit: install the docker buildx plugin"
}

# pip_setting NAME: this machine's pip setting NAME (cert, index-url, ...), environment first.
pip_setting() {
  local env_name="PIP_${1^^}"
  env_name="${env_name//-/_}"
  if [[ -n ${!env_name:-} ]]; then
    echo "${!env_name}"
    return
  fi
  local python
  python="$(command -v "$repo/.venv/bin/python" python3 | head -n 1)" || return 0
  "$python" -m pip config list 2>/dev/null | sed -nE "s/^[a-z]+\.$1='(.*)'$/\1/p" | tail -n 1
}

build_args=(--network "${DISTSUM_BUILD_NETWORK:-host}" --progress plain --build-arg "BASE_IMAGE=$base"
  --build-arg "VERSION=$version")
revision="$(git rev-parse HEAD 2>/dev/null)" || revision=unknown
if [[ $revision != unknown && -n "$(git status --porcelain -- src pyproject.toml requirements Dockerfile.*)" ]]; then
  revision+="-dirty"
fi
build_args+=(--build-arg "REVISION=$revision")

# Where PyPI sits behind a TLS-intercepting proxy, pip trusts its CA through this bundle. Without
# a pip setting, the system bundle is what pip trusts on this machine, so it is handed on too.
cert="$(pip_setting cert)"
for candidate in "$cert" "${SSL_CERT_FILE:-}" "${REQUESTS_CA_BUNDLE:-}" /etc/ssl/certs/ca-certificates.crt; do
  if [[ -n $candidate && -s $candidate ]]; then
    build_args+=(--secret "id=pip_cert,src=$candidate")
    break
  fi
done
index_url="$(pip_setting index-url)"
extra_index_url="$(pip_setting extra-index-url)"
[[ -z $index_url ]] || build_args+=(--build-arg "PIP_INDEX_URL=$index_url")
[[ -z $extra_index_url ]] || build_args+=(--build-arg "PIP_EXTRA_INDEX_URL=$extra_index_url")
for proxy in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
  [[ -z ${!proxy:-} ]] || build_args+=(--build-arg "$proxy")
done

cli="$(buildkit_cli)"
syft="$("$repo/scripts/go-tool.sh" syft)"
sbom_dir="$repo/build/sbom"
mkdir -p "$sbom_dir"
for service in sum ledger; do
  image="distributed-sum/$service-svc"
  build_log="$docker_cache/build-$service.log"
  log "building $image:$tag and :$version from Dockerfile.$service on $base (log: $build_log)"
  DOCKER_BUILDKIT=1 "$cli" build "${build_args[@]}" -f "Dockerfile.$service" -t "$image:$tag" \
    -t "$image:$version" . >"$build_log" 2>&1 || die "building $image failed; last lines of $build_log:
$(tail -n 40 "$build_log")"
  # A rebuild leaves the previous image untagged; remove those of this image, nothing else.
  docker image prune --force --filter "label=org.opencontainers.image.title=distributed-sum $service-svc" \
    >/dev/null
  log "$image:$tag $(docker image inspect --format '{{.Id}} {{.Size}}' "$image:$tag" \
    | awk '{ printf "%s, %.0f MB", substr($1, 8, 12), $2 / 1e6 }')"
  # Packages only: a list of every file would bury them (SYFT_FILE_METADATA_SELECTION).
  sbom="$sbom_dir/$service-svc-$version.cdx.json"
  SYFT_FILE_METADATA_SELECTION=none SYFT_CHECK_FOR_APP_UPDATE=false \
    "$syft" scan --quiet "docker:$image:$version" --output "cyclonedx-json=$sbom" \
    || die "syft could not write the SBOM of $image:$version"
  log "SBOM of $image:$version: ${sbom#"$repo"/}"
done
log "done in ${SECONDS}s"
