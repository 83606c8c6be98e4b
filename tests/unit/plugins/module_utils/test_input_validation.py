"""Pure validation of every module's input: what is refused, and that the message names the option."""

from __future__ import annotations

import base64
import math

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils import manifest, node_labels, secrets
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd import admin_password, root_app
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd import sync_waves
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.sync_waves import verify_sync_waves
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ModuleFailure, ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_validation import seconds_error
from tests.support.argocd_objects import application
from tests.unit.plugins.module_utils._argocd.fake_k8s import FakeClient, FakeClock


@pytest.mark.parametrize("value, needle", [
    (float("nan"), "finite"), (math.inf, "finite"), (-math.inf, "finite"), (0, "positive"), (-1, "positive"),
    (0.0, "positive"), ("5", "number"), (True, "number"), (None, "number"),
])
def test_seconds_refused(value, needle):
    assert needle in seconds_error(value)


@pytest.mark.parametrize("value", [1, 0.5, 300, 1e6])
def test_seconds_accepted(value):
    assert seconds_error(value) == ""


# -- k8s_node_labels ---------------------------------------------------------------------------

def nl_params(**over):
    base = {"nodes": {"db-1": {"labels": {"workload": "db"}}}, "managed_prefixes": ["node.ecoeco.io/"],
            "parallelism": 8, "allow_kubernetes_prefixes": False}
    base.update(over)
    return base


@pytest.mark.parametrize("prefix", ["kubernetes.io/", "k8s.io/", "node-role.kubernetes.io/",
                                    "topology.kubernetes.io/", "node.kubernetes.io/", "k", "kube", "node.",
                                    "beta.kubernetes.io/", "sub.k8s.io/"])
def test_prefixes_covering_kubernetes_keys_are_refused(prefix):
    with pytest.raises(ValidationError) as exc:
        node_labels.validate(nl_params(managed_prefixes=[prefix]))
    assert f"managed_prefixes: '{prefix}' covers Kubernetes' own label namespaces" in str(exc.value)
    assert "allow_kubernetes_prefixes" in str(exc.value)


@pytest.mark.parametrize("prefix", ["node.ecoeco.io/", "ecoeco.io/", "example.com/team-", "workload"])
def test_own_prefixes_are_accepted(prefix):
    assert node_labels.validate(nl_params(managed_prefixes=[prefix])).prefixes == [prefix]


def test_kubernetes_prefix_with_the_force_option():
    checked = node_labels.validate(nl_params(managed_prefixes=["node-role.kubernetes.io/"],
                                             allow_kubernetes_prefixes=True))
    assert checked.prefixes == ["node-role.kubernetes.io/"]


@pytest.mark.parametrize("parallelism", [0, -1, 65, 1000])
def test_parallelism_out_of_range(parallelism):
    with pytest.raises(ValidationError, match=r"parallelism: must be a whole number from 1 to 64"):
        node_labels.validate(nl_params(parallelism=parallelism))


def test_validation_keeps_the_input_as_given():
    """No normalisation: a rerun plans from exactly what was declared (the no-op rerun stays one LIST)."""
    checked = node_labels.validate(nl_params(managed_prefixes=["node.ecoeco.io/", "ecoeco.io/"], parallelism=3))
    assert checked.prefixes == ["node.ecoeco.io/", "ecoeco.io/"] and checked.parallelism == 3
    assert checked.desired["db-1"].labels == {"workload": "db"}


def test_all_node_label_errors_at_once():
    with pytest.raises(ValidationError) as exc:
        node_labels.validate(nl_params(parallelism=0, managed_prefixes=["kubernetes.io/"],
                                       nodes={"Bad_Node": {}}))
    text = str(exc.value)
    assert "parallelism" in text and "kubernetes.io/" in text and "node name" in text


# -- argocd_root_app ---------------------------------------------------------------------------

def ra_params(**over):
    base = {"name": "root", "namespace": "argocd", "state": "present", "project": "default",
            "repo_url": "https://git.example.com/org/gitops.git", "target_revision": "HEAD",
            "path": "apps", "destination_server": None, "destination_name": None,
            "destination_namespace": None, "sync_policy": None, "labels": None, "annotations": None,
            "wait_timeout": 300}
    base.update(over)
    return base


