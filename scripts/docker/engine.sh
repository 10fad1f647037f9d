#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`.
#
#   scripts/docker/engine.sh [up]   use the running engine, or start dockerd in the background
#                                   (installing Debian's docker.io first if dockerd is missing)
#   scripts/docker/engine.sh down   stop the dockerd this script started (no other)
#   scripts/docker/engine.sh check  succeed if `up` can work here; otherwise say why and exit 3
#
# Starting an engine needs root. dockerd keeps its default socket and data root so every docker
# client finds it; its log and pidfile live in the cache:
#   DISTSUM_CACHE_DIR                  cache root (default: ${XDG_CACHE_HOME:-~/.cache}/distsum)
#   DISTSUM_DOCKER_STORAGE_DRIVER      force a storage driver (default: overlay2, else fuse-overlayfs, else vfs)
#
# Where the capability bounding set lacks CAP_SYS_RESOURCE, dockerd gets a runc wrapper as its default
# runtime before it starts (see configure_runtime), so privileged containers (kind nodes) can run.
set -euo pipefail
me=engine
# shellcheck source=scripts/docker/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
mkdir -p "$docker_cache"

pidfile="$docker_cache/dockerd.pid"
daemon_log="$docker_cache/dockerd.log"
data_root=/var/lib/docker
start_deadline=90

engine_answers() { docker info >/dev/null 2>&1; }

our_dockerd_pid() {
  local pid
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] \
    && echo "$pid"
}

# overlay_works: can the kernel mount overlayfs on the filesystem of the data root? It cannot when
# that filesystem is itself an overlay (Docker in a container), where dockerd needs another driver.
overlay_works() {
  mkdir -p "$data_root"
  local probe
  probe="$(mktemp -d "$data_root/.overlay-probe.XXXXXX")"
  mkdir "$probe"/{lower,upper,work,merged}
  local ok=1
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
    "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    ok=0
  fi
  rm -rf "$probe"
  return "$ok"
}

storage_args() {
  if [[ -n ${DISTSUM_DOCKER_STORAGE_DRIVER:-} ]]; then
    echo "--storage-driver=$DISTSUM_DOCKER_STORAGE_DRIVER"
  elif overlay_works; then
    echo "--storage-driver=overlay2"
  elif [[ -c /dev/fuse ]]; then
    command -v fuse-overlayfs >/dev/null || apt_install fuse-overlayfs
    echo "--storage-driver=fuse-overlayfs"
  else
    log "warning: neither overlayfs nor FUSE works here; using the slow vfs storage driver"
    echo "--storage-driver=vfs"
  fi
}

# Without working iptables (no netfilter in the kernel) dockerd refuses to create its bridge. Our
# builds and tests use the host network, so an engine without a bridge still serves them.
network_args() {
  if iptables -t nat -n -L >/dev/null 2>&1; then
    return
  fi
  log "warning: iptables does not work here; starting dockerd without a bridge (use --network host)"
  echo "--iptables=false --bridge=none"
}

# Host workaround, applied only where lacks_sys_resource: `docker run --privileged` asks runc for every
# capability and fails with "unable to apply caps: operation not permitted" when the bounding set lacks
# one. kind runs its nodes privileged, so dockerd gets runc-nosysres (offline/runc-nosysres) as its default
# runtime: it drops CAP_SYS_RESOURCE from each container's OCI spec and runs the real runc. Merged
# into /etc/docker/daemon.json, which dockerd reads when it starts.
nosysres_runtime=/usr/local/bin/distsum-runc-nosysres
configure_runtime() {
  lacks_sys_resource || return 0
  command -v jq >/dev/null || apt_install jq
  install -m 0755 "$repo/offline/runc-nosysres" "$nosysres_runtime"
  local config=/etc/docker/daemon.json merged
  mkdir -p /etc/docker
  [[ -s $config ]] || echo '{}' >"$config"
  merged="$(jq --arg path "$nosysres_runtime" \
    '.runtimes["runc-nosysres"] = {path: $path} | .["default-runtime"] = "runc-nosysres"' "$config")" \
    || die "cannot merge the runc wrapper into $config"
  [[ $merged == "$(jq . "$config")" ]] && return 0
  log "this machine lacks CAP_SYS_RESOURCE: registering $nosysres_runtime as dockerd's default runtime in $config"
  printf '%s\n' "$merged" >"$config"
}

start_dockerd() {
  local args
  configure_runtime
  # shellcheck disable=SC2207 # the helpers print whitespace-separated flags
  args=($(storage_args) $(network_args))
  log "starting dockerd ${args[*]} (log: $daemon_log)"
  printf '\n--- %s dockerd %s\n' "$(date -u +%FT%TZ)" "${args[*]}" >>"$daemon_log"
  # setsid detaches the daemon from make's process group, so it outlives this script. A script has
  # no job control, so the background child is no group leader and setsid execs without forking:
  # $! is dockerd itself.
  # It must not inherit the starters' lock (fd 9) either, or it would hold it for its whole life.
  setsid dockerd --pidfile "$pidfile" "${args[@]}" >>"$daemon_log" 2>&1 </dev/null 9>&- &
  daemon_pid=$!
}

# wait_for_engine PID: until the engine answers, or PID exits, or the deadline passes.
wait_for_engine() {
  local pid=$1 deadline=$((SECONDS + start_deadline))
  until engine_answers; do
    if ((SECONDS >= deadline)); then
      die "dockerd did not answer within ${start_deadline}s; last lines of $daemon_log:
$(tail -n 20 "$daemon_log")"
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      die "dockerd exited while starting; last lines of $daemon_log:
$(tail -n 20 "$daemon_log")"
    fi
    sleep 0.5
  done
}

up() {
  if engine_answers; then
    log "using the running Docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
    return
  fi
  [[ -z ${DOCKER_HOST:-} ]] || die "DOCKER_HOST=$DOCKER_HOST does not answer; unset it to start a local engine"
  [[ $(id -u) == 0 ]] || die "no Docker engine answers and starting one needs root: start Docker yourself"
  # One starter at a time: parallel make targets must not race to start two daemons.
  exec 9>"$docker_cache/engine.lock"
  flock 9
  if ! engine_answers; then
    command -v dockerd >/dev/null || apt_install docker.io
    command -v docker >/dev/null || die "docker.io is installed but there is no docker CLI on PATH"
    SECONDS=0
    daemon_pid="$(our_dockerd_pid)" || start_dockerd
    wait_for_engine "$daemon_pid"
    log "dockerd is up after ${SECONDS}s (pid $(our_dockerd_pid)," \
      "storage driver $(docker info --format '{{.Driver}}'))"
  fi
  exec 9>&-
}

down() {
  local pid
  if ! pid="$(our_dockerd_pid)"; then
    log "no dockerd started by this script is running"
    return
  fi
  log "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || die "dockerd (pid $pid) did not stop within 30s"
    sleep 0.2
  done
}

# check: whether `up` can have an engine here, without starting anything. `make test` runs the container
# tests only where it can, and says why not elsewhere.
check() {
  engine_answers && return
  [[ -z ${DOCKER_HOST:-} ]] || { log "DOCKER_HOST=$DOCKER_HOST does not answer"; exit 3; }
  [[ $(id -u) == 0 ]] || { log "no Docker engine answers and starting one needs root"; exit 3; }
  command -v dockerd >/dev/null || command -v apt-get >/dev/null \
    || { log "no Docker engine, no dockerd and no apt-get to install one"; exit 3; }
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  check) check ;;
  *) die "usage: $0 [up|down|check]" ;;
esac
