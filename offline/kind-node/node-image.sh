#!/usr/bin/env bash
# Assemble the kind node image for Kubernetes KUBERNETES_VERSION (pins.env) offline and print its tag (last line of stdout).
#
# `kind build node-image` cannot work here: it fetches etcd, CoreDNS and pause from their registry with
# `ctr content fetch` (no way to skip it) and checks containerd with `ctr info`, which Debian's
# containerd 1.6 lacks. So the node is made the way that command makes it, by hand: start the kind base
# image, copy in kubelet, kubeadm, kubectl, crictl and /kind/version, import the control-plane images
# into containerd's k8s.io namespace (pinned, as kind does), and commit. The tag covers every input, so
# an image that exists is reused as is.
#   DISTSUM_E2E_SAVE_NODE=1   also `docker save` the node image into the cache (an engine whose data
#                             root was wiped then loads it instead of assembling it again)
#   DISTSUM_CACHE_DIR         cache root (default: ${XDG_CACHE_HOME:-~/.cache}/distsum)
set -euo pipefail
# kind's default pod subnet; kindnetd is not available offline, so kind runs with disableDefaultCNI
# (k8s/kind/offline.yaml) and this static bridge network serves the single node's pods.
POD_SUBNET=10.244.0.0/24
me="node-image"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/docker/lib.sh
source "$repo/scripts/docker/lib.sh"
mkdir -p "$docker_cache"

base="$("$repo/offline/kind-node/kind-base-image.sh" | tail -n 1)"
k8s_bin="$("$repo/offline/kind-node/k8s-binaries.sh" | tail -n 1)"
crictl="$("$repo/scripts/go-tool.sh" crictl)"
tools=()
for tool in etcd coredns pause local-path-provisioner; do tools+=("$("$repo/scripts/go-tool.sh" "$tool")"); done
key="$(printf '%s\n' "$base" "$k8s_bin" "$crictl" "${tools[@]}" \
  | cat - "${BASH_SOURCE[0]}" "$repo/offline/kind-node/k8s-images.sh" | sha256sum | cut -c1-10)"
tag="distsum-e2e/node:$KUBERNETES_VERSION-$key"
saved="$docker_cache/node-image/node-$KUBERNETES_VERSION-$key.tar"

# save_if_asked: with DISTSUM_E2E_SAVE_NODE=1, keep a `docker save` of the node image in the cache (once).
save_if_asked() {
  [[ ${DISTSUM_E2E_SAVE_NODE:-0} == 1 && ! -s $saved ]] || return 0
  mkdir -p "${saved%/*}"
  rm -f "${saved%/*}"/node-*.tar
  docker save -o "$saved.partial" "$tag" && mv "$saved.partial" "$saved"
  log "saved $tag to $saved"
}

if ! present "$tag" && [[ -s $saved ]]; then
  log "loading $tag from $saved"
  docker load -q -i "$saved" >/dev/null || log "warning: cannot load $saved; assembling the node image again"
fi
if present "$tag"; then
  save_if_asked
  echo "$tag"
  exit 0
fi

mapfile -t images < <("$repo/offline/kind-node/k8s-images.sh" "$base")
SECONDS=0
node=""
remove_node() { [[ -z $node ]] || docker rm -f "$node" >/dev/null 2>&1; }
on_exit remove_node
node="$(docker run -d --privileged --entrypoint sleep "$base" infinity)"
in_node() { docker exec "$node" "$@"; }

log "copying the Kubernetes $KUBERNETES_VERSION binaries into the node"
for binary in kubelet kubeadm kubectl; do docker cp "$k8s_bin/$binary" "$node:/usr/bin/$binary"; done
docker cp "$crictl" "$node:/usr/local/bin/crictl"
in_node sh -c "mkdir -p /kind/manifests /etc/cni/net.d && echo $KUBERNETES_VERSION >/kind/version"
docker exec -i "$node" sh -c 'cat >/etc/cni/net.d/10-bridge.conflist' <<CONFLIST
{
  "cniVersion": "0.4.0",
  "name": "kind-bridge",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$POD_SUBNET" }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
CONFLIST

# kind's default storage: the local-path-provisioner manifest `kind build node-image` writes, taken from
# kind's module with its image constants filled in. Without it kind falls back to the in-tree host-path
# provisioner, whose root-owned 0755 directories a non-root pod (the ledger, uid 10001) cannot write.
kind_storage="$(go_module_dir "sigs.k8s.io/kind@$KIND_VERSION")/pkg/build/nodeimage/const_storage.go"
awk '
  /^const storage(Provisioner|Helper)Image = "/ { split($0, q, "\""); image[$2] = q[2] }
  /^const defaultStorageManifest = `$/ { on = 1; next }
  on && /^`$/ { exit }
  on {
    line = $0
    for (name in image) gsub("` \\+ " name " \\+ `", image[name], line)
    print line
  }
' "$kind_storage" >"$docker_cache/default-storage.yaml"
grep -q "rancher.io/local-path" "$docker_cache/default-storage.yaml" || die "no storage manifest in $kind_storage"
docker cp "$docker_cache/default-storage.yaml" "$node:/kind/manifests/default-storage.yaml"

log "importing ${#images[@]} images into the node's containerd"
docker exec -d "$node" containerd
deadline=$((SECONDS + 30))
until in_node ctr version >/dev/null 2>&1; do
  ((SECONDS < deadline)) || die "containerd in the node did not answer within 30s"
  sleep 0.5
done
docker save "${images[@]}" | docker exec -i "$node" ctr -n k8s.io images import --label=io.cri-containerd.pinned=pinned \
  --all-platforms --no-unpack --digests - >/dev/null || die "ctr images import failed"
# shellcheck disable=SC2016 # expanded in the node
in_node sh -c 'kill -TERM $(pidof containerd); while pidof containerd >/dev/null; do sleep 0.2; done'

docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
  "$node" "$tag" >/dev/null
log "committed $tag in ${SECONDS}s"
# Node images made from other inputs only take disk (1.4 GB each): remove them. docker refuses to
# remove one a kind node still runs on, which is fine.
docker images --format '{{.Repository}}:{{.Tag}}' distsum-e2e/node | grep -vxF "$tag" \
  | xargs -r docker rmi >/dev/null 2>&1 || true
save_if_asked
echo "$tag"