@pytest.mark.parametrize("over, needle", [
    ({"repo_url": "not a url"}, "repo_url: 'not a url' is not a repository URL"),
    ({"repo_url": "ftp//x"}, "repo_url: 'ftp//x' is not a repository URL"),
    ({"repo_url": "https://"}, "repo_url: 'https://' is not a repository URL"),
    ({"path": "../../../etc"}, "path: '../../../etc' leaves the repository"),
    ({"path": "/etc"}, "path: '/etc' leaves the repository"),
    ({"path": "apps/../../x"}, "path: 'apps/../../x' leaves the repository"),
    ({"path": "  "}, "path: must not be empty"),
    ({"destination_server": "kubernetes"}, "destination_server: 'kubernetes' is not an API server URL"),
    ({"wait_timeout": 0}, "wait_timeout: must be a positive number of seconds"),
    ({"wait_timeout": -3}, "wait_timeout: must be a positive number of seconds"),
])
def test_root_app_refuses(over, needle):
    with pytest.raises(ValidationError) as exc:
        root_app.validate(ra_params(**over))
    assert needle in str(exc.value)


@pytest.mark.parametrize("url", ["https://github.com/org/repo.git", "git@github.com:org/repo.git",
                                 "ssh://git@host:2222/org/repo.git", "oci://registry.example.com/charts",
                                 "https://charts.example.com", "http://127.0.0.1:8080/repo.git"])
def test_root_app_accepts_repository_urls(url):
    root_app.validate(ra_params(repo_url=url))


@pytest.mark.parametrize("path", [".", "apps", "argocd/applications", "a/b..c"])
def test_root_app_accepts_paths(path):
    root_app.validate(ra_params(path=path))


# -- argocd_admin_password ---------------------------------------------------------------------

@pytest.mark.parametrize("over, needle", [
    ({"password": "   "}, "password: must not be only white space"),
    ({"password": "\t\n"}, "password: must not be only white space"),
    ({"password": ""}, "password: must not be empty"),
    ({"namespace": "Argo CD"}, "namespace:"),
    ({"secret_name": "bad/name"}, "secret_name:"),
])
def test_admin_password_refuses(over, needle):
    params = dict({"password": "Sup3r-secret", "namespace": "argocd", "secret_name": "argocd-secret"}, **over)
    with pytest.raises(ValidationError) as exc:
        admin_password.validate(params)
    assert needle in str(exc.value)
    assert "Sup3r-secret" not in str(exc.value)


# -- argocd_sync_waves -------------------------------------------------------------------------

SW = {"root_app": "root", "namespace": "argocd", "label_selector": None, "expected_apps": [],
      "target_revision": None, "check_root_revision": True, "wave_timeout": 60.0, "timeout": 300.0,
      "hard_refresh_on_error": False, "require_health_check": False}


@pytest.mark.parametrize("over, needle", [
    ({"timeout": float("nan")}, "timeout must be a finite number of seconds"),
    ({"timeout": math.inf}, "timeout must be a finite number of seconds"),
    ({"wave_timeout": float("nan")}, "wave_timeout must be a finite number of seconds"),
    ({"wave_timeout": 0.0}, "wave_timeout must be a positive number of seconds"),
    ({"slice_seconds": math.inf}, "slice_seconds must be a finite number of seconds"),
    ({"slice_seconds": -1.0}, "slice_seconds must be a positive number of seconds"),
    ({"root_app": None}, "one of root_app or label_selector is required"),
])
def test_sync_waves_refuses(over, needle):
    with pytest.raises(ValidationError) as exc:
        sync_waves.validate(dict(SW, **over))
    assert needle in str(exc.value)


def test_expected_app_outside_the_selector_is_named_as_such():
    clock = FakeClock()
    outside = application("apis", 0)
    outside["metadata"]["labels"] = {"team": "other"}
    client = FakeClient(clock, [], configmap={"metadata": {}, "data": {}},
                        objects={("applications", "argocd", "apis"): outside})
    params = dict(SW, root_app=None, label_selector="team=platform", expected_apps=["apis"])
    with pytest.raises(ModuleFailure) as exc:
        verify_sync_waves(client, params, clock=clock, sleep=clock.sleep)
    msg = exc.value.msg
    assert "expected_apps: apis exists but does not match label_selector 'team=platform'" in msg
    assert "team=other" in msg and "does not exist" not in msg


