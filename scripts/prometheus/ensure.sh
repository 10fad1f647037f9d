#!/usr/bin/env bash
# Make Debian's `prometheus` and `promtool` available for the PromQL tests, installing the package on
# first use. Prints the directory that holds both binaries.
# Exit 77 (the test skips, printing the reason) when they are missing and cannot be installed here.
# The package's own service is never left running: the tests start Prometheus themselves on a free port,
# and a system-wide Prometheus on :9090 would be an unasked-for daemon on a developer's machine.
set -euo pipefail
me="ensure.sh"
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib.sh"

have_binaries() { command -v prometheus >/dev/null && command -v promtool >/dev/null; }

if ! have_binaries; then
  [[ "$(id -u)" == 0 ]] || { log "prometheus/promtool missing and not root: cannot apt-get install prometheus"; exit 77; }
  command -v apt-get >/dev/null || { log "prometheus/promtool missing and no apt-get on this machine"; exit 77; }

  # policy-rc.d exit 101 tells invoke-rc.d and deb-systemd-invoke not to start the service on install.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    on_exit rm -f "$policy"
  fi
  apt_install prometheus

  # Installed, not started; also keep it from starting at the next boot (systemctl disable works offline).
  if command -v systemctl >/dev/null; then
    systemctl disable prometheus.service >&2 || true
    [[ ! -d /run/systemd/system ]] || systemctl stop prometheus.service >&2 || true
  fi
  if command -v update-rc.d >/dev/null; then
    update-rc.d prometheus disable >&2 || true
  fi
fi

have_binaries || die "prometheus/promtool still missing after the install"
dirname "$(command -v prometheus)"
