#!/usr/bin/env bash
# Build, under exactly the names the node pulls, the images preloaded into the kind node: what a kubeadm
# KUBERNETES_VERSION control plane needs (kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, etcd,
# CoreDNS, pause) and kind's default storage (local-path-provisioner and its helper), from binaries built
# from the Go module proxy; print their references, one a line.
#
# No registry is reachable here, so the names come from `kubeadm config images list` (whatever prefix it
# prints) and from kind's module (its containerd config's pause, its storage images). Images that exist
# are kept: a warm run only lists them.
#   usage: offline/kind-node/k8s-images.sh KIND_BASE_IMAGE   (kube-proxy needs its iptables and conntrack)
set -euo pipefail
me="k8s-images"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/docker/lib.sh
source "$repo/scripts/docker/lib.sh"
mkdir -p "$docker_cache"
kind_base="${1:?usage: $0 KIND_BASE_IMAGE}"

k8s_bin="$("$repo/offline/kind-node/k8s-binaries.sh" | tail -n 1)"
mapfile -t refs < <("$k8s_bin/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION")
((${#refs[@]} == 7)) || die "kubeadm listed ${#refs[@]} images, expected 7: ${refs[*]}"
kind_dir="$(go_module_dir "sigs.k8s.io/kind@$KIND_VERSION")"
kind_config="$kind_dir/images/base/files/etc/containerd/config.toml"
sandbox="$(sed -nE 's/^ *sandbox_image = "(.*)"/\1/p' "$kind_config")"
[[ -n $sandbox ]] || die "no sandbox_image in $kind_config"
kind_storage="$kind_dir/pkg/build/nodeimage/const_storage.go"
storage_provisioner="$(sed -nE 's/^const storageProvisionerImage = "(.*)"$/\1/p' "$kind_storage")"
storage_helper="$(sed -nE 's/^const storageHelperImage = "(.*)"$/\1/p' "$kind_storage")"
[[ -n $storage_provisioner && -n $storage_helper ]] || die "no storage image names in $kind_storage"

ctx="$(mktemp -d)"
build_log="$docker_cache/k8s-images.log"
on_exit rm -rf -- "$ctx"

# build REF FROM [BINARY [ENTRYPOINT]]: an image FROM with BINARY in /usr/local/bin, tagged REF. An
# image of that name made from the same inputs (the binary's cache path carries its version and recipe)
# is kept.
build() {
  local ref=$1 from=$2 binary=${3:-} entrypoint=${4:-} inputs
  inputs="$from $binary $entrypoint"
  [[ $(docker image inspect -f '{{index .Config.Labels "distsum.e2e.inputs"}}' "$ref" 2>/dev/null) == "$inputs" ]] \
    && return 0
  rm -rf "${ctx:?}"/*
  {
    echo "FROM $from"
    echo "LABEL distsum.e2e.inputs=\"$inputs\""
    if [[ -n $binary ]]; then
      cp "$binary" "$ctx/"
      echo "COPY $(basename "$binary") /usr/local/bin/"
    fi
    echo "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    # The kind base stops with systemd's signal; these are plain processes.
    echo "STOPSIGNAL SIGTERM"
    [[ -z $entrypoint ]] || echo "ENTRYPOINT [\"/usr/local/bin/$entrypoint\"]"
    echo "LABEL org.opencontainers.image.description=\"$ref for the offline e2e cluster, made by offline/kind-node/k8s-images.sh\""
  } >"$ctx/Dockerfile"
  log "building $ref"
  docker build -t "$ref" "$ctx" >"$build_log" 2>&1 || die "docker build of $ref failed; see $build_log"
}

for ref in "${refs[@]}" "$sandbox" "$storage_provisioner" "$storage_helper"; do
  name="${ref##*/}"
  case "${name%%:*}" in
    local-path-provisioner) build "$ref" scratch "$("$repo/scripts/go-tool.sh" local-path-provisioner)" ;;
    # The helper pod only runs kind's setup/teardown shell scripts (mkdir -m 0777, rm -rf).
    local-path-helper) build "$ref" "$kind_base" ;;
    kube-proxy) build "$ref" "$kind_base" "$k8s_bin/kube-proxy" ;;
    kube-*) build "$ref" scratch "$k8s_bin/${name%%:*}" ;;
    etcd) build "$ref" scratch "$("$repo/scripts/go-tool.sh" etcd)" etcd ;;
    coredns) build "$ref" scratch "$("$repo/scripts/go-tool.sh" coredns)" coredns ;;
    pause) build "$ref" scratch "$("$repo/scripts/go-tool.sh" pause)" pause ;;
    *) die "kubeadm lists an image this script cannot build: $ref" ;;
  esac
  echo "$ref"
done