# -- k8s_manifest ------------------------------------------------------------------------------

@pytest.mark.parametrize("doc, needle", [
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}},
     "definition[0] (ConfigMap Bad_Name): metadata.name 'Bad_Name' is not a valid DNS-1123 subdomain"),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}},
     "definition[0] (Namespace a.b): metadata.name 'a.b' is not a valid DNS-1123 label"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "Nope"}},
     "definition[0] (ConfigMap x): metadata.namespace 'Nope'"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"bad key!": "v"}}},
     "definition[0] (ConfigMap x): metadata.labels: key 'bad key!'"),
    ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "a/b"}},
     "definition[0] (ClusterRole a/b): metadata.name 'a/b' cannot be a name"),
])
def test_manifest_names_are_checked(doc, needle):
    with pytest.raises(ValidationError) as exc:
        manifest.validate_documents([doc])
    assert needle in str(exc.value)


def test_manifest_rbac_names_with_colons_pass():
    doc = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": "system:aggregate-to-argocd"}}
    assert manifest.validate_documents([doc]) == [doc]


def test_src_errors_name_the_file():
    with pytest.raises(ValidationError) as exc:
        manifest.validate_documents(["root:x:0:0"], "src /etc/passwd")
    assert str(exc.value).startswith("src /etc/passwd, document 1: expected a Kubernetes object")


# -- secrets -----------------------------------------------------------------------------------

def test_secret_values_in_all_forms():
    found = secrets.secret_values({"definition": [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
         "data": {"a": base64.b64encode(b"plain-value").decode()}, "stringData": {"b": "string-value"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "not-secret"}},
    ]})
    assert {"plain-value", base64.b64encode(b"plain-value").decode(), "string-value",
            base64.b64encode(b"string-value").decode()} <= found
    assert "not-secret" not in found


def test_secret_values_from_yaml_text_and_lists_and_kubeconfig():
    text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n" \
           "  stringData: {token: yaml-secret}\n"
    kubeconfig = {"clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                  "users": [{"name": "u", "user": {"token": "kube-token-value"}}]}
    found = secrets.secret_values({"definition": text, "kubeconfig": kubeconfig})
    assert "yaml-secret" in found and "kube-token-value" in found
    assert "https://127.0.0.1:6443" not in found


def test_short_values_are_not_masked():
    found = secrets.secret_values({"definition": {"kind": "Secret", "stringData": {"a": "ab"}}})
    assert "ab" not in found


# -- the roles' check (input_errors filter) ------------------------------------------------------

def test_role_check_names_role_variables():
    from ansible_collections.ecoeco.gitops.plugins.filter.input_errors import input_errors
    errors = input_errors({"root_app": "root", "wave_timeout": "900", "timeout": 300},
                          "argocd_sync_waves", {"wave_timeout": "app_of_apps_wave_timeout",
                                                "timeout": "app_of_apps_timeout"})
    assert errors == ["app_of_apps_wave_timeout (900.0) must not exceed app_of_apps_timeout (300.0)"]
    errors = input_errors({"repo_url": "not a url", "path": "../x", "name": "root"}, "argocd_root_app",
                          {"repo_url": "app_of_apps_repo_url", "path": "app_of_apps_path"})
    assert any(e.endswith("app_of_apps_repo_url: 'not a url' is not a repository URL (it contains white space)")
               for e in errors), errors
    assert any("app_of_apps_path: '../x' leaves the repository (use a relative path without '..')" in e
               for e in errors), errors
    errors = input_errors({"managed_prefixes": ["k8s.io/"], "parallelism": "0"}, "k8s_node_labels",
                          {"managed_prefixes": "node_labels_managed_prefixes", "parallelism": "node_labels_parallelism",
                           "allow_kubernetes_prefixes": "node_labels_allow_kubernetes_prefixes"})
    text = "; ".join(errors)
    assert "node_labels_managed_prefixes: 'k8s.io/'" in text and "node_labels_allow_kubernetes_prefixes=true" in text
    assert "node_labels_parallelism: must be a whole number from 1 to 64, got 0" in text
    assert input_errors({"wait_timeout": 300}, "k8s_manifest", {"wait_timeout": "argocd_wait_timeout"}) == []
    assert input_errors({"password": ""}, "argocd_admin_password") == []
