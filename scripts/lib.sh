# shellcheck shell=bash
# The prelude of every script (sourced, not run). Sourcing it only defines things: the repository root,
# the pins, the cache root, log/die, on_exit and a few helpers; nothing is created, installed or trapped.
# A script sets `me` (its name in messages) before sourcing this file.

repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
# Every version the project pins, in one file.
# shellcheck source=pins.env
source "$repo/pins.env"

# Where everything fetched or built is cached, outside the repository (absolute: scripts print paths in it).
cache_root="${DISTSUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/distsum}"
[[ $cache_root == /* ]] || cache_root="$PWD/$cache_root"

log() { printf '%s: %s\n' "${me:-${0##*/}}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# on_exit COMMAND [ARG...]: run the command (its arguments as they are now) when the script exits, before
# the ones registered earlier. One EXIT trap serves them all, so a later clean-up never silently replaces
# an earlier one.
_on_exit=()
on_exit() {
  local command
  printf -v command '%q ' "$@"
  _on_exit=("$command" "${_on_exit[@]}")
  trap _run_on_exit EXIT
}
_run_on_exit() {
  local command
  for command in "${_on_exit[@]}"; do eval "$command" || true; done
}

# apt_install PACKAGE...: install Debian packages, refreshing the package lists once if they are stale.
# The output goes to $cache_root/apt.log.
apt_install() {
  [[ $(id -u) == 0 ]] || die "need root to apt-get install $* (or install it yourself)"
  command -v apt-get >/dev/null || die "no apt-get on this machine: install $* yourself"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0)
  local apt_log="$cache_root/apt.log"
  mkdir -p "$cache_root"
  log "installing $* with apt-get"
  if ! "${apt[@]}" install --no-install-recommends "$@" >"$apt_log" 2>&1; then
    "${apt[@]}" update >>"$apt_log" 2>&1 || die "apt-get update failed; see $apt_log"
    "${apt[@]}" install --no-install-recommends "$@" >>"$apt_log" 2>&1 \
      || die "apt-get install $* failed; see $apt_log"
  fi
}

# go_module_dir MODULE@VERSION: fetch a Go module through the module proxy (verified against the Go
# checksum database) into the module cache and print the directory of its source.
go_module_dir() {
  local dir
  dir="$(go mod download -json "$1" | sed -nE 's/^\t"Dir": "(.*)",?$/\1/p')"
  [[ -n $dir && -d $dir ]] || die "cannot download the Go module $1"
  echo "$dir"
}

# install_pinned_chart HELM CONTEXT PREFIX [HELM ARGUMENT...]: `helm upgrade --install` the upstream chart
# pinned as PREFIX_* in pins.env, from the package scripts/cluster/chart-package.sh keeps (the one
# tests/deploy renders), with its values k8s/observability/<chart>.yaml and the further arguments.
# make cluster-up and make e2e install the stack this one way.
install_pinned_chart() {
  local helm=$1 context=$2 prefix=$3 package
  shift 3
  local release_var="${prefix}_RELEASE" chart_var="${prefix}_CHART" version_var="${prefix}_VERSION"
  local namespace_var="${prefix}_NAMESPACE"
  package="$("$repo/scripts/cluster/chart-package.sh" "$prefix")"
  log "installing ${!chart_var} ${!version_var} as '${!release_var}' in namespace ${!namespace_var}"
  "$helm" upgrade --install "${!release_var}" "$package" --kube-context "$context" \
    --namespace "${!namespace_var}" --values "$repo/k8s/observability/${!chart_var}.yaml" "$@"
}
