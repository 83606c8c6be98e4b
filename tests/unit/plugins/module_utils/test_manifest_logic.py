"""Unit tests of module_utils/manifest.py (the k8s_manifest module's logic) with a fake API."""

from __future__ import annotations

import copy
import itertools

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils import apply, manifest
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"},
             "data": {"a": "1", "b": "2"}}
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "c2VjcmV0"}}
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "widgets.example.io"},
       "spec": {"group": "example.io", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"}, "versions": [{"name": "v1"}]}}
WIDGET = {"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}

DISCOVERY = {
    "/api/v1": {"resources": [{"name": "namespaces", "kind": "Namespace", "namespaced": False},
                              {"name": "configmaps", "kind": "ConfigMap", "namespaced": True},
                              {"name": "secrets", "kind": "Secret", "namespaced": True},
                              {"name": "pods/status", "kind": "Pod", "namespaced": True}]},
    "/apis/apiextensions.k8s.io/v1": {"resources": [
        {"name": "customresourcedefinitions", "kind": "CustomResourceDefinition", "namespaced": False}]},
}


def _fields(obj):
    """A managedFields fieldsV1 tree for every leaf of obj (dict keys only, like a simple SSA)."""
    if isinstance(obj, dict):
        return {f"f:{k}": _fields(v) for k, v in obj.items()}
    return {}


class FakeApi:
    """Objects by path with a server-side-apply imitation: the applied body's fields replace the manager's."""

    def __init__(self):
        self.objects = {}
        self.calls = []
        self.rv = itertools.count(1)
        self.status_updates = 0
        self.refuse_list = set()

    def get_path(self, path):
        self.calls.append(("GET", path))
        return copy.deepcopy(DISCOVERY.get(path))

    def get(self, ref, name, namespace=None):
        self.calls.append(("GET", ref.path(namespace, name)))
        obj = self.objects.get(ref.path(namespace, name))
        if obj is not None and obj.get("kind") == "CustomResourceDefinition":
            obj.setdefault("status", {"conditions": [{"type": "Established", "status": "True"}]})
        return copy.deepcopy(obj)

    def list(self, ref, namespace=None, label_selector=None, field_selector=None):
        """A LIST as the API server answers it: the items of built-in kinds carry no apiVersion and kind."""
        base = ref.path(namespace)
        self.calls.append(("LIST", base))
        if base in self.refuse_list:
            raise manifest.K8sError(f"GET {base}: 403 forbidden", 403)
        items = []
        for path, obj in sorted(self.objects.items()):
            if path.rpartition("/")[0] == base:
                item = copy.deepcopy(obj)
                if not ref.group:
                    item.pop("apiVersion", None)
                    item.pop("kind", None)
                items.append(item)
        return {"apiVersion": ref.version, "kind": "List", "items": items}

    def apply(self, ref, body, field_manager, namespace=None, dry_run=False, force=True):
        path = ref.path(namespace, body["metadata"]["name"])
        self.calls.append(("APPLY-dry" if dry_run else "APPLY", path))
        live = self.objects.get(path)
        result = copy.deepcopy(body)
        result["metadata"]["resourceVersion"] = str(next(self.rv))
        if live is not None and comparable_body(live) == comparable_body(body):
            result["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        result["metadata"]["managedFields"] = [{"manager": field_manager, "operation": "Apply",
                                                "fieldsV1": _fields({k: v for k, v in body.items()
                                                                     if k not in ("apiVersion", "kind")})}]
        if live is not None and "status" in live:
            result["status"] = live["status"]
        if not dry_run:
            self.objects[path] = result
        return copy.deepcopy(result)

    def writes(self):
        return [c for c in self.calls if c[0] == "APPLY"]


def comparable_body(obj):
    out = copy.deepcopy(obj)
    out.get("metadata", {}).pop("managedFields", None)
    out.get("metadata", {}).pop("resourceVersion", None)
    out.pop("status", None)
    return out


def run(api, docs, **kwargs):
    kwargs.setdefault("namespace", "argocd")
    return manifest.ManifestApplier(api, manifest.validate_documents(copy.deepcopy(docs)), "mgr",
                                    sleep=lambda s: None, **kwargs).run()


def test_first_run_creates_in_order_and_rerun_writes_nothing():
    api = FakeApi()
    first = run(api, [CONFIGMAP, NAMESPACE])
    assert first["changed"] and first["counts"] == {"created": 2, "configured": 0, "unchanged": 0}
    assert [o["kind"] for o in first["objects"]] == ["Namespace", "ConfigMap"]
    api.calls.clear()
    again = run(api, [CONFIGMAP, NAMESPACE])
    assert not again["changed"] and again["counts"]["unchanged"] == 2
    assert api.writes() == []


def test_status_written_by_a_controller_is_not_a_change():
    api = FakeApi()
    run(api, [NAMESPACE, CONFIGMAP])
    api.objects["/api/v1/namespaces/argocd"]["status"] = {"phase": "Active"}
    api.objects["/api/v1/namespaces/argocd"]["metadata"]["resourceVersion"] = "999"
    assert not run(api, [NAMESPACE, CONFIGMAP])["changed"]


def test_changed_value_is_configured_with_its_path():
    api = FakeApi()
    run(api, [NAMESPACE, CONFIGMAP])
    newer = copy.deepcopy(CONFIGMAP)
    newer["data"]["a"] = "changed"
    out = run(api, [NAMESPACE, newer], want_diff=True)
    cm = [o for o in out["objects"] if o["kind"] == "ConfigMap"][0]
    assert cm["action"] == "configured" and cm["changed_paths"] == ["data.a"]
    assert out["diff"][0]["before"]["data"]["a"] == "1" and out["diff"][0]["after"]["data"]["a"] == "changed"


def test_field_dropped_from_the_manifest_is_applied_so_it_is_removed():
    api = FakeApi()
    run(api, [NAMESPACE, CONFIGMAP])
    older = copy.deepcopy(CONFIGMAP)
    del older["data"]["b"]
    out = run(api, [NAMESPACE, older])
    assert out["changed"]
    assert "b" not in api.objects["/api/v1/namespaces/argocd/configmaps/argocd-cm"]["data"]


def test_fields_of_other_managers_do_not_force_a_write():
    api = FakeApi()
    run(api, [NAMESPACE, CONFIGMAP])
    api.objects["/api/v1/namespaces/argocd/configmaps/argocd-cm"]["data"]["user-key"] = "x"
    api.calls.clear()
    assert not run(api, [NAMESPACE, CONFIGMAP])["changed"]
    assert api.writes() == []


def test_check_mode_dry_runs_and_predicts_objects_in_new_namespaces_and_kinds():
    api = FakeApi()
    out = run(api, [NAMESPACE, CRD, WIDGET, CONFIGMAP], check_mode=True)
    assert out["changed"] and out["counts"]["created"] == 4
    assert api.writes() == [] and api.objects == {}
    # nothing of a namespace or kind that does not exist yet was sent to the server
    assert not any(c[1].startswith("/apis/example.io/") or "/configmaps/" in c[1] for c in api.calls)


def test_crd_kinds_resolve_from_the_manifest_and_wait_for_established():
    api = FakeApi()
    out = run(api, [NAMESPACE, WIDGET, CRD])
    assert [o["kind"] for o in out["objects"]] == ["Namespace", "CustomResourceDefinition", "Widget"]
    assert "/apis/example.io/v1/namespaces/argocd/widgets/w" in api.objects


def test_crd_never_established_times_out_with_its_name():
    api = FakeApi()
    real_get = api.get

    def get_without_status(ref, name, namespace=None):
        obj = real_get(ref, name, namespace)
        if obj is not None and obj["kind"] == "CustomResourceDefinition":
            obj["status"] = {"conditions": [{"type": "Established", "status": "False"}]}
        return obj
    api.get = get_without_status
    with pytest.raises(manifest.K8sError, match="widgets.example.io"):
        manifest.ManifestApplier(api, manifest.validate_documents([CRD, WIDGET]), "mgr", namespace="argocd",
                                 crd_timeout=0.01, sleep=lambda s: None).run()


def test_secret_values_never_reach_the_diff():
    api = FakeApi()
    out = run(api, [NAMESPACE, SECRET], want_diff=True)
    assert "c2VjcmV0" not in repr(out)
    changed = copy.deepcopy(SECRET)
    changed["data"]["password"] = "bmV3"
    out = run(api, [NAMESPACE, changed], want_diff=True)
    assert out["changed"] and "bmV3" not in repr(out) and "c2VjcmV0" not in repr(out)


@pytest.mark.parametrize("docs, message", [
    ([{"kind": "ConfigMap", "metadata": {"name": "x"}}], r"definition\[0\]: missing apiVersion"),
    ([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}], r"definition\[0\] \(ConfigMap\): missing metadata.name"),
    (["text"], r"definition\[0\]: expected a Kubernetes object"),
])
def test_bad_documents_are_named(docs, message):
    with pytest.raises(ValidationError, match=message):
        manifest.validate_documents(docs)


