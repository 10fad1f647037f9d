#!/usr/bin/env bash
# Print (last line of stdout) the base image to build the service images from.
#
# That is BASE_IMAGE (default python:3.11-slim-bookworm) when the engine has it or can pull it.
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
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

base="${BASE_IMAGE:-python:3.11-slim-bookworm}"
local_tag="${LOCAL_BASE_IMAGE:-distsum-local/python:3.11-bookworm}"
suite=bookworm
packages=python3,python3-venv,ca-certificates
# Bump when the recipe below changes, so a cached rootfs made by an older recipe is not reused.
recipe=1
rootfs_tar="$docker_cache/base/debian-$suite-python3-r$recipe.tar.gz"

present() { docker image inspect "$1" >/dev/null 2>&1; }

# Where a step failed, leave no mounts or half-built trees behind.
work=""
cleanup() {
  [[ -n $work ]] || return 0
  mountpoint -q "$work/rootfs/proc" 2>/dev/null && umount "$work/rootfs/proc"
  rm -rf "$work"
}
trap cleanup EXIT

in_root() { chroot "$work/rootfs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

make_rootfs() {
  [[ $(id -u) == 0 ]] || die "making the local base needs root (debootstrap, chroot)"
  local needs=()
  command -v debootstrap >/dev/null || needs+=(debootstrap)
  [[ -s /usr/share/keyrings/debian-archive-keyring.gpg ]] || needs+=(debian-archive-keyring)
  ((${#needs[@]} == 0)) || apt_install "${needs[@]}"

  local sources mirror
  sources="$(debian_sources | awk -v s="$suite" '$2 == s || $2 == s "-updates" || $2 == s "-security"')"
  mirror="$(awk -v s="$suite" '$2 == s { print $1; exit }' <<<"$sources")"
  [[ -n $mirror ]] || die "no '$suite' apt source in /etc/apt/sources.list{,.d}: cannot debootstrap"

  mkdir -p "$docker_cache/base"
  work="$(mktemp -d "$docker_cache/base/build.XXXXXX")"
  local build_log="$docker_cache/base/debootstrap.log"
  log "debootstrap $suite ($packages) from this machine's apt mirror (log: $build_log)"
  debootstrap --variant=minbase --components=main --include="$packages" "$suite" "$work/rootfs" "$mirror" \
    >"$build_log" 2>&1 || die "debootstrap failed; last lines of $build_log:
$(tail -n 20 "$build_log")"

  # debootstrap installs the point release; -updates and -security carry the fixes since then.
  awk '{ print "deb", $1, $2, "main" }' <<<"$sources" >"$work/rootfs/etc/apt/sources.list"
  local valid_until=""
  eval "$(apt-config shell valid_until Acquire::Check-Valid-Until)"
  local apt=(apt-get -q -y ${valid_until:+-o "Acquire::Check-Valid-Until=$valid_until"})
  mount -t proc proc "$work/rootfs/proc"
  log "applying $suite updates and security fixes"
  { in_root "${apt[@]}" update && in_root "${apt[@]}" upgrade && in_root apt-get clean; } >>"$build_log" 2>&1 \
    || die "apt-get upgrade in the new rootfs failed; see $build_log"
  umount "$work/rootfs/proc"

  # Like the slim images: no package lists, caches, logs, docs or man pages; copyright files stay.
  (
    cd "$work/rootfs"
    rm -rf var/lib/apt/lists/* var/cache/apt/* var/cache/debconf/*-old var/log/* tmp/* \
      usr/share/man/* usr/share/info/* usr/share/locale/* usr/share/lintian
    find usr/share/doc -depth \( -type f ! -name copyright -o -type l \) -delete
    find usr/share/doc -depth -mindepth 1 -type d -empty -delete
    # The engine provides these at run time; the build machine's copies do not belong in an image.
    : >etc/resolv.conf
    : >etc/hostname
  )
  log "packing the rootfs into $rootfs_tar"
  tar --numeric-owner --xattrs -C "$work/rootfs" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -cf - . | gzip -1 >"$rootfs_tar.partial"
  mv "$rootfs_tar.partial" "$rootfs_tar"
}

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
[[ -s $rootfs_tar ]] || make_rootfs
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.description=\"Local Debian $suite with python3, made by $0\"" \
  "$rootfs_tar" "$local_tag" >/dev/null
log "imported $local_tag ($(docker image inspect --format '{{.Size}}' "$local_tag" | numfmt --to=iec))"
echo "$local_tag"
