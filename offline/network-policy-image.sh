#!/usr/bin/env bash
# Build the NetworkPolicy enforcer of the offline e2e cluster and print its tag (last line of stdout):
# kube-router's network policy controller alone (no routing, no service proxy), built from the Go module
# proxy (scripts/go-tool.sh kube-router), on a debootstrapped Debian bookworm with the iptables and ipset
# it drives. k8s/kind/network-policy-enforcer.yaml runs it on every node.
#
# Why this one: the offline node's bridge CNI enforces nothing, and the agent of kind's own CNI
# (kube-network-policies) needs the nftables `queue` expression, which this machine's kernel lacks.
# kube-router programs iptables (through the node's nf_tables backend, as Debian's iptables does) and ipsets,
# which it has, and sees pod-to-pod traffic on the bridge because the node's
# net.bridge.bridge-nf-call-iptables is 1.
set -euo pipefail
PACKAGES=iptables,ipset,conntrack
me="network-policy-image"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=scripts/docker/lib.sh
source "$repo/scripts/docker/lib.sh"
mkdir -p "$docker_cache/network-policy"

binary="$("$repo/scripts/go-tool.sh" kube-router | tail -n 1)"
recipe="$(cat "${BASH_SOURCE[0]}" "$binary" | sha256sum | cut -c1-8)"
tag="distsum-e2e/kube-router:$KUBE_ROUTER_VERSION-$recipe"
if present "$tag"; then
  echo "$tag"
  exit 0
fi

base_tag="$(debian_image iptables "$PACKAGES")"

ctx="$(mktemp -d "$docker_cache/network-policy/context.XXXXXX")"
on_exit rm -rf -- "$ctx"
cp "$binary" "$ctx/kube-router"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $base_tag
COPY kube-router /usr/local/bin/kube-router
ENTRYPOINT ["/usr/local/bin/kube-router"]
LABEL org.opencontainers.image.description="kube-router $KUBE_ROUTER_VERSION network policy controller, made by offline/network-policy-image.sh"
DOCKERFILE
log "building $tag"
build_log="$docker_cache/network-policy/build.log"
docker build -t "$tag" "$ctx" >"$build_log" 2>&1 || die "docker build of $tag failed; see $build_log"
echo "$tag"