def test_unknown_kind_and_missing_namespace_are_named_before_any_write():
    api = FakeApi()
    with pytest.raises(ValidationError, match="no kind Gadget in example.io/v1"):
        run(api, [dict(WIDGET, kind="Gadget")])
    with pytest.raises(ValidationError, match="ConfigMap argocd-cm is namespaced"):
        run(api, [CONFIGMAP], namespace=None)
    assert api.writes() == []


def test_list_documents_and_empty_documents():
    docs = manifest.validate_documents([None, {"apiVersion": "v1", "kind": "List", "items": [NAMESPACE, CONFIGMAP]}])
    assert [d["kind"] for d in docs] == ["Namespace", "ConfigMap"]


@pytest.mark.parametrize("desired, live, expected", [
    ({"a": 1}, {"a": 1, "b": 2}, True),
    ({"a": [1, 2]}, {"a": [1, 2]}, True),
    ({"a": [1]}, {"a": [1, 2]}, False),
    ({"a": None}, {}, True),
    ({"a": {}}, {}, False),
    ({"a": "1"}, {"a": 1}, False),
    # false/0/""/[] are dropped by the server (omitempty); an empty mapping is not.
    ({"readOnly": False, "n": 0, "s": "", "l": []}, {}, True),
    ({"a": True}, {}, False),
    ({"a": 1}, {}, False),
])
def test_is_subset(desired, live, expected):
    assert apply.is_subset(desired, live) is expected


