#!/usr/bin/env bash
# Print the path of a pinned Go tool, building it with `go install` into the cache on first use.
#   scripts/go-tool.sh helm        -> .../tools/helm-v3.22.0/helm
# The versions are pinned here so every machine validates with the same binaries.
set -euo pipefail

tool="${1:?usage: scripts/go-tool.sh helm|kubeconform|kind|grpcurl|kube-score}"
case "$tool" in
  helm)        module=helm.sh/helm/v3/cmd/helm;                        version=v3.22.0 ;;
  kubeconform) module=github.com/yannh/kubeconform/cmd/kubeconform;    version=v0.8.0 ;;
  kind)        module=sigs.k8s.io/kind;                                version=v0.33.0 ;;
  grpcurl)     module=github.com/fullstorydev/grpcurl/cmd/grpcurl;     version=v1.9.3 ;;
  kube-score)  module=github.com/zegl/kube-score/cmd/kube-score;       version=v1.20.0 ;;
  *) echo "go-tool.sh: unknown tool '$tool'" >&2; exit 2 ;;
esac

cache="${DISTSUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/distsum}"
bin_dir="$cache/tools/$tool-$version"
binary="$bin_dir/$tool"

if [[ ! -x "$binary" ]]; then
  command -v go >/dev/null || { echo "go-tool.sh: Go is needed to build $tool $version" >&2; exit 1; }
  echo "go-tool.sh: building $tool $version (once; cached in $bin_dir)" >&2
  mkdir -p "$bin_dir"
  # Helm and kubeconform read their version from build info; CGO off keeps the binaries static.
  CGO_ENABLED=0 GOBIN="$bin_dir" GOFLAGS=-mod=mod go install "$module@$version" >&2
fi
echo "$binary"
