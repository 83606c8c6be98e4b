"""Unit tests of k8s_manifest's reading of its documents: src, url and the argocd_install adaptation."""

from __future__ import annotations

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError
from ansible_collections.ecoeco.gitops.plugins.modules import k8s_manifest
from tests.unit.plugins.filter.test_argocd_install_docs import MANIFEST

# Argo CD's install.yaml in small: a CRD, then the filter test's sample (a binding, a Deployment, a ConfigMap).
INSTALL = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: applications.argoproj.io}
spec: {group: argoproj.io, names: {kind: Application, plural: applications}, scope: Namespaced,
       versions: [{name: v1alpha1}]}
---""" + MANIFEST


def _params(**kwargs):
    params = {"definition": None, "src": None, "url": None, "argocd_install": None}
    params.update(kwargs)
    return params


def _install(namespace="argocd", image_pull_policy="", workload_replicas=None):
    return {"namespace": namespace, "image_pull_policy": image_pull_policy,
            "workload_replicas": workload_replicas or {}}


def test_src_is_read_and_adapted_in_the_module(tmp_path):
    src = tmp_path / "install.yaml"
    src.write_text(INSTALL, encoding="utf-8")
    docs = k8s_manifest.load_documents(_params(src=str(src), argocd_install=_install(
        "gitops", "Never", {"argocd-dex-server": 0})))
    assert [d["kind"] for d in docs] == ["Namespace", "CustomResourceDefinition", "ClusterRoleBinding",
                                         "Deployment", "ConfigMap"]
    assert docs[0]["metadata"]["name"] == "gitops"
    assert docs[2]["subjects"][0]["namespace"] == "gitops"
    assert docs[3]["spec"]["replicas"] == 0
    assert docs[3]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_without_argocd_install_the_file_is_applied_as_it_is(tmp_path):
    src = tmp_path / "install.yaml"
    src.write_text(INSTALL, encoding="utf-8")
    docs = k8s_manifest.load_documents(_params(src=str(src)))
    assert [d["kind"] for d in docs] == ["CustomResourceDefinition", "ClusterRoleBinding", "Deployment", "ConfigMap"]
    assert docs[1]["subjects"][0]["namespace"] == "argocd"


def test_a_manifest_that_is_not_an_argocd_install_is_refused(tmp_path):
    src = tmp_path / "calico.yaml"
    src.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: calico-config}\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"lacks CustomResourceDefinition applications.argoproj.io and "
                                              r"ConfigMap argocd-cm: not an Argo CD install manifest\?"):
        k8s_manifest.load_documents(_params(src=str(src), argocd_install=_install()))


def test_bad_replicas_are_named(tmp_path):
    src = tmp_path / "install.yaml"
    src.write_text(INSTALL, encoding="utf-8")
    with pytest.raises(ValidationError, match=r"argocd_install: workload_replicas\['argocd-dex-server'\]"):
        k8s_manifest.load_documents(_params(src=str(src), argocd_install=_install(
            workload_replicas={"argocd-dex-server": "many"})))


def test_url_is_fetched_by_the_module(tmp_path):
    src = tmp_path / "install.yaml"
    src.write_text(INSTALL, encoding="utf-8")
    docs = k8s_manifest.load_documents(_params(url=src.as_uri(), argocd_install=_install()))
    assert docs[0]["kind"] == "Namespace" and len(docs) == 5


def test_an_unreachable_url_is_named():
    with pytest.raises(ValidationError, match=r"url http://127.0.0.1:9/install.yaml: cannot fetch it"):
        k8s_manifest.load_documents(_params(url="http://127.0.0.1:9/install.yaml"))


def test_invalid_yaml_in_src_is_named(tmp_path):
    src = tmp_path / "bad.yaml"
    src.write_text("kind: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=f"src {src}: not valid YAML"):
        k8s_manifest.load_documents(_params(src=str(src)))
