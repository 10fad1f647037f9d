# shellcheck shell=bash
# Shared helpers for scripts/docker/*.sh (sourced, not run), on top of scripts/lib.sh.
# Each script sets `me` (its name for messages) before sourcing this file.

# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck disable=SC2034 # used by the scripts that source this file, which create it when they write
docker_cache="$cache_root/docker"

# debian_sources: "URI SUITE" for every enabled `deb` source of this machine's apt configuration,
# from one-line (*.list) and deb822 (*.sources) files, so no mirror is ever written into the project.
debian_sources() {
  local files=()
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  shopt -s nullglob
  files+=(/etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  shopt -u nullglob
  local file
  for file in "${files[@]}"; do
    case $file in
      *.list)
        # deb [options] URI SUITE COMPONENT...
        sed -E -e 's/#.*//' -e 's/\[[^]]*\]//' "$file" | awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
        ;;
      *.sources)
        awk '
          function flush(   nu, ns, us, ss, i, j) {
            if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no") {
              nu = split(uris, us, " "); ns = split(suites, ss, " ")
              for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print us[i], ss[j]
            }
            types = uris = suites = ""; enabled = "yes"
          }
          BEGIN { enabled = "yes" }
          /^[[:space:]]*#/ { next }
          /^[[:space:]]*$/ { flush(); next }
          {
            key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
            if (key == "types") types = $0
            else if (key == "uris") uris = $0
            else if (key == "suites") suites = $0
            else if (key == "enabled") enabled = $0
          }
          END { flush() }
        ' "$file"
        ;;
    esac
  done
}

# The capability bounding set of this process tree lacks CAP_SYS_RESOURCE (bit 24): true in some
# sandboxes (e.g. Firecracker VMs whose init drops it), never on an ordinary host.
lacks_sys_resource() {
  local bnd
  bnd="$(awk '$1 == "CapBnd:" { print $2 }' /proc/self/status)"
  [[ -n $bnd ]] && ((((16#$bnd) >> 24 & 1) == 0))
}

present() { docker image inspect "$1" >/dev/null 2>&1; }

# Where a step of make_rootfs_tar failed, leave no mounts or half-built trees behind.
work=""
cleanup() {
  [[ -n $work ]] || return 0
  mountpoint -q "$work/rootfs/proc" 2>/dev/null && umount "$work/rootfs/proc"
  rm -rf "$work"
}

in_root() { chroot "$work/rootfs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

# make_rootfs_tar SUITE PACKAGES TARBALL: a Debian SUITE minbase root filesystem with the comma-separated
# PACKAGES, debootstrapped from this machine's own apt mirror, with the suite's updates and security
# fixes applied and slimmed like the slim images, packed into TARBALL (gzip) for `docker import`.
make_rootfs_tar() {
  local suite=$1 packages=$2 rootfs_tar=$3
  [[ $(id -u) == 0 ]] || die "making a local base needs root (debootstrap, chroot)"
  local needs=()
  command -v debootstrap >/dev/null || needs+=(debootstrap)
  [[ -s /usr/share/keyrings/debian-archive-keyring.gpg ]] || needs+=(debian-archive-keyring)
  ((${#needs[@]} == 0)) || apt_install "${needs[@]}"

  local sources mirror
  sources="$(debian_sources | awk -v s="$suite" '$2 == s || $2 == s "-updates" || $2 == s "-security"')"
  mirror="$(awk -v s="$suite" '$2 == s { print $1; exit }' <<<"$sources")"
  [[ -n $mirror ]] || die "no '$suite' apt source in /etc/apt/sources.list{,.d}: cannot debootstrap"

  mkdir -p "$(dirname -- "$rootfs_tar")"
  work="$(mktemp -d "$(dirname -- "$rootfs_tar")/build.XXXXXX")"
  on_exit cleanup
  local build_log="${rootfs_tar%.tar.gz}.log"
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
    cd "$work/rootfs" || exit 1
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
  cleanup
  work=""
}

# debian_image NAME PACKAGES [DOCKER IMPORT OPTION...]: print the tag of distsum-e2e/debian-NAME, a Debian
# bookworm minbase with the comma-separated PACKAGES (make_rootfs_tar), imported once; the tag names the
# package list's hash, so another list makes another image.
debian_image() {
  local name=$1 packages=$2 suite=bookworm key tag rootfs_tar
  shift 2
  key="$(sha256sum <<<"$packages" | cut -c1-8)"
  tag="distsum-e2e/debian-$name:$suite-$key"
  if ! present "$tag"; then
    rootfs_tar="$docker_cache/debian/$suite-$name-$key.tar.gz"
    [[ -s $rootfs_tar ]] || make_rootfs_tar "$suite" "$packages" "$rootfs_tar"
    docker import "$@" "$rootfs_tar" "$tag" >/dev/null
  fi
  echo "$tag"
}
