#!/usr/bin/env bash
# Build the control-plane and pause images of the in-container test cluster
# without any registry, and save them as one archive the nodes import with
# `ctr -n k8s.io images import` (the containerd role's containerd_image_archives).
#
#   tests/cluster/images/build.sh     -> prints the archive path
#
# Images (FROM scratch, one static binary each, from the harness builds in
# ~/.cache/ecoeco-gitops/bin): $REPO/{kube-apiserver,kube-controller-manager,
# kube-scheduler}:<kubernetes>, $REPO/etcd:<etcd>, $REPO/pause:3.10.2 (ours),
# $REPO/podnet:v1 (ours: the pod network check's HTTP server and client).
# The archive is rebuilt only when missing or older than its inputs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
export CONTAINERS_CONF="$root/tests/images/containers.conf"

REPO=${ECOECO_CLUSTER_IMAGE_REPO:-localhost/ecoeco-k8s}
PAUSE_TAG=3.10.2
PODNET_TAG=v1
cache=${ECOECO_CACHE:-$HOME/.cache/ecoeco-gitops}
pin() { sed -n "s/^$1: *//p" "$root/versions.yml"; }
k8s=$(pin kubernetes)
etcd=$(pin etcd)
k8s_bin="$cache/bin/kubernetes-$k8s"
etcd_bin="$cache/bin/etcd-$etcd"
archive="$cache/images/cluster-images-$k8s-$etcd.tar"

inputs=("$k8s_bin/kube-apiserver" "$k8s_bin/kube-controller-manager" "$k8s_bin/kube-scheduler"
        "$etcd_bin/etcd" "$here/Containerfile" "$here/Containerfile.pause" "$here/pause/main.go"
        "$here/podnet/main.go" "$0")
for f in "${inputs[@]}"; do
  [ -f "$f" ] || { echo "missing $f (run: python -m tests.harness.build)" >&2; exit 1; }
done
if [ -f "$archive" ] && [ -z "$(find "${inputs[@]}" -newer "$archive" 2>/dev/null)" ]; then
  echo "$archive"
  exit 0
fi

ctx=$(mktemp -d "${TMPDIR:-/var/tmp}/ecoeco-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
start=$(date +%s)
images=()
build() {  # $1 binary path, $2 image name:tag
  local name; name=$(basename "$1")
  mkdir -p "$ctx/$name"
  cp "$1" "$ctx/$name/$name"
  cp "$here/Containerfile" "$ctx/$name/"
  podman build -q --build-arg "BINARY=$name" -t "$REPO/$2" "$ctx/$name" >/dev/null
  images+=("$REPO/$2")
}
build "$k8s_bin/kube-apiserver" "kube-apiserver:$k8s"
build "$k8s_bin/kube-controller-manager" "kube-controller-manager:$k8s"
build "$k8s_bin/kube-scheduler" "kube-scheduler:$k8s"
build "$etcd_bin/etcd" "etcd:$etcd"

mkdir -p "$ctx/go"
(cd "$here/podnet" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$ctx/go/podnet" .)
build "$ctx/go/podnet" "podnet:$PODNET_TAG"

mkdir -p "$ctx/pause"
(cd "$here/pause" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$ctx/pause/pause" .)
podman build -q -f "$here/Containerfile.pause" -t "$REPO/pause:$PAUSE_TAG" "$ctx/pause" >/dev/null
images+=("$REPO/pause:$PAUSE_TAG")

mkdir -p "$(dirname "$archive")"
podman save -q -m -o "$archive.tmp" "${images[@]}"
mv "$archive.tmp" "$archive"
echo "built ${images[*]} into $archive in $(( $(date +%s) - start ))s" >&2
echo "$archive"
