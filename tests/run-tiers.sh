#!/usr/bin/env bash
# `make test`: every test tier this machine can run, in order; stops at the
# first failing tier. Tiers on the real cluster run one pytest process per test
# file, so each file gets a fresh control plane (and Argo CD) and no file sees
# what another left behind. pytest's exit 5 ("collected nothing") is a failure:
# an empty tier cannot pass silently.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PY=.venv/bin/python
declare -a order=()
declare -A took=()

run() {  # run NAME CMD...: time a command, fail the whole run on error
  local name=$1; shift
  echo "=== $name: $*"
  local start rc
  start=$(date +%s)
  "$@"; rc=$?
  took[$name]=$(( $(date +%s) - start )); order+=("$name")
  if [ "$rc" -eq 5 ]; then echo "=== $name collected no tests: failing"; exit 1; fi
  if [ "$rc" -ne 0 ]; then echo "=== $name failed (rc=$rc)"; summary; exit "$rc"; fi
}

summary() {
  echo "=== seconds per step:"
  for n in "${order[@]}"; do printf '  %-48s %5ss\n' "$n" "${took[$n]}"; done
}

per_file() {  # per_file MARKER DIR: one pytest process per test file
  local marker=$1 dir=$2 f
  for f in "$dir"/test_*.py; do
    [ -e "$f" ] || continue
    run "$marker:$(basename "$f" .py)" "$PY" -m pytest -m "$marker" "$f" -q -p no:cacheprovider
  done
}

run unit "$PY" -m pytest tests/unit -q -p no:cacheprovider
run sanity bash tests/sanity.sh
per_file aws tests/aws
per_file controlplane tests/integration
per_file argocd tests/e2e
per_file hooks tests/hooks
# multi_machine is left out until its second converge is proven (see molecule/README.md);
# run it with `make test-molecule ARGS=multi_machine`.
run molecule bash tests/molecule.sh default kubeadm control_plane
summary
