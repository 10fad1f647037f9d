#!/usr/bin/env bash
# Print a Docker client configuration directory (for DOCKER_CONFIG) whose only plugin is the pinned
# buildx (scripts/go-tool.sh buildx), so `skaffold` can build with BuildKit: its `useBuildkit: true`
# adds `--load`, which only buildx knows. The user's ~/.docker is never read or changed; the
# directory lives in the cache and holds no credentials (nothing is pushed or pulled from a registry).
#   DOCKER_CONFIG="$(scripts/docker/buildx-config.sh | tail -n 1)" skaffold run -p offline
set -euo pipefail
me="buildx-config"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/lib.sh
source "$repo/scripts/lib.sh"

buildx="$("$repo/scripts/go-tool.sh" buildx | tail -n 1)"
dir="$cache_root/docker-config"
mkdir -p "$dir/cli-plugins"
ln -sfn "$buildx" "$dir/cli-plugins/docker-buildx"
# Docker CLIs before 23.0 (Debian's docker.io 20.10) run `docker build` with their own BuildKit client,
# which has no --load; this alias hands `docker build` to buildx, as `docker buildx install` would.
# Newer CLIs use the plugin for `docker build` anyway.
printf '{"aliases": {"builder": "buildx"}}\n' >"$dir/config.json"
DOCKER_CONFIG="$dir" docker buildx version >/dev/null || die "the buildx plugin in $dir does not run"
echo "$dir"
