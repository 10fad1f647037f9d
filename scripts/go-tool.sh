#!/usr/bin/env bash
# Print the path of a pinned Go tool, building it with `go install` into the cache on first use.
#   scripts/go-tool.sh helm        -> .../tools/helm-v3.22.0/helm
# The versions are pinned here so every machine validates with the same binaries. A tool whose module
# cannot be `go install`ed by version (replace directives in its go.mod) or is our own code is built
# from a committed wrapper module under tools/go/<tool> instead, whose go.sum pins every dependency.
set -euo pipefail

tool="${1:?usage: scripts/go-tool.sh helm|kubeconform|kube-score|kind|grpcurl|crictl|coredns|local-path-provisioner|etcd|pause|skaffold|buildx|ghz}"
wrapper=""
ldflags="" # extra -ldflags, for tools that read their version from a variable
case "$tool" in
  helm)        module=helm.sh/helm/v3/cmd/helm;                        version=v3.22.0 ;;
  kubeconform) module=github.com/yannh/kubeconform/cmd/kubeconform;    version=v0.8.0 ;;
  kind)        module=sigs.k8s.io/kind;                                version=v0.33.0 ;;
  grpcurl)     module=github.com/fullstorydev/grpcurl/cmd/grpcurl;     version=v1.9.3 ;;
  kube-score)  module=github.com/zegl/kube-score/cmd/kube-score;       version=v1.20.0 ;;
  # gRPC load generator of make bench; it prints its own version from a variable, not build info.
  ghz)         module=github.com/bojand/ghz/cmd/ghz;                   version=v0.121.0
               ldflags="-X main.version=$version" ;;
  # The offline e2e cluster (scripts/e2e): versions kubeadm v1.34.2 and kind v0.33.0 expect.
  crictl)      module=sigs.k8s.io/cri-tools/cmd/crictl;                version=v1.34.0 ;;
  coredns)     module=github.com/coredns/coredns;                      version=v1.12.1 ;;
  # kind's default storage: rancher's local-path-provisioner. kind v0.33.0 ships v0.0.34, which the
  # module proxy does not serve; v0.0.30 is the newest there.
  local-path-provisioner) module=github.com/rancher/local-path-provisioner; version=v0.0.30 ;;
  etcd)        module=go.etcd.io/etcd/server/v3;                       version=v3.6.5; wrapper=etcd ;;
  pause)       module=distsum.local/tools/pause;                       version=v1;     wrapper=pause ;;
  # skaffold and the docker CLI plugin it needs for BuildKit builds (`docker buildx`), for make e2e.
  # Both read their version from a variable, not from build info.
  skaffold)    module=github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold; version=v2.24.0; wrapper=skaffold
               ldflags="-X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$version" ;;
  buildx)      module=github.com/docker/buildx/cmd/buildx;             version=v0.38.2
               ldflags="-X github.com/docker/buildx/version.Version=$version" ;;
  *) echo "go-tool.sh: unknown tool '$tool'" >&2; exit 2 ;;
esac

repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
if [[ -n $wrapper ]]; then
  wrapper="$repo/tools/go/$wrapper"
  # The cache key covers the wrapper's files, so a bumped go.mod or an edited main.go rebuilds.
  version+="-$(cat "$wrapper"/* | sha256sum | cut -c1-8)"
fi

cache="${DISTSUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/distsum}"
bin_dir="$cache/tools/$tool-$version"
binary="$bin_dir/$tool"

if [[ ! -x "$binary" ]]; then
  command -v go >/dev/null || { echo "go-tool.sh: Go is needed to build $tool $version" >&2; exit 1; }
  echo "go-tool.sh: building $tool $version (once; cached in $bin_dir)" >&2
  mkdir -p "$bin_dir"
  # Helm and kubeconform read their version from build info; CGO off keeps the binaries static.
  if [[ -n $wrapper ]]; then
    (cd "$wrapper" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$binary" "$module") >&2
  else
    CGO_ENABLED=0 GOBIN="$bin_dir" GOFLAGS=-mod=mod go install ${ldflags:+-ldflags "$ldflags"} "$module@$version" >&2
  fi
fi
echo "$binary"
