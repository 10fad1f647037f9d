#!/usr/bin/env bash
# Print the path of a pinned Go tool, building it with `go install` into the cache on first use.
#   scripts/go-tool.sh helm        -> .../tools/helm-<HELM_VERSION>/helm
# The versions are pinned in pins.env so every machine validates with the same binaries. A tool whose module
# cannot be `go install`ed by version (replace directives in its go.mod) or is our own code is built
# from a committed wrapper module instead (tools/go/<tool>, or offline/go/<tool> for the offline cluster's
# parts), whose go.sum pins every dependency.
set -euo pipefail
me="go-tool.sh"
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

tool="${1:?usage: scripts/go-tool.sh helm|kubeconform|kube-score|kind|grpcurl|crictl|kube-router|prometheus-operator|prometheus-config-reloader|prometheus|coredns|local-path-provisioner|etcd|pause|skaffold|buildx|ghz|syft}"
wrapper=""
ldflags="" # extra -ldflags, for tools that read their version from a variable
case "$tool" in
  helm)        module=helm.sh/helm/v3/cmd/helm;                        version=$HELM_VERSION ;;
  kubeconform) module=github.com/yannh/kubeconform/cmd/kubeconform;    version=$KUBECONFORM_VERSION ;;
  kind)        module=sigs.k8s.io/kind;                                version=$KIND_VERSION ;;
  grpcurl)     module=github.com/fullstorydev/grpcurl/cmd/grpcurl;     version=$GRPCURL_VERSION ;;
  kube-score)  module=github.com/zegl/kube-score/cmd/kube-score;       version=$KUBE_SCORE_VERSION ;;
  # gRPC load generator of make bench; it prints its own version from a variable, not build info.
  ghz)         module=github.com/bojand/ghz/cmd/ghz;                   version=$GHZ_VERSION
               ldflags="-X main.version=$version" ;;
  # The offline e2e cluster's parts (scripts/e2e).
  crictl)      module=sigs.k8s.io/cri-tools/cmd/crictl;                version=$CRICTL_VERSION ;;
  coredns)     module=github.com/coredns/coredns;                      version=$COREDNS_VERSION ;;
  # kind's default storage: rancher's local-path-provisioner.
  local-path-provisioner) module=github.com/rancher/local-path-provisioner; version=$LOCAL_PATH_PROVISIONER_VERSION ;;
  # The offline e2e cluster's Prometheus (offline/prometheus-images.sh): the operator and its config
  # reloader at kube-prometheus-stack's appVersion, Prometheus at the chart's default. Both read their
  # version from a variable; the operator names it in the StatefulSets it makes.
  prometheus-operator) module=github.com/prometheus-operator/prometheus-operator/cmd/operator
               version=$PROMETHEUS_OPERATOR_VERSION; wrapper=offline/go/prometheus-operator
               ldflags="-X github.com/prometheus/common/version.Version=${version#v}" ;;
  prometheus-config-reloader) module=github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader
               version=$PROMETHEUS_OPERATOR_VERSION; wrapper=offline/go/prometheus-operator
               ldflags="-X github.com/prometheus/common/version.Version=${version#v}" ;;
  prometheus)  module=github.com/prometheus/prometheus/cmd/prometheus;  version=$PROMETHEUS_MODULE_VERSION
               wrapper=offline/go/prometheus
               ldflags="-X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION#v}" ;;
  # The offline e2e cluster's NetworkPolicy enforcer (offline/network-policy-image.sh); it prints its
  # version from a variable.
  kube-router) module=github.com/cloudnativelabs/kube-router/v2/cmd/kube-router; version=$KUBE_ROUTER_VERSION
               ldflags="-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$version" ;;
  etcd)        module=go.etcd.io/etcd/server/v3;                       version=$ETCD_VERSION; wrapper=offline/go/etcd ;;
  pause)       module=distsum.local/tools/pause;                       version=v1;     wrapper=offline/go/pause ;;
  # skaffold and the docker CLI plugin it needs for BuildKit builds (`docker buildx`), for make e2e.
  # Both read their version from a variable, not from build info.
  skaffold)    module=github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold; version=$SKAFFOLD_VERSION; wrapper=tools/go/skaffold
               ldflags="-X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$version" ;;
  buildx)      module=github.com/docker/buildx/cmd/buildx;             version=$BUILDX_VERSION
               ldflags="-X github.com/docker/buildx/version.Version=$version" ;;
  # The images' SBOMs (make images); it names itself in them from a variable, not build info.
  syft)        module=github.com/anchore/syft/cmd/syft;                version=$SYFT_VERSION
               ldflags="-X main.version=$version" ;;
  *) log "unknown tool '$tool'"; exit 2 ;;
esac

if [[ -n $wrapper ]]; then
  wrapper="$repo/$wrapper"
  # A wrapper's go.mod holds a copy of the pin; the two must agree.
  [[ $version == v1 ]] || grep -Eq "^[[:space:]]*(require )?[^ ]+ $version( |$)" "$wrapper/go.mod" \
    || die "$wrapper/go.mod requires no module at $version (pins.env); regenerate it"
  # The cache key covers the wrapper's files, so a bumped go.mod or an edited main.go rebuilds.
  version+="-$(cat "$wrapper"/* | sha256sum | cut -c1-8)"
fi

bin_dir="$cache_root/tools/$tool-$version"
binary="$bin_dir/$tool"

if [[ ! -x "$binary" ]]; then
  # 77: a tool is missing (the tests tell that from a failed build).
  command -v go >/dev/null || { log "Go is needed to build $tool $version"; exit 77; }
  log "building $tool $version (once; cached in $bin_dir)"
  mkdir -p "$bin_dir"
  # Helm and kubeconform read their version from build info; CGO off keeps the binaries static.
  if [[ -n $wrapper ]]; then
    (cd "$wrapper" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$binary" "$module") >&2
  else
    CGO_ENABLED=0 GOBIN="$bin_dir" GOFLAGS=-mod=mod go install ${ldflags:+-ldflags "$ldflags"} "$module@$version" >&2
  fi
fi
echo "$binary"
