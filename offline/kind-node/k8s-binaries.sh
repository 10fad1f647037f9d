#!/usr/bin/env bash
# Print the directory holding the pinned Kubernetes binaries (kubelet, kubeadm, kubectl, kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy), building them from the Go module proxy once.
#
# No release binaries are downloaded: the wrapper module offline/go/kubernetes requires k8s.io/kubernetes
# at KUBERNETES_VERSION (go.sum committed, so every module is checksummed). The result is cached under
# the version and a hash of the module files, so warm runs cost nothing. A cold build takes ~7 min
# on 2 cores.
#   DISTSUM_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-~/.cache}/distsum)
set -euo pipefail
me="k8s-binaries"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/lib.sh
source "$repo/scripts/lib.sh"

module="$repo/offline/go/kubernetes"
commands=(kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
grep -qx "require k8s.io/kubernetes $KUBERNETES_VERSION" "$module/go.mod" \
  || die "$module/go.mod does not require k8s.io/kubernetes $KUBERNETES_VERSION (run its update-lock.sh)"
# Bump when the build below changes (flags, commands), so binaries built by an older recipe are not reused.
recipe=2
key="$(cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -c1-8)"
out="$cache_root/kubernetes/$KUBERNETES_VERSION-$key-r$recipe"

built() { local c; for c in "${commands[@]}"; do [[ -x $out/$c ]] || return 1; done; }
if built; then
  echo "$out"
  exit 0
fi
command -v go >/dev/null || die "Go is needed to build Kubernetes $KUBERNETES_VERSION"
mkdir -p "$cache_root/kubernetes"
exec 9>"$cache_root/kubernetes/.lock"
flock 9
if ! built; then
  # Upstream's release build stamps the version through these variables (hack/lib/version.sh); kubeadm
  # derives the control-plane image tags from gitVersion, so it must be the exact release.
  minor="${KUBERNETES_VERSION#v1.}"
  # The release's commit time, as the module proxy records it: the same stamp on every machine.
  build_date="$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "k8s.io/kubernetes@$KUBERNETES_VERSION")"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*}"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  tmp="$(mktemp -d "$out.tmp.XXXXXX")"
  chmod 0755 "$tmp"
  on_exit rm -rf -- "$tmp"
  log "building Kubernetes $KUBERNETES_VERSION (${commands[*]}) into $out; ~7 min cold on 2 cores"
  SECONDS=0
  (cd "$module" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
    "${commands[@]/#/k8s.io/kubernetes/cmd/}") || die "go build of Kubernetes failed"
  "$tmp/kubeadm" version -o short | grep -qx "$KUBERNETES_VERSION" || die "kubeadm is not stamped $KUBERNETES_VERSION"
  rm -rf "$out"
  mv -T "$tmp" "$out"
  log "built in ${SECONDS}s"
fi
echo "$out"
