#!/usr/bin/env bash
# Build the kind base image the offline node image starts from, and print its tag (last line of stdout).
#
# kind's published base image is assembled from git clones and a registry; neither is reachable here.
# This is the same recipe on Debian packages instead: a debootstrapped Debian bookworm with systemd,
# containerd, runc and the CNI plugins (from this machine's apt mirror), plus kind's own
# images/base/files (entrypoint, systemd units, kubelet drop-ins, containerd config) from the kind Go
# module, which the module proxy serves checksummed against the Go checksum database. crictl and the
# Kubernetes binaries are added later by node-image.sh. The rootfs tarball is cached; with the image
# present in the engine a run costs nothing.
#   DISTSUM_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-~/.cache}/distsum)
set -euo pipefail
SUITE=bookworm
PACKAGES=systemd,systemd-sysv,dbus,udev,containerd,runc,containernetworking-plugins,iptables,nftables,iproute2,\
conntrack,ethtool,ebtables,socat,util-linux,mount,kmod,libseccomp2,pigz,fuse-overlayfs,bash,ca-certificates,curl,jq,procps
me="kind-base-image"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/docker/lib.sh
source "$repo/scripts/docker/lib.sh"
mkdir -p "$docker_cache"

# Host workaround, only where the capability bounding set lacks CAP_SYS_RESOURCE: runc in the node then
# cannot lower a container's oom_score_adj below its own (kubelet asks -998 for static pods), and every
# pod sandbox fails with "can't get final child's PID from pipe: EOF". restrict_oom_score_adj makes
# containerd clamp the value to its own instead.
restrict_oom=false
lacks_sys_resource && restrict_oom=true

recipe="$(cat "${BASH_SOURCE[0]}" "$repo/scripts/docker/lib.sh" | sha256sum | cut -c1-10)"
tag="distsum-e2e/kind-base:$KIND_VERSION-$recipe"
[[ $restrict_oom == false ]] || tag+="-oomclamp"
if present "$tag"; then
  echo "$tag"
  exit 0
fi

rootfs_tar="$docker_cache/kind-base/debian-$SUITE-kind-node-$(sha256sum <<<"$PACKAGES" | cut -c1-8).tar.gz"
rootfs_tag="distsum-e2e/debian-systemd:$SUITE-$(basename "$rootfs_tar" .tar.gz | sed 's/.*-//')"
if ! present "$rootfs_tag"; then
  [[ -s $rootfs_tar ]] || make_rootfs_tar "$SUITE" "$PACKAGES" "$rootfs_tar"
  docker import --change 'ENV container=docker' --change 'CMD ["/sbin/init"]' "$rootfs_tar" "$rootfs_tag" >/dev/null
fi

kind_dir="$(go_module_dir "sigs.k8s.io/kind@$KIND_VERSION")"
ctx="$(mktemp -d "$docker_cache/kind-base/context.XXXXXX")"
on_exit rm -rf -- "$ctx"
cp -r "$kind_dir/images/base/files" "$ctx/files"
# Module files are read-only; legacy `docker build` (no BuildKit, so no COPY --chmod) keeps the modes.
find "$ctx/files" -type d -exec chmod 0755 {} + && find "$ctx/files" -type f -exec chmod 0644 {} +
chmod 0755 "$ctx"/files/usr/local/bin/* "$ctx"/files/kind/bin/*
config="$ctx/files/etc/containerd/config.toml"
# No fuse-overlayfs snapshotter service here (kind uses it only for rootless nodes): drop its proxy plugin.
sed -i '/^\[proxy_plugins\]/,/^  address = /d' "$config"
sed -i "s/^\(  restrict_oom_score_adj = \).*/\1$restrict_oom/" "$config"
grep -q "restrict_oom_score_adj = $restrict_oom" "$config" || die "cannot set restrict_oom_score_adj in $config"

cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $rootfs_tag
COPY files/usr/local/bin/ /usr/local/bin/
COPY files/kind/ /kind/
COPY files/etc/ /etc/
# What kind's own base Dockerfile does after installing its packages, with Debian's containerd, runc and
# CNI plugins linked where kind's configuration and entrypoint expect them.
RUN find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete \\
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \\
    /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \\
    /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \\
 && echo "ReadKMsg=no" >>/etc/systemd/journald.conf \\
 && ln -sf /usr/lib/systemd/systemd /sbin/init \\
 && ln -s /usr/bin/containerd /usr/bin/ctr /usr/bin/containerd-shim-runc-v2 /usr/local/bin/ \\
 && ln -s /usr/sbin/runc /usr/local/sbin/runc \\
 && mkdir -p /opt/cni/bin /etc/kubernetes/manifests && ln -s /usr/lib/cni/* /opt/cni/bin/ \\
 && ctr oci spec \\
    | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \\
    | jq 'del(.process.rlimits)' >/etc/containerd/cri-base.json \\
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
 && systemctl mask systemd-binfmt.service
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
LABEL org.opencontainers.image.description="kind $KIND_VERSION base on Debian $SUITE, made by offline/kind-node/kind-base-image.sh"
DOCKERFILE
build_log="$docker_cache/kind-base/build.log"
log "building $tag (log: $build_log)"
docker build --network host -t "$tag" "$ctx" >"$build_log" 2>&1 || die "docker build failed; last lines of $build_log:
$(tail -n 20 "$build_log")"
echo "$tag"
