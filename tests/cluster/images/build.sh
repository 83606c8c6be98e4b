#!/usr/bin/env bash
# Build the images of the in-container test cluster into podman's storage and
# write their names, one a line, to a list file; the test pushes them to the
# registry it runs on its podman network (tests/cluster/registry.py), and the
# nodes pull them from there.
#
#   tests/cluster/images/build.sh     -> prints the list file's path
#
# Images (FROM scratch, one static binary each, from the harness builds in
# ~/.cache/ecoeco-gitops/bin): $REPO/{kube-apiserver,kube-controller-manager,
# kube-scheduler}:<kubernetes>, $REPO/etcd:<etcd>, $REPO/pause:3.10.2 (ours),
# $REPO/podnet:v1 (ours: the pod network and Service checks' HTTP server and
# client), $REPO/coredns:<the version kubeadm names> (built once from CoreDNS's
# Go module into ~/.cache/ecoeco-gitops/bin/coredns-<version>).
# On the Debian machine image (tests/images/build.sh; apt from Debian's archive,
# layers cached by podman): $REPO/kube-proxy:<kubernetes> (iptables, conntrack,
# nft), and under the names Argo CD's install.yaml uses,
# quay.io/argoproj/argocd:<argocd> (the harness-built argocd, git, gpg,
# kustomize) and its redis image (Debian's redis-server).
# $REPO/sample:v1 (ours, FROM scratch: sample/main.go) is also tagged under
# every image name of the sample GitOps repo's prod overlays (rendered with
# kustomize), which the test's waves run.
# With ECOECO_CLUSTER_PREVIOUS=1 (tests/cluster/test_day2.py) the list also
# carries versions.yml's kubernetes_previous: its control-plane images,
# kube-proxy and the CoreDNS its kubeadm names (the binaries from
# ~/.cache/ecoeco-gitops/bin/kubernetes-<previous>, python -m
# tools.localcluster.build kubernetes_previous), so a cluster can be built at
# the previous release and upgraded to the current one from one registry.
# Also the machines' own image, $ECOECO_NODE_IMAGE:bookworm (default
# localhost/ecoeco-node; Containerfile.node: sshd and the user debian), not listed.
# Rebuilt only when the list is missing or older than its inputs, the machine
# image changed, or an image of the list is gone from podman's storage.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
export CONTAINERS_CONF="$root/tests/images/containers.conf"

# The registry the test serves these images from (tests/cluster/registry.py):
# Debian's docker-registry. Its package's own service is not used (the test
# runs the registry with a config of its own, on its network's gateway only).
if ! command -v docker-registry >/dev/null; then
  echo "installing docker-registry with apt" >&2
  apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
  "${apt[@]}" install -y docker-registry >/dev/null \
    || { "${apt[@]}" update >/dev/null && "${apt[@]}" install -y docker-registry >/dev/null; }
  # Where systemd runs, the package starts its service on every address: stop that one.
  if [ -d /run/systemd/system ]; then systemctl disable --now docker-registry.service >&2; fi
fi

REPO=${ECOECO_CLUSTER_IMAGE_REPO:-localhost/ecoeco-k8s}
PAUSE_TAG=3.10.2
PODNET_TAG=v1
cache=${ECOECO_CACHE:-$HOME/.cache/ecoeco-gitops}
pin() { sed -n "s/^$1: *//p" "$root/versions.yml"; }
k8s=$(pin kubernetes)
etcd=$(pin etcd)
argocd=$(pin argocd)
kustomize=$(pin kustomize)
helm=$(pin helm)
# The releases whose images the list carries: the current one, and the previous on demand.
releases=("$k8s")
if [ "${ECOECO_CLUSTER_PREVIOUS:-0}" = 1 ]; then
  releases+=("$(pin kubernetes_previous)")
fi
etcd_bin="$cache/bin/etcd-$etcd"
argocd_bin="$cache/bin/argocd-$argocd"
kustomize_bin="$cache/bin/kustomize-$kustomize"
helm_bin="$cache/bin/helm-$helm"
list="$cache/images/cluster-images-$(IFS=-; echo "${releases[*]}")-$etcd-$argocd.list"
base=${ECOECO_MACHINE_IMAGE:-localhost/ecoeco-machine}:bookworm
manifest=${ECOECO_ARGOCD_MANIFEST:-${ECOECO_MANIFESTS_DIR:-$root/../shared/manifests}/argo-cd/$argocd/install.yaml}