def test_owned_list_keys_match_declared_elements():
    doc = {"spec": {"ports": [{"port": 80, "name": "http"}]}}
    assert apply.owned_fields_declared({"f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}}}}}, doc)
    assert not apply.owned_fields_declared({"f:spec": {"f:ports": {'k:{"port":81,"protocol":"TCP"}': {}}}}, doc)
    assert apply.owned_fields_declared({"f:args": {'v:"--x"': {}}}, {"args": ["--x"]})
    assert not apply.owned_fields_declared({"f:args": {'v:"--y"': {}}}, {"args": ["--x"]})


def test_check_mode_reports_objects_of_a_namespace_or_kind_from_another_task_as_created():
    api = FakeApi()

    def apply_without_namespace(ref, body, field_manager, namespace=None, dry_run=False, force=True):
        raise manifest.K8sError("namespaces \"argocd\" not found", 404)
    api.apply = apply_without_namespace
    out = run(api, [CONFIGMAP, WIDGET], check_mode=True)
    assert out["counts"]["created"] == 2 and len(out["warnings"]) == 2
    with pytest.raises(ValidationError, match="no kind Widget"):
        run(api, [WIDGET])


def test_identity_only_objects_and_shipped_status_take_the_fast_path():
    """ServiceAccounts with nothing but a name leave no managedFields entry; CRDs ship a status."""
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "calico-node", "namespace": "kube-system"}}
    assert apply.already_applied(sa, dict(sa, metadata=dict(sa["metadata"], uid="1")), "mgr")
    owned_by_someone = dict(CONFIGMAP, metadata={"name": "argocd-cm", "managedFields": []})
    assert not apply.already_applied(CONFIGMAP, owned_by_someone, "mgr")
    crd = dict(CRD, status={"acceptedNames": {"kind": "", "plural": ""}, "storedVersions": []})
    live = dict(CRD, status={"acceptedNames": {"kind": "Widget", "plural": "widgets"}},
                metadata={"name": CRD["metadata"]["name"], "managedFields": [
                    {"manager": "mgr", "operation": "Apply", "fieldsV1": {"f:spec": {}}}]})
    assert apply.already_applied(crd, live, "mgr")


# -- reading: one LIST per kind and namespace with several objects ---------------------------------

CM2 = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-rbac-cm"}, "data": {"policy": "x"}}
CM3 = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cmd-params-cm"}, "data": {"k": "v"}}
CRD2 = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.io"},
        "spec": {"group": "example.io", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "kind": "Gadget"}, "versions": [{"name": "v1"}]}}


def _reads(api):
    return [c for c in api.calls if c[0] in ("GET", "LIST") and not c[1] in DISCOVERY]


def test_rerun_reads_a_kind_with_several_objects_by_one_list_and_writes_nothing():
    api = FakeApi()
    docs = [NAMESPACE, CRD, CRD2, CONFIGMAP, CM2, CM3, SECRET]
    run(api, docs)
    api.calls.clear()
    again = run(api, docs)
    assert not again["changed"] and again["counts"]["unchanged"] == 7 and api.writes() == []
    assert _reads(api) == [
        ("GET", "/api/v1/namespaces/argocd"),
        # CRDs: one GET each, never a LIST of every CRD in the cluster
        ("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.io"),
        ("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.io"),
        ("LIST", "/api/v1/namespaces/argocd/configmaps"),
        ("GET", "/api/v1/namespaces/argocd/secrets/s"),  # a single object of its kind: a GET
    ]


