#!/usr/bin/env bash
# Baseline: the Argo CD CLI in core mode (no argocd-server; it talks to the
# Kubernetes API with the kubeconfig), one `app wait` per wave with the
# wave's label selector. Writes "<wave> <epoch seconds>" after each wave.
set -euo pipefail
: "${ARGOCD_BIN:?path of the argocd binary}" "${WAVE_TIMES_FILE:=/dev/null}"
for wave in ${WAVES:-0 1 2 3}; do
  "$ARGOCD_BIN" app wait --core -l "bench.ecoeco.io/wave=${wave}" --sync --health --timeout 600
  echo "${wave} ${EPOCHREALTIME}" >> "$WAVE_TIMES_FILE"
done