declare -A corednses=()  # CoreDNS version -> the release whose kubeadm names it
for release in "${releases[@]}"; do
  rel_bin="$cache/bin/kubernetes-$release"
  [ -x "$rel_bin/kubeadm" ] || {
    echo "missing $rel_bin/kubeadm (run: python -m tools.localcluster.build$([ "$release" = "$k8s" ] || echo ' kubernetes_previous'))" >&2
    exit 1; }
  # The CoreDNS version is the one this kubeadm deploys.
  coredns=$("$rel_bin/kubeadm" config images list --kubernetes-version "$release" --image-repository "$REPO" \
            | sed -n 's|.*/coredns:||p')
  corednses[$coredns]=$release
  coredns_bin="$cache/bin/coredns-$coredns"
  if [ ! -x "$coredns_bin/coredns" ]; then
    # Once per version: a static build from the Go module proxy (minutes on 2 cores).
    echo "building coredns $coredns from its Go module" >&2
    mkdir -p "$coredns_bin"
    GOBIN="$coredns_bin.tmp" CGO_ENABLED=0 GOMAXPROCS=${GOMAXPROCS:-1} nice -n 15 \
      go install -trimpath -ldflags=-s "github.com/coredns/coredns@$coredns" >&2
    mv "$coredns_bin.tmp/coredns" "$coredns_bin/coredns"
    rmdir "$coredns_bin.tmp"
  fi
done
[ -f "$manifest" ] || { echo "missing the Argo CD manifest $manifest (set ECOECO_ARGOCD_MANIFEST)" >&2; exit 1; }
# The image names install.yaml uses (the Deployments run what they name).
argocd_image=$(sed -n 's|^ *image: *\(.*/argocd:.*\)$|\1|p' "$manifest" | sort -u)
redis_image=$(sed -n 's|^ *image: *\(.*/redis:.*\)$|\1|p' "$manifest" | sort -u)
if [ "$(echo "$argocd_image" | wc -l)" != 1 ] || [ "$(echo "$redis_image" | wc -l)" != 1 ]; then
  echo "cannot tell the argocd/redis image names from $manifest" >&2
  exit 1
fi

inputs=()
for release in "${releases[@]}"; do
  for binary in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    inputs+=("$cache/bin/kubernetes-$release/$binary")
  done
done
for coredns in "${!corednses[@]}"; do inputs+=("$cache/bin/coredns-$coredns/coredns"); done
inputs+=("$etcd_bin/etcd" "$argocd_bin/argocd"
        "$kustomize_bin/kustomize" "$helm_bin/helm" "$manifest" "$here/Containerfile" "$here/Containerfile.pause"
        "$here/Containerfile.coredns" "$here/Containerfile.kube-proxy" "$here/Containerfile.argocd"
        "$here/Containerfile.redis" "$here/Containerfile.sample" "$here/argocd/gpg-wrapper.sh"
        "$here/argocd/git-verify-wrapper.sh" "$here/pause/main.go"
        "$here/podnet/main.go" "$here/sample/main.go" "$0")
sample_repo="$root/examples/gitops-repo"
mapfile -t sample_files < <(find "$sample_repo/k8s" "$sample_repo/charts" -type f | sort)
inputs+=("${sample_files[@]}")
for f in "${inputs[@]}"; do
  [ -f "$f" ] || { echo "missing $f (run: python -m tools.localcluster.build)" >&2; exit 1; }
done
# The Debian-based images build on the machine image: rebuild when it changed.
base_id=$(podman image inspect --format '{{.Id}}' "$base" 2>/dev/null) \
  || { echo "missing $base (run: tests/images/build.sh bookworm)" >&2; exit 1; }