def test_a_drifted_object_read_by_a_list_is_still_found_and_fixed():
    api = FakeApi()
    docs = [NAMESPACE, CONFIGMAP, CM2, CM3]
    run(api, docs)
    api.objects["/api/v1/namespaces/argocd/configmaps/argocd-rbac-cm"]["data"]["policy"] = "drifted"
    del api.objects["/api/v1/namespaces/argocd/configmaps/argocd-cmd-params-cm"]
    api.calls.clear()
    out = run(api, docs)
    actions = {o["name"]: o["action"] for o in out["objects"]}
    assert actions == {"argocd": "unchanged", "argocd-cm": "unchanged", "argocd-rbac-cm": "configured",
                       "argocd-cmd-params-cm": "created"}
    assert ("LIST", "/api/v1/namespaces/argocd/configmaps") in api.calls
    assert api.objects["/api/v1/namespaces/argocd/configmaps/argocd-rbac-cm"]["data"]["policy"] == "x"
    # a dropped field of a listed object is still removed
    older = copy.deepcopy(CONFIGMAP)
    del older["data"]["b"]
    assert run(api, [NAMESPACE, older, CM2, CM3])["changed"]
    assert "b" not in api.objects["/api/v1/namespaces/argocd/configmaps/argocd-cm"]["data"]


def test_listed_objects_of_other_namespaces_and_other_names_are_not_taken():
    api = FakeApi()
    run(api, [NAMESPACE, CONFIGMAP, CM2])
    other = dict(CONFIGMAP, metadata={"name": "argocd-cm", "namespace": "elsewhere"})
    api.objects["/api/v1/namespaces/elsewhere/configmaps/argocd-cm"] = copy.deepcopy(other)
    out = run(api, [NAMESPACE, dict(CONFIGMAP, metadata={"name": "argocd-cm", "namespace": "gitops"}),
                    dict(CM2, metadata={"name": "argocd-rbac-cm", "namespace": "gitops"})])
    assert out["counts"]["created"] == 2  # nothing of argocd or elsewhere taken for gitops's objects


def test_a_refused_list_falls_back_to_one_get_per_object():
    api = FakeApi()
    docs = [NAMESPACE, CONFIGMAP, CM2]
    run(api, docs)
    api.refuse_list.add("/api/v1/namespaces/argocd/configmaps")
    api.calls.clear()
    assert not run(api, docs)["changed"]
    assert ("GET", "/api/v1/namespaces/argocd/configmaps/argocd-cm") in api.calls
    assert ("GET", "/api/v1/namespaces/argocd/configmaps/argocd-rbac-cm") in api.calls


def test_other_list_errors_fail_the_run_before_any_write():
    api = FakeApi()
    run(api, [NAMESPACE, CONFIGMAP, CM2])

    def broken_list(ref, namespace=None, label_selector=None, field_selector=None):
        raise manifest.K8sError("GET: 500 etcd unavailable", 500)
    api.list = broken_list
    api.calls.clear()
    changed = dict(CONFIGMAP, data={"a": "new"})
    with pytest.raises(manifest.K8sError, match="500"):
        run(api, [NAMESPACE, changed, CM2])
    assert api.writes() == []


def test_check_mode_of_a_drifted_listed_object_reports_it_without_writing():
    api = FakeApi()
    docs = [NAMESPACE, CONFIGMAP, CM2]
    run(api, docs)
    api.objects["/api/v1/namespaces/argocd/configmaps/argocd-cm"]["data"]["a"] = "drifted"
    api.calls.clear()
    out = run(api, docs, check_mode=True, want_diff=True)
    assert out["changed"] and out["counts"]["configured"] == 1 and api.writes() == []
    assert out["diff"][0]["before"]["data"]["a"] == "drifted"


def test_unchanged_objects_are_kept_for_the_rollout_wait():
    api = FakeApi()
    docs = [NAMESPACE, CONFIGMAP, CM2]
    run(api, docs)
    applier = manifest.ManifestApplier(api, manifest.validate_documents(copy.deepcopy(docs)), "mgr",
                                       namespace="argocd", sleep=lambda s: None)
    applier.run()
    assert set(applier.unchanged_live) == {("Namespace", None, "argocd"), ("ConfigMap", "argocd", "argocd-cm"),
                                           ("ConfigMap", "argocd", "argocd-rbac-cm")}
    assert applier.unchanged_live[("ConfigMap", "argocd", "argocd-cm")]["kind"] == "ConfigMap"
