#!/usr/bin/env bash
# Build and cache the molecule machine images without any registry:
# Debian minbase rootfs from Debian's archive (debootstrap) -> `podman import`.
#
#   tests/images/build.sh [bookworm|trixie ...]     (default: $MOLECULE_DISTRO or both)
#
# An image is rebuilt only when its recipe (this file + the package list)
# changes: the recipe hash is stored as the image label ecoeco.recipe.
# podman, runc and debootstrap: tests/tools/ensure-podman.sh installs them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="$here/containers.conf"

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGE_REPO=${ECOECO_MACHINE_IMAGE:-localhost/ecoeco-machine}
# What a machine needs so that Ansible and systemd work; everything else is
# the roles' job. python3-apt spares Ansible's apt module installing it on
# every fresh machine.
PACKAGES=python3,python3-apt,systemd,systemd-sysv,iproute2,procps,sudo,ca-certificates

read -r -a distros <<<"${*:-${MOLECULE_DISTRO:-bookworm trixie}}"

bash "$here/../tools/ensure-podman.sh"

# The recipe: release, package list, mirror and the steps of build_one. An
# edit elsewhere in this file (comments, tool setup) does not rebuild.
recipe_hash() {  # $1 distro
  { echo "$1 $PACKAGES $MIRROR"; declare -f build_one; } | sha256sum | cut -c1-16
}

build_one() {
  local distro=$1 image="$IMAGE_REPO:$1" hash have rootfs start
  hash=$(recipe_hash "$distro")
  have=$(podman image inspect --format '{{ index .Labels "ecoeco.recipe" }}' "$image" 2>/dev/null || true)
  if [ "$have" = "$hash" ]; then
    echo "$image is current (recipe $hash)"
    return
  fi
  start=$(date +%s)
  rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/ecoeco-rootfs-$distro.XXXXXX")
  trap 'rm -rf "$rootfs"' RETURN
  echo "debootstrap $distro (minbase) from $MIRROR"
  debootstrap --variant=minbase --include="$PACKAGES" "$distro" "$rootfs" "$MIRROR" \
    >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log"; exit 1; }
  rm -f "$rootfs.log"
  # A machine gets its own identity at first boot; apt lists are not kept.
  : >"$rootfs/etc/machine-id"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" -c . | podman import \
    --change 'CMD ["/sbin/init"]' \
    --change "LABEL ecoeco.recipe=$hash" \
    --change "LABEL ecoeco.distro=$distro" \
    - "$image" >/dev/null
  echo "built $image (recipe $hash) in $(( $(date +%s) - start ))s"
}

for d in "${distros[@]}"; do build_one "$d"; done
