#!/usr/bin/env bash
# Run the molecule scenarios on podman machines, on every Debian release of
# the matrix, and print converge / second-converge (idempotence) times.
#
#   tests/molecule.sh [scenario ...]          (default: every scenario)
#   MOLECULE_DISTRO="bookworm" tests/molecule.sh control_plane
#
# Machines: tests/images/build.sh (debootstrap + podman import, cached by
# recipe hash; podman/runc/debootstrap from tests/tools/ensure-podman.sh).
# Binaries for the offline kubeadm install: the harness's Go build of
# versions.yml's Kubernetes, ~/.cache/ecoeco-gitops/bin/kubernetes-<version>/.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
export PATH="$ROOT/.venv/bin:$PATH"
export CONTAINERS_CONF="$ROOT/tests/images/containers.conf"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.collections"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
unset ANSIBLE_CONFIG  # molecule writes its own ansible.cfg per scenario

distros=${MOLECULE_DISTRO:-bookworm trixie}
if [ $# -gt 0 ]; then scenarios=("$@"); else scenarios=(default kubeadm control_plane multi_machine); fi
logs="$ROOT/tests/output/molecule"; mkdir -p "$logs"

# shellcheck disable=SC2086
bash tests/images/build.sh $distros || exit 1

K8S_VERSION=$(.venv/bin/python -c 'from tools.localcluster.versions import VERSIONS; print(VERSIONS["kubernetes"])')
K8S_BIN="${ECOECO_CACHE:-$HOME/.cache/ecoeco-gitops}/bin/kubernetes-$K8S_VERSION"
needs_k8s=0
for s in "${scenarios[@]}"; do [ "$s" != default ] && needs_k8s=1; done
# A build another run holds is waited for (the build's lock), not repeated.
if [ "$needs_k8s" = 1 ] && [ ! -x "$K8S_BIN/kubelet" ]; then
  .venv/bin/python -m tools.localcluster.build kubernetes || exit 1
fi
export ECOECO_K8S_BIN_DIR="$K8S_BIN"

# Join tokens must never reach the output.
TOKEN_RE='[a-z0-9]{6}\.[a-z0-9]{16}'
declare -a summary
rc_all=0

step() {  # $1 scenario $2 distro $3 action -> seconds in $took, output in the log
  local start log="$logs/$1-$2-$3.log"
  start=$EPOCHREALTIME
  MOLECULE_DISTRO=$2 molecule "$3" -s "$1" >"$log" 2>&1
  local rc=$?
  took=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  if [ $rc -ne 0 ]; then echo "  $3 FAILED (rc=$rc), log: $log"; tail -40 "$log"; fi
  return $rc
}

for d in $distros; do
  for s in "${scenarios[@]}"; do
    # One run of a scenario at a time on this machine (its instance names
    # and molecule state are per scenario): a concurrent invocation waits.
    exec {lock}>"${TMPDIR:-/tmp}/ecoeco-molecule-$s.lock"
    flock "$lock"
    echo "=== molecule $s on $d"
    MOLECULE_DISTRO=$d molecule destroy -s "$s" >/dev/null 2>&1
    ok=1; conv=-; idem=-
    step "$s" "$d" create || ok=0
    if [ $ok = 1 ]; then step "$s" "$d" converge && conv=$took || ok=0; fi
    if [ $ok = 1 ]; then step "$s" "$d" idempotence && idem=$took || ok=0; fi
    if [ $ok = 1 ]; then step "$s" "$d" verify || ok=0; fi
    if [ $ok = 1 ] && grep -E -q "$TOKEN_RE" "$logs/$s-$d-converge.log" "$logs/$s-$d-idempotence.log"; then
      echo "  a join token appears in the output"; ok=0
    fi
    if [ $ok = 1 ] && [ "$s" = multi_machine ]; then
      # serial: 1 -> one batch per worker, in inventory order
      batches=$(grep -oE 'join batch: [^(]*' "$logs/$s-$d-converge.log" | sed -E 's/ +$//')
      # shellcheck disable=SC2001  # indent a multi-line value
      echo "$batches" | sed 's/^/  /'
      [ "$(echo "$batches" | tr '\n' '|')" = "join batch: eco-mm-worker1|join batch: eco-mm-worker2|" ] || { echo "  unexpected join batches"; ok=0; }
    fi
    step "$s" "$d" destroy || true
    status=$([ $ok = 1 ] && echo passed || echo FAILED)
    [ $ok = 1 ] || rc_all=1
    flock -u "$lock"; exec {lock}>&-
    summary+=("$(printf '%-14s %-9s %-7s converge %6ss  second converge %6ss' "$s" "$d" "$status" "$conv" "$idem")")
  done
done

echo "=== molecule summary"
printf '%s\n' "${summary[@]}"
exit $rc_all
