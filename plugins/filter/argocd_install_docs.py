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
    of a second. The argocd role does not use it any more - M(ecoeco.gitops.k8s_manifest) reads the file and makes
    the same changes (its O(ecoeco.gitops.k8s_manifest#module:argocd_install) option), so no megabytes of
    documents go through a task's arguments; the filter stays for playbooks that need the objects themselves.
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

from typing import Any, Dict, List, Mapping, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.install_manifest import (
    InstallManifestError,
    adapt_install_docs,
)

try:
    import yaml
    LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
except ImportError:  # pragma: no cover - ansible-core requires PyYAML
    yaml = None
    LOADER = None


def argocd_install_docs(text: str, namespace: str = "argocd", image_pull_policy: str = "",
                        workload_replicas: Optional[Mapping[str, Any]] = None) -> List[Dict[str, Any]]:
    """The manifest's objects, with ClusterRoleBinding subjects in ``namespace`` and the workload options applied."""
    if not isinstance(text, str):
        raise AnsibleFilterError("argocd_install_docs: the input must be the manifest's YAML text")
    try:
        # bytes: the C loader takes only exact str or bytes, not ansible-core's tagged str subclass
        docs = list(yaml.load_all(text.encode("utf-8"), Loader=LOADER))
    except yaml.YAMLError as exc:
        raise AnsibleFilterError(f"argocd_install_docs: the manifest is not valid YAML: {exc}") from exc
    try:
        return adapt_install_docs(docs, namespace, image_pull_policy, workload_replicas)
    except InstallManifestError as exc:
        raise AnsibleFilterError(f"argocd_install_docs: {exc}") from exc


class FilterModule:
    """ecoeco.gitops filters."""

    def filters(self) -> Dict[str, Any]:
        return {"argocd_install_docs": argocd_install_docs}
