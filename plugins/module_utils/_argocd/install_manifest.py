# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""An Argo CD release manifest (install.yaml) adapted to a namespace, a pull policy and replica counts.

One implementation for the ``argocd_install_docs`` filter and for ``k8s_manifest``'s ``argocd_install``
option (the argocd role: the module reads install.yaml itself, so a rerun sends no megabytes of documents
through the task's arguments).
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping, Optional

WORKLOAD_KINDS = ("Deployment", "StatefulSet")
# What makes a manifest an Argo CD install: the Application CRD and argocd-cm.
REQUIRED = (("CustomResourceDefinition", "applications.argoproj.io"), ("ConfigMap", "argocd-cm"))


class InstallManifestError(ValueError):
    """The manifest cannot be adapted (a message for the filter or the module)."""


def _adapt_workload(doc: Dict[str, Any], pull_policy: str, replicas: Mapping[str, Any]) -> Dict[str, Any]:
    name = (doc.get("metadata") or {}).get("name")
    if not pull_policy and name not in replicas:
        return doc
    doc = copy.deepcopy(doc)
    spec = doc.setdefault("spec", {})
    pod = spec.setdefault("template", {}).setdefault("spec", {})
    if pull_policy:
        for key in ("containers", "initContainers"):
            for container in pod.get(key) or []:
                container["imagePullPolicy"] = pull_policy
    if name in replicas:
        try:
            spec["replicas"] = int(replicas[name])
        except (TypeError, ValueError) as exc:
            raise InstallManifestError(f"workload_replicas[{name!r}] is not a number") from exc
    return doc


def adapt_install_docs(docs: List[Any], namespace: str = "argocd", image_pull_policy: str = "",
                       workload_replicas: Optional[Mapping[str, Any]] = None,
                       with_namespace: bool = False) -> List[Dict[str, Any]]:
    """The manifest's objects, empty documents dropped, ClusterRoleBinding subjects in ``namespace``, the
    workloads' pull policy and replicas set; with ``with_namespace`` a Namespace object for ``namespace`` first
    unless the manifest has one (install.yaml has none). The input documents are not modified."""
    replicas = workload_replicas or {}
    out: List[Dict[str, Any]] = []
    names = {(d.get("kind"), (d.get("metadata") or {}).get("name")) for d in docs if isinstance(d, dict)}
    if with_namespace and ("Namespace", namespace) not in names:
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    for doc in docs:
        if not doc:
            continue
        if not isinstance(doc, dict):
            raise InstallManifestError("every document must be a Kubernetes object (a mapping)")
        kind = doc.get("kind")
        if kind == "ClusterRoleBinding" and namespace != "argocd":
            doc = dict(doc, subjects=[dict(s, namespace=namespace) for s in doc.get("subjects") or []])
        elif kind in WORKLOAD_KINDS:
            doc = _adapt_workload(doc, image_pull_policy, replicas)
        out.append(doc)
    return out


def install_error(docs: List[Dict[str, Any]]) -> str:
    """Why ``docs`` are not an Argo CD install manifest (no Application CRD or no argocd-cm), or ''."""
    seen = {(d.get("kind"), (d.get("metadata") or {}).get("name")) for d in docs if isinstance(d, dict)}
    missing = [f"{kind} {name}" for kind, name in REQUIRED if (kind, name) not in seen]
    if missing:
        return f"lacks {' and '.join(missing)}: not an Argo CD install manifest?"
    return ""
