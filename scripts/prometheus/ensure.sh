#!/usr/bin/env bash
# Make Debian's `prometheus` and `promtool` available for the PromQL tests, installing the package on
# first use. Prints the directory that holds both binaries.
# Exit 77 (the test skips, printing the reason) when they are missing and cannot be installed here.
# The package's own service is never left running: the tests start Prometheus themselves on a free port,
# and a system-wide Prometheus on :9090 would be an unasked-for daemon on a developer's machine.
set -euo pipefail

have_binaries() { command -v prometheus >/dev/null && command -v promtool >/dev/null; }

if ! have_binaries; then
  [[ "$(id -u)" == 0 ]] || { echo "prometheus/promtool missing and not root: cannot apt-get install prometheus" >&2; exit 77; }
  command -v apt-get >/dev/null || { echo "prometheus/promtool missing and no apt-get on this machine" >&2; exit 77; }

  # policy-rc.d exit 101 tells invoke-rc.d and deb-systemd-invoke not to start the service on install.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "ensure.sh: installing Debian's prometheus package (once)" >&2
  apt_install() { apt-get install -y -q --no-install-recommends prometheus >&2; }
  apt_install || { apt-get update -q >&2 && apt_install; }

  # Installed, not started; also keep it from starting at the next boot (systemctl disable works offline).
  if command -v systemctl >/dev/null; then
    systemctl disable prometheus.service >&2 || true
    [[ ! -d /run/systemd/system ]] || systemctl stop prometheus.service >&2 || true
  fi
  if command -v update-rc.d >/dev/null; then
    update-rc.d prometheus disable >&2 || true
  fi
fi

have_binaries || { echo "ensure.sh: prometheus/promtool still missing after the install" >&2; exit 1; }
dirname "$(command -v prometheus)"
