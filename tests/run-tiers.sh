#!/usr/bin/env bash
# Runs every test tier this machine can run, in order, and fails on the first
# failing tier. pytest's exit 5 ("collected nothing") is a failure here unless
# the tier is listed as not built yet, so an empty tier cannot pass silently.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PY=.venv/bin/python
tiers=(
  "unit|$PY -m pytest tests/unit -q"
  "sanity|bash tests/sanity.sh"
)
[ -d tests/integration ] && ls tests/integration/test_*.py >/dev/null 2>&1 && tiers+=("integration|$PY -m pytest -m controlplane tests/integration -q")
ls tests/e2e/test_*.py >/dev/null 2>&1 && tiers+=("e2e|$PY -m pytest -m argocd tests/e2e -q")
ls tests/aws/test_*.py >/dev/null 2>&1 && tiers+=("aws|$PY -m pytest -m aws tests/aws -q")
ls tests/hooks/test_*.py >/dev/null 2>&1 && tiers+=("hooks|$PY -m pytest -m hooks tests/hooks -q")
[ -d molecule ] && tiers+=("molecule|bash tests/molecule.sh")
declare -A took
for t in "${tiers[@]}"; do
  name=${t%%|*}; cmd=${t#*|}
  echo "=== tier $name: $cmd"
  start=$(date +%s)
  $cmd; rc=$?
  took[$name]=$(( $(date +%s) - start ))
  if [ "$rc" -eq 5 ]; then echo "tier $name collected no tests: failing"; exit 1; fi
  if [ "$rc" -ne 0 ]; then echo "tier $name failed (rc=$rc)"; exit "$rc"; fi
done
echo "=== tier times (s):"; for k in "${!took[@]}"; do echo "  $k ${took[$k]}"; done
