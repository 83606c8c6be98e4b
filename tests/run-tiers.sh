#!/usr/bin/env bash
# Test tiers. `make test` runs every tier this machine can run, in order, and
# stops at the first failing one; `tests/run-tiers.sh integration` (etc.) runs
# one tier. Tiers on the real cluster run one pytest process per test file, so
# each file gets a fresh control plane (and Argo CD) and no file sees what
# another left behind. pytest's exit 5 ("collected nothing") is a failure: an
# empty tier cannot pass silently.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PY=.venv/bin/python
declare -a order=()
declare -A took=()

summary() {
  echo "=== seconds per step:"
  for n in "${order[@]}"; do printf '  %-48s %5ss\n' "$n" "${took[$n]}"; done
}

run() {  # run NAME CMD...: time a command, fail the whole run on error
  local name=$1; shift
  echo "=== $name: $*"
  local start rc
  start=$(date +%s)
  "$@"; rc=$?
  took[$name]=$(( $(date +%s) - start )); order+=("$name")
  if [ "$rc" -eq 5 ]; then echo "=== $name collected no tests: failing"; summary; exit 1; fi
  if [ "$rc" -ne 0 ]; then echo "=== $name failed (rc=$rc)"; summary; exit "$rc"; fi
}

per_file() {  # per_file MARKER DIR: one pytest process per test file
  local marker=$1 dir=$2 f
  for f in "$dir"/test_*.py; do
    [ -e "$f" ] || continue
    run "$marker:$(basename "$f" .py)" "$PY" -m pytest -m "$marker" "$f" -q -p no:cacheprovider
  done
}

tier() {
  case $1 in
    unit)        run unit "$PY" -m pytest tests/unit -q -p no:cacheprovider ;;
    sanity)      run sanity bash tests/sanity.sh ;;
    # ansible-core 2.17 (lowest claimed) and 2.21 (newest, in a trixie container):
    # sanity, unit and one integration file each (tests/ansible-versions.sh).
    versions)    run versions bash tests/ansible-versions.sh ;;
    aws)         per_file aws tests/aws ;;
    integration) per_file controlplane tests/integration ;;
    e2e)         per_file argocd tests/e2e ;;
    hooks)       per_file hooks tests/hooks ;;
    # multi_machine (three machines, serial kubeadm join; passed twice in a row on
    # both releases) costs 10-20 min per release, beyond CI's 90 minutes with the
    # other tiers: run it with `make test-molecule ARGS=multi_machine`.
    molecule)    run molecule bash tests/molecule.sh default kubeadm control_plane ;;
    *) echo "unknown tier $1 (unit sanity versions aws integration e2e hooks molecule)"; exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then set -- unit sanity versions aws integration e2e hooks molecule; fi
for t in "$@"; do tier "$t"; done
summary
