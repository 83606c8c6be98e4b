# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""``argocd_install_docs``: an Argo CD release manifest as objects, adapted to a namespace and options."""

from __future__ import annotations

DOCUMENTATION = r"""
name: argocd_install_docs
short_description: Parse an Argo CD install manifest and adapt it to a namespace, pull policy and replicas
version_added: "0.1.0"
description:
  - Parses the YAML documents of an Argo CD release manifest (C(install.yaml)) once, with the C library of PyYAML
    when present, and returns the objects for M(ecoeco.gitops.k8s_manifest).
  - The ClusterRoleBindings' subjects are moved to O(namespace) (C(install.yaml) names C(argocd)).
  - Containers and init containers of the Deployments and StatefulSets get O(image_pull_policy) when set; the
    workloads named in O(workload_replicas) get that many replicas.
  - Parsing a release manifest of a few megabytes in a Jinja loop takes seconds on every run; this takes a fraction
    of a second.
options:
  _input:
    description: The manifest text.
    type: str
    required: true
  namespace:
    description: The namespace Argo CD is installed in.
    type: str
    default: argocd
  image_pull_policy:
    description: C(imagePullPolicy) for every container of the Argo CD workloads; empty keeps the manifest's.
    type: str
    default: ""
  workload_replicas:
    description: "Replicas per Deployment/StatefulSet name, for example C({argocd-dex-server: 0})."
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Install Argo CD in namespace gitops, without Dex
  ecoeco.gitops.k8s_manifest:
    definition: >-
      {{ lookup('ansible.builtin.file', 'install.yaml')
         | ecoeco.gitops.argocd_install_docs('gitops', workload_replicas={'argocd-dex-server': 0}) }}
    namespace: gitops
"""

RETURN = r"""
_value:
  description: The manifest's objects (empty documents dropped), adapted as described.
  type: list
  elements: dict
"""

import copy
from typing import Any, Dict, List, Mapping, Optional

from ansible.errors import AnsibleFilterError

try:
    import yaml
    LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
except ImportError:  # pragma: no cover - ansible-core requires PyYAML
    yaml = None
    LOADER = None

WORKLOAD_KINDS = ("Deployment", "StatefulSet")


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
            raise AnsibleFilterError(f"argocd_install_docs: workload_replicas[{name!r}] is not a number") from exc
    return doc


def argocd_install_docs(text: str, namespace: str = "argocd", image_pull_policy: str = "",
                        workload_replicas: Optional[Mapping[str, Any]] = None) -> List[Dict[str, Any]]:
    """The manifest's objects, with ClusterRoleBinding subjects in ``namespace`` and the workload options applied."""
    if not isinstance(text, str):
        raise AnsibleFilterError("argocd_install_docs: the input must be the manifest's YAML text")
    replicas = workload_replicas or {}
    try:
        # bytes: the C loader takes only exact str or bytes, not ansible-core's tagged str subclass
        docs = [d for d in yaml.load_all(text.encode("utf-8"), Loader=LOADER) if d]
    except yaml.YAMLError as exc:
        raise AnsibleFilterError(f"argocd_install_docs: the manifest is not valid YAML: {exc}") from exc
    out = []
    for doc in docs:
        if not isinstance(doc, dict):
            raise AnsibleFilterError("argocd_install_docs: every document must be a Kubernetes object (a mapping)")
        kind = doc.get("kind")
        if kind == "ClusterRoleBinding" and namespace != "argocd":
            doc = dict(doc, subjects=[dict(s, namespace=namespace) for s in doc.get("subjects") or []])
        elif kind in WORKLOAD_KINDS:
            doc = _adapt_workload(doc, image_pull_policy, replicas)
        out.append(doc)
    return out


class FilterModule:
    """ecoeco.gitops filters."""

    def filters(self) -> Dict[str, Any]:
        return {"argocd_install_docs": argocd_install_docs}
