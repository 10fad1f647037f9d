#!/usr/bin/env bash
# Print (last line of stdout) the base image to build the service images from.
#
# That is BASE_IMAGE (default PYTHON_BASE_IMAGE of pins.env) when the engine has it or can pull it.
# Otherwise a local stand-in: Debian bookworm minbase + python3 (3.11) + python3-venv +
# ca-certificates, made with debootstrap from this machine's own apt mirror and imported as
# LOCAL_BASE_IMAGE (default distsum-local/python:3.11-bookworm). Its rootfs tarball is cached, so
# later runs only import it (or do nothing while the image exists).
#
#   DISTSUM_CACHE_DIR       cache root (default: ${XDG_CACHE_HOME:-~/.cache}/distsum)
#   DISTSUM_REBUILD_BASE=1  debootstrap the local base again (to pick up new Debian security fixes)
set -euo pipefail
me="base-image"
# shellcheck source=scripts/docker/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../scripts/docker/lib.sh"
mkdir -p "$docker_cache"

base="${BASE_IMAGE:-$PYTHON_BASE_IMAGE}"
local_tag="${LOCAL_BASE_IMAGE:-distsum-local/python:3.11-bookworm}"
suite=bookworm
packages=python3,python3-venv,ca-certificates
# Bump when the recipe below changes, so a cached rootfs made by an older recipe is not reused.
recipe=1
rootfs_tar="$docker_cache/base/debian-$suite-python3-r$recipe.tar.gz"

if present "$base"; then
  log "using $base"
  echo "$base"
  exit 0
fi
if docker pull --quiet "$base" >/dev/null 2>&1; then
  log "pulled $base"
  echo "$base"
  exit 0
fi
log "$base is not here and cannot be pulled; using the local Debian base $local_tag instead"

if [[ ${DISTSUM_REBUILD_BASE:-0} == 1 ]]; then
  rm -f "$rootfs_tar"
elif present "$local_tag"; then
  echo "$local_tag"
  exit 0
fi
[[ -s $rootfs_tar ]] || make_rootfs_tar "$suite" "$packages" "$rootfs_tar"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.description=\"Local Debian $suite with python3, made by $0\"" \
  "$rootfs_tar" "$local_tag" >/dev/null
log "imported $local_tag ($(docker image inspect --format '{{.Size}}' "$local_tag" | numfmt --to=iec))"
echo "$local_tag"