# The machines themselves: the machine image plus sshd and the login user
# (Containerfile.node). Not pushed: podman runs it. podman's layer cache makes
# this a few seconds when nothing changed.
node_image=${ECOECO_NODE_IMAGE:-localhost/ecoeco-node}:bookworm
podman build -q -f "$here/Containerfile.node" --build-arg "BASE=$base" -t "$node_image" "$here/node" >/dev/null
echo "machine image $node_image" >&2
if [ -f "$list" ] && [ "$(cat "$list.base" 2>/dev/null)" = "$base_id" ] \
   && [ -z "$(find "${inputs[@]}" -newer "$list" 2>/dev/null)" ]; then
  fresh=1
  while read -r name; do
    podman image exists "$name" || { fresh=0; break; }
  done <"$list"
  if [ "$fresh" = 1 ]; then
    echo "$list"
    exit 0
  fi
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
for release in "${releases[@]}"; do
  for binary in kube-apiserver kube-controller-manager kube-scheduler; do
    build "$cache/bin/kubernetes-$release/$binary" "$binary:$release"
  done
done
build "$etcd_bin/etcd" "etcd:$etcd"

on_debian() {  # $1 Containerfile, $2 image name:tag, $3... files of the context
  local file=$1 image=$2 dir; shift 2
  dir=$(mktemp -d "$ctx/debian.XXXXXX")
  [ $# -eq 0 ] || cp "$@" "$dir/"
  podman build -q -f "$file" --build-arg "BASE=$base" -t "$image" "$dir" >/dev/null
  images+=("$image")
}
for release in "${releases[@]}"; do
  on_debian "$here/Containerfile.kube-proxy" "$REPO/kube-proxy:$release" "$cache/bin/kubernetes-$release/kube-proxy"
done
on_debian "$here/Containerfile.argocd" "$argocd_image" "$argocd_bin/argocd" "$kustomize_bin/kustomize" \
  "$helm_bin/helm" "$here/argocd/gpg-wrapper.sh" "$here/argocd/git-verify-wrapper.sh"
on_debian "$here/Containerfile.redis" "$redis_image"
for coredns in "${!corednses[@]}"; do
  mkdir -p "$ctx/coredns-$coredns"
  cp "$cache/bin/coredns-$coredns/coredns" "$ctx/coredns-$coredns/"
  podman build -q -f "$here/Containerfile.coredns" -t "$REPO/coredns:$coredns" "$ctx/coredns-$coredns" >/dev/null
  images+=("$REPO/coredns:$coredns")
done

mkdir -p "$ctx/go"
(cd "$here/podnet" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$ctx/go/podnet" .)
build "$ctx/go/podnet" "podnet:$PODNET_TAG"

(cd "$here/sample" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$ctx/go/sample" .)
mkdir -p "$ctx/sample"
cp "$ctx/go/sample" "$ctx/sample/"
podman build -q -f "$here/Containerfile.sample" -t "$REPO/sample:v1" "$ctx/sample" >/dev/null
images+=("$REPO/sample:v1")
{
  for overlay in "$sample_repo"/k8s/*/overlays/prod; do
    [ -f "$overlay/kustomization.yaml" ] && "$kustomize_bin/kustomize" build "$overlay"
  done
  for values in "$sample_repo"/k8s/*/overlays/prod/values.yaml; do   # Helm charts of the repo, per overlay
    chart="$sample_repo/charts/$(basename "$(dirname "$(dirname "$(dirname "$values")")")")"
    HELM_CACHE_HOME="$ctx/helm" HELM_CONFIG_HOME="$ctx/helm" HELM_DATA_HOME="$ctx/helm" \
      "$helm_bin/helm" template sample "$chart" --values "$values"
  done
} | sed -n 's/^ *image: *//p' | tr -d "\"'" | sort -u >"$ctx/sample-images"   # helm quotes its image values
while read -r name; do
  podman tag "$REPO/sample:v1" "$name"
  images+=("$name")
done <"$ctx/sample-images"

mkdir -p "$ctx/pause"
(cd "$here/pause" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$ctx/pause/pause" .)
podman build -q -f "$here/Containerfile.pause" -t "$REPO/pause:$PAUSE_TAG" "$ctx/pause" >/dev/null
images+=("$REPO/pause:$PAUSE_TAG")

mkdir -p "$(dirname "$list")"
printf '%s\n' "${images[@]}" >"$list.tmp"
mv "$list.tmp" "$list"
echo "$base_id" >"$list.base"
echo "built ${images[*]} in $(( $(date +%s) - start ))s" >&2
echo "$list"
