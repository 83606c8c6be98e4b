"""Unit tests of the argocd_install_docs filter (parsing and adapting an Argo CD install manifest)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ecoeco.gitops.plugins.filter.argocd_install_docs import argocd_install_docs

MANIFEST = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: argocd-server}
subjects:
  - {kind: ServiceAccount, name: argocd-server, namespace: argocd}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: argocd-dex-server}
spec:
  template:
    spec:
      initContainers: [{name: copyutil, image: quay.io/argoproj/argocd:v3.6.1}]
      containers: [{name: dex, image: ghcr.io/dexidp/dex:v2}]
---
---
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cm}
"""


def test_defaults_keep_the_manifest_as_published():
    docs = argocd_install_docs(MANIFEST)
    assert [d["kind"] for d in docs] == ["ClusterRoleBinding", "Deployment", "ConfigMap"]
    assert docs[0]["subjects"][0]["namespace"] == "argocd"
    assert "replicas" not in docs[1]["spec"]
    assert "imagePullPolicy" not in docs[1]["spec"]["template"]["spec"]["containers"][0]


def test_namespace_pull_policy_and_replicas():
    docs = argocd_install_docs(MANIFEST, "gitops", image_pull_policy="Never",
                               workload_replicas={"argocd-dex-server": "0"})
    assert docs[0]["subjects"][0]["namespace"] == "gitops"
    pod = docs[1]["spec"]["template"]["spec"]
    assert docs[1]["spec"]["replicas"] == 0
    assert pod["containers"][0]["imagePullPolicy"] == "Never"
    assert pod["initContainers"][0]["imagePullPolicy"] == "Never"


def test_input_is_not_modified_between_calls():
    first = argocd_install_docs(MANIFEST, image_pull_policy="Never")
    again = argocd_install_docs(MANIFEST)
    assert first[1] is not again[1]
    assert "imagePullPolicy" not in again[1]["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("text, message", [
    ("kind: [unclosed", "not valid YAML"),
    ("- a list\n", "must be a Kubernetes object"),
    (None, "must be the manifest's YAML text"),
])
def test_bad_input_is_named(text, message):
    with pytest.raises(AnsibleFilterError, match=message):
        argocd_install_docs(text)


def test_bad_replicas_value_names_the_workload():
    with pytest.raises(AnsibleFilterError, match="argocd-dex-server"):
        argocd_install_docs(MANIFEST, workload_replicas={"argocd-dex-server": "none"})
