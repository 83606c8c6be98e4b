#!/usr/bin/env bash
# Install podman (once) and check it runs with the project's settings. Every
# tier that calls podman runs this first (tests/images/build.sh, which the
# molecule tier, the hook image test and the cluster test call; the hook
# image fixture directly), so no tier relies on an earlier tier or on what
# the host happens to have. Idempotent: seconds when everything is there.
#
#   tests/tools/ensure-podman.sh        (root, or sudo without a password)
#
# Packages, chosen explicitly rather than left to apt's alternatives:
# podman; runc (tests/images/containers.conf picks it: crun fails on this
# machine kind's hybrid cgroup hosts); netavark + aardvark-dns (the network
# backend containers.conf names) and iptables, which netavark 1.4 runs for a
# network's NAT and firewall rules (apt's own pick between the network stacks
# left it out); debootstrap (the machine images, tests/images/build.sh).
# apt's lock is waited for (bounded), and a failed install refreshes the
# package lists once and retries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="$here/../images/containers.conf"
PACKAGES=(podman runc netavark aardvark-dns iptables debootstrap)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
  echo "installing ${missing[*]} with apt" >&2
  start=$(date +%s)
  if ! "${apt[@]}" install -y "${missing[@]}" >/dev/null; then
    echo "apt-get install failed: refreshing the package lists and retrying" >&2
    "${apt[@]}" update >/dev/null
    "${apt[@]}" install -y "${missing[@]}" >/dev/null
  fi
  echo "installed ${missing[*]} in $(( $(date +%s) - start ))s" >&2
fi

# The settings every podman call of the tests uses must hold here.
got=$(timeout 120 podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.NetworkBackend}}')
if [ "$got" != "runc netavark" ]; then
  echo "podman runs with '$got', expected 'runc netavark' (CONTAINERS_CONF=$CONTAINERS_CONF)" >&2
  exit 1
fi
