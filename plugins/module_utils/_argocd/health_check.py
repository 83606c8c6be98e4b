# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Which Application health check argocd-cm carries, and so whether Argo CD gates waves.

Without a health check for ``argoproj.io/Application`` Argo CD treats child
Applications as healthy at once and syncs later waves straight away.  The
check from Argo CD's documentation copies ``status.health``, which stays
Healthy for an app that cannot even render its manifests (ComparisonError), so
it gates only partly.  A *gating* check also looks at the sync status or the
conditions.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import CONFIGMAPS, K8sError

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    yaml = None

ARGOCD_CM = "argocd-cm"
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
COMBINED_KEY = "resource.customizations"

GATING, DOCUMENTED, MISSING, UNKNOWN = "gating", "documented", "missing", "unknown"

# A script that reads the sync status or the error conditions gates on more than health.
_GATING_HINTS = re.compile(r"status\.sync|\bsync\b|Synced|OutOfSync|conditions|ComparisonError|InvalidSpecError")

WARNINGS = {
    MISSING: ("argocd-cm has no health check for argoproj.io/Application: Argo CD will not hold back later "
              "waves (it syncs them while earlier ones are still progressing); the verifier judges every app "
              "itself"),
    DOCUMENTED: ("argocd-cm has only the documented Application health check (it copies status.health): Argo CD "
                 "will not hold back later waves behind an app that cannot render or sync (ComparisonError, "
                 "OutOfSync); install the gating check of the ecoeco.gitops.argocd role"),
}


# The report's last line: which check Argo CD has, and what it means for the waves.
SENTENCES = {
    GATING: "health check: gating (argocd-cm) - Argo CD holds back each wave until the earlier ones are Synced and "
            "Healthy",
    DOCUMENTED: "health check: documented (argocd-cm) - Argo CD syncs later waves past an app that cannot render or "
                "sync",
    MISSING: "health check: none in argocd-cm - Argo CD does not hold back later waves at all",
    UNKNOWN: "health check: unknown (argocd-cm not readable)",
}


def script_from_configmap(data: dict) -> Optional[str]:
    """The Lua of the Application health check, from either key form, or None."""
    if data.get(HEALTH_KEY):
        return data[HEALTH_KEY]
    combined = data.get(COMBINED_KEY)
    if combined and yaml is not None:
        try:
            parsed = yaml.safe_load(combined) or {}
        except yaml.YAMLError:
            return None
        entry = parsed.get("argoproj.io/Application") if isinstance(parsed, dict) else None
        if isinstance(entry, dict):
            return entry.get("health.lua")
    return None


def classify_script(script: Optional[str]) -> str:
    if not script or not script.strip():
        return MISSING
    code = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return GATING if _GATING_HINTS.search(code) else DOCUMENTED


def read_health_check(client: Any, namespace: str) -> Tuple[str, Optional[str]]:
    """(``gating``|``documented``|``missing``|``unknown``, warning or None) from one GET of argocd-cm."""
    try:
        cm = client.get(CONFIGMAPS, ARGOCD_CM, namespace)
    except K8sError as exc:
        if exc.status in (401, 403):
            return UNKNOWN, (f"cannot read ConfigMap {namespace}/{ARGOCD_CM} ({exc.status}): whether Argo CD "
                             "gates waves on Application health is unknown")
        raise
    if cm is None:
        return MISSING, f"ConfigMap {namespace}/{ARGOCD_CM} does not exist; " + WARNINGS[MISSING]
    kind = classify_script(script_from_configmap(cm.get("data") or {}))
    return kind, WARNINGS.get(kind)
