"""Application objects shaped like the ones Argo CD v3.6 writes (recorded field layout)."""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

REPO = "file:///srv/gitops"
COMMIT = "4f2a1c9e0b7d5a3c8e6f1b2d9a0c7e5f3b1d8a6c"
OLD_COMMIT = "0b7d5a3c8e6f1b2d9a0c7e5f3b1d8a6c4f2a1c9e"
CACHED_ERROR = ("Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: "
                "code = Unknown desc = Manifest generation error (cached): apps/broken: app path does not exist")


def source(path: str, revision: str = "main", repo: str = REPO) -> Dict[str, Any]:
    return {"repoURL": repo, "path": path, "targetRevision": revision}


def application(name: str, wave: Any = None, *, namespace: str = "argocd", root: Optional[str] = "root",
                path: Optional[str] = None, revision: str = "main", sync: Optional[str] = "Synced",
                health: Optional[str] = "Healthy", commit: str = COMMIT, compared_revision: Optional[str] = None,
                conditions: Optional[List[Dict[str, Any]]] = None, operation_phase: Optional[str] = "Succeeded",
                op_started: str = "2026-11-24T14:00:05Z", op_revision: Optional[str] = None,
                health_since: str = "2026-11-24T14:00:00Z", resources: Optional[List[Dict[str, Any]]] = None,
                rv: str = "100", annotations: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """One Application; ``sync=None`` leaves the status out (a freshly created app)."""
    ann = {}
    if wave is not None:
        ann["argocd.argoproj.io/sync-wave"] = str(wave)
    if root:
        ann["argocd.argoproj.io/tracking-id"] = f"{root}:argoproj.io/Application:{namespace}/{name}"
    ann.update(annotations or {})
    src = source(path or f"apps/{name}", revision)
    obj: Dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv, "annotations": ann,
                     "creationTimestamp": "2026-11-24T13:59:50Z", "generation": 3},
        "spec": {"project": "default", "source": src,
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
                 "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}},
    }
    if sync is None:
        return obj
    compared = copy.deepcopy(src)
    if compared_revision is not None:
        compared["targetRevision"] = compared_revision
    status: Dict[str, Any] = {
        "sync": {"status": sync, "revision": commit,
                 "comparedTo": {"source": compared, "destination": obj["spec"]["destination"]}},
        "health": {"status": health, "lastTransitionTime": health_since},
        "reconciledAt": "2026-11-24T14:00:06Z",
        "sourceType": "Kustomize",
        "resources": resources or [],
        "summary": {},
    }
    if conditions:
        status["conditions"] = conditions
    if operation_phase:
        status["operationState"] = {
            "operation": {"sync": {"revision": op_revision or commit}, "initiatedBy": {"automated": True},
                          "retry": {"limit": 5}},
            "phase": operation_phase,
            "message": {"Succeeded": "successfully synced (all tasks run)",
                        "Running": "waiting for completion of hook batch/Job/migrate",
                        "Failed": "one or more objects failed to apply, reason: Job.batch \"migrate\" is invalid",
                        "Error": "ComparisonError: app path does not exist"}.get(operation_phase, ""),
            "startedAt": op_started,
            "syncResult": {"revision": op_revision or commit, "source": src, "resources": []},
        }
        if operation_phase != "Running":
            status["operationState"]["finishedAt"] = op_started
    obj["status"] = status
    return obj


def comparison_error(message: str = CACHED_ERROR, since: str = "2026-11-24T14:00:02Z") -> Dict[str, Any]:
    return {"type": "ComparisonError", "message": message, "lastTransitionTime": since}


def child_entry(name: str, wave: int = 0, status: str = "Synced", health: Optional[str] = "Healthy",
                namespace: str = "argocd") -> Dict[str, Any]:
    entry = {"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "namespace": namespace,
             "name": name, "status": status, "syncWave": wave}
    if health:
        entry["health"] = {"status": health}
    return entry


def root_app(children: List[Dict[str, Any]], name: str = "root", revision: str = "main",
             rv: str = "90", compared_revision: Optional[str] = None, sync: str = "Synced") -> Dict[str, Any]:
    """A root App-of-Apps listing ``children`` (``child_entry`` dicts) in status.resources."""
    return application(name, None, root=None, path="argocd/applications", revision=revision, resources=children,
                       rv=rv, compared_revision=compared_revision, sync=sync)


