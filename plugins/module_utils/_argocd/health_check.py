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

ApplicationSets need two things more before Argo CD holds a later wave behind
their generated apps: a health check for ``argoproj.io/ApplicationSet`` that
reads the apps' sync and health from the set's status (Argo CD has none, so a
set counts Healthy as soon as it exists), and the applicationset-controller's
progressive syncs (without them it does not refresh that status when an app
changes).  :func:`applicationset_gating` tells which of them is missing.
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
PARAMS_CM = "argocd-cmd-params-cm"
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
SET_HEALTH_KEY = "resource.customizations.health.argoproj.io_ApplicationSet"
COMBINED_KEY = "resource.customizations"
PROGRESSIVE_KEY = "applicationsetcontroller.enable.progressive.syncs"

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


# The ApplicationSet check's verdicts, and the report's sentence for each.
SET_GATING, SET_NO_CHECK, SET_NOT_GATING, SET_NO_PROGRESSIVE = (
    "gating", "missing", "not-gating", "no-progressive-syncs")

# A set's check gates only if it reads its apps' state from the set's status.
_SET_GATING_HINTS = re.compile(r"applicationStatus|\.resources\b|\bhealth\b")

SET_SENTENCES = {
    SET_GATING: "ApplicationSet check: gating (argocd-cm, progressive syncs on) - Argo CD holds back later waves "
                "until every generated app is Synced and Healthy",
    SET_NO_CHECK: "ApplicationSet check: none in argocd-cm - Argo CD counts an ApplicationSet Healthy as soon as it "
                  "exists and syncs later waves while its apps are not ready; the verifier's ordering audit is the "
                  "guard",
    SET_NOT_GATING: "ApplicationSet check: present in argocd-cm but it does not read the generated apps' health - "
                    "Argo CD syncs later waves while they are not ready; the verifier's ordering audit is the guard",
    SET_NO_PROGRESSIVE: "ApplicationSet check: gating script, but progressive syncs are off (argocd-cmd-params-cm) - "
                        "the applicationset-controller does not refresh its apps' health in the set's status, so "
                        "Argo CD does not reliably hold back later waves; the verifier's ordering audit is the guard",
    UNKNOWN: "ApplicationSet check: unknown (argocd-cm or argocd-cmd-params-cm not readable)",
}


def script_from_configmap(data: dict, kind: str = "Application") -> Optional[str]:
    """The Lua of the ``argoproj.io/<kind>`` health check, from either key form, or None."""
    key = HEALTH_KEY if kind == "Application" else f"resource.customizations.health.argoproj.io_{kind}"
    if data.get(key):
        return data[key]
    combined = data.get(COMBINED_KEY)
    if combined and yaml is not None:
        try:
            parsed = yaml.safe_load(combined) or {}
        except yaml.YAMLError:
            return None
        entry = parsed.get(f"argoproj.io/{kind}") if isinstance(parsed, dict) else None
        if isinstance(entry, dict):
            return entry.get("health.lua")
    return None


def _code(script: str) -> str:
    return "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))


def classify_script(script: Optional[str]) -> str:
    if not script or not script.strip():
        return MISSING
    return GATING if _GATING_HINTS.search(_code(script)) else DOCUMENTED


def _read_configmap(client: Any, name: str, namespace: str) -> Tuple[Optional[dict], Optional[int]]:
    """(data or None when absent, HTTP status when the reader may not GET it)."""
    try:
        cm = client.get(CONFIGMAPS, name, namespace)
    except K8sError as exc:
        if exc.status in (401, 403):
            return None, exc.status
        raise
    return (None if cm is None else (cm.get("data") or {})), None


def read_health_check(client: Any, namespace: str) -> Tuple[str, Optional[str], Optional[dict]]:
    """(``gating``|``documented``|``missing``|``unknown``, warning or None, argocd-cm data) from one GET."""
    data, denied = _read_configmap(client, ARGOCD_CM, namespace)
    if denied:
        return UNKNOWN, (f"cannot read ConfigMap {namespace}/{ARGOCD_CM} ({denied}): whether Argo CD "
                         "gates waves on Application health is unknown"), None
    if data is None:
        return MISSING, f"ConfigMap {namespace}/{ARGOCD_CM} does not exist; " + WARNINGS[MISSING], {}
    kind = classify_script(script_from_configmap(data))
    return kind, WARNINGS.get(kind), data


def applicationset_gating(client: Any, namespace: str, argocd_cm: Optional[dict]) -> Tuple[str, Optional[str]]:
    """Whether Argo CD holds later waves behind an ApplicationSet's apps: (verdict, warning or None).

    ``argocd_cm``: the data :func:`read_health_check` returned (``{}`` when absent, None when unreadable).  Costs one GET of
    argocd-cmd-params-cm, and only when argocd-cm has a gating ApplicationSet script.
    """
    if argocd_cm is None:
        verdict = UNKNOWN
    else:
        script = script_from_configmap(argocd_cm, "ApplicationSet")
        if not script or not script.strip():
            verdict = SET_NO_CHECK
        elif not _SET_GATING_HINTS.search(_code(script)):
            verdict = SET_NOT_GATING
        else:
            params, denied = _read_configmap(client, PARAMS_CM, namespace)
            if denied:
                verdict = UNKNOWN
            elif str((params or {}).get(PROGRESSIVE_KEY, "")).strip().lower() != "true":
                verdict = SET_NO_PROGRESSIVE
            else:
                verdict = SET_GATING
    if verdict == SET_GATING:
        return verdict, None
    return verdict, SET_SENTENCES[verdict] + " (install the ApplicationSet check of the ecoeco.gitops.argocd role)"