def workload_resource(kind: str, namespace: str, name: str, health: str, message: str = "") -> Dict[str, Any]:
    entry = {"group": "apps", "version": "v1", "kind": kind, "namespace": namespace, "name": name,
             "status": "Synced", "health": {"status": health}}
    if message:
        entry["health"]["message"] = message
    return entry


def event(kind: str, obj: Dict[str, Any]) -> Dict[str, Any]:
    return {"type": kind, "object": obj}


def bookmark(rv: str) -> Dict[str, Any]:
    return {"type": "BOOKMARK", "object": {"kind": "Application", "apiVersion": "argoproj.io/v1alpha1",
                                           "metadata": {"resourceVersion": rv}}}


def gone(message: str = "too old resource version: 5 (120)") -> Dict[str, Any]:
    return {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "message": message, "reason": "Expired", "code": 410}}


# -- ApplicationSets (field layout of Argo CD v3.6's applicationset-controller) --------------------------
UP_TO_DATE = {"type": "ResourcesUpToDate", "status": "True", "reason": "ApplicationSetUpToDate",
              "message": "All applications have been generated successfully"}


def set_entry(name: str, wave: int = 0, namespace: str = "argocd") -> Dict[str, Any]:
    """A root's status.resources entry for an ApplicationSet."""
    return {"group": "argoproj.io", "version": "v1alpha1", "kind": "ApplicationSet", "namespace": namespace,
            "name": name, "status": "Synced", "health": {"status": "Healthy"}, "syncWave": wave}


def appset(name: str, apps: List[str], *, namespace: str = "argocd", uid: Optional[str] = None,
           conditions: Optional[List[Dict[str, Any]]] = None, status: bool = True, count: Optional[int] = None,
           rv: str = "100", application_status: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """An ApplicationSet listing ``apps`` in status.resources; ``status=False`` = not reconciled yet."""
    obj: Dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}", "resourceVersion": rv,
                     "annotations": {"argocd.argoproj.io/tracking-id":
                                     f"root:argoproj.io/ApplicationSet:{namespace}/{name}"}},
        "spec": {"goTemplate": True, "generators": [{"list": {"elements": [{"name": a} for a in apps]}}],
                 "template": {"metadata": {"name": "{{.name}}"},
                              "spec": {"project": "default", "source": source("apps/{{.name}}"),
                                       "destination": {"server": "https://kubernetes.default.svc",
                                                       "namespace": "{{.name}}"}}}},
    }
    if not status:
        return obj
    obj["status"] = {
        "conditions": conditions if conditions is not None else [
            {"type": "ErrorOccurred", "status": "False", "reason": "ApplicationSetUpToDate",
             "message": "Successfully generated parameters for all Applications"},
            {"type": "ParametersGenerated", "status": "True", "reason": "ParametersGenerated",
             "message": "Successfully generated parameters for all Applications"},
            UP_TO_DATE],
        "resources": [{"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "namespace": namespace,
                       "name": a, "status": "Synced", "health": {"status": "Healthy"}} for a in apps],
        "resourcesCount": len(apps) if count is None else count,
    }
    if application_status is not None:
        obj["status"]["applicationStatus"] = application_status
    return obj


def generated(name: str, set_name: str, wave: Any = None, **kw: Any) -> Dict[str, Any]:
    """An Application generated by ApplicationSet ``set_name`` (controller ownerReference, no root tracking)."""
    app = application(name, wave, root=None, **kw)
    app["metadata"]["ownerReferences"] = [{"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
                                           "name": set_name, "uid": f"uid-{set_name}", "controller": True,
                                           "blockOwnerDeletion": True}]
    return app


def error_occurred(message: str) -> List[Dict[str, Any]]:
    return [{"type": "ErrorOccurred", "status": "True", "reason": "ApplicationGenerationFromParamsError",
             "message": message},
            {"type": "ResourcesUpToDate", "status": "False", "reason": "ApplicationGenerationFromParamsError",
             "message": message}]
