"""argocd_root_app logic: desired object, validation, idempotence, diff, absent, wait."""

from __future__ import annotations

import copy
import itertools

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd import root_app
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import APPLICATIONS
from tests.support.failure import failure


def params(**over):
    base = {
        "name": "root", "namespace": "argocd", "state": "present", "project": "default",
        "repo_url": "https://git.example/gitops.git", "target_revision": "HEAD", "path": "clusters/dev",
        "destination_server": None, "destination_name": None, "destination_namespace": None,
        "sync_policy": None, "finalizer": True, "labels": None, "annotations": None, "cascade": True,
        "wait": False, "wait_timeout": 300, "field_manager": "ecoeco.gitops",
    }
    base.update(over)
    return base


def _leaves(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, prefix + (k,))
    else:
        yield prefix, obj


def _delete_path(obj, path):
    for key in path[:-1]:
        obj = obj.get(key)
        if not isinstance(obj, dict):
            return
    obj.pop(path[-1], None)


def _merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


def _fields(obj):
    """A managedFields fieldsV1 tree for the dict keys of an applied body (lists as leaves)."""
    return {f"f:{k}": (_fields(v) if isinstance(v, dict) else {}) for k, v in obj.items()
            if k not in ("apiVersion", "kind")}


class FakeApps:
    """Applications with a server-side-apply imitation: owned fields follow the last applied body."""

    def __init__(self):
        self.objects = {}
        self.owned = {}
        self.calls = []
        self.rv = itertools.count(100)

    def seed(self, obj):
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("resourceVersion", str(next(self.rv)))
        self.objects[key] = obj

    def get(self, ref, name, namespace=None):
        assert ref == APPLICATIONS
        self.calls.append(("get", name))
        obj = self.objects.get((namespace, name))
        return copy.deepcopy(obj) if obj else None

    def apply(self, ref, body, field_manager, namespace=None, dry_run=False, force=True):
        self.calls.append(("apply", name := body["metadata"]["name"], dry_run))
        key = (namespace, name)
        live = copy.deepcopy(self.objects.get(key)) or {"status": {}}
        prev = self.owned.get(key, {})
        new_leaves = {p for p, _value in _leaves(body)}
        for path, _value in _leaves(prev):
            if path not in new_leaves:
                _delete_path(live, path)
        prev_fin = set(prev.get("metadata", {}).get("finalizers", []))
        live_fin = [f for f in live.get("metadata", {}).get("finalizers", [])
                    if f not in prev_fin or f in body["metadata"].get("finalizers", [])]
        _merge(live, dict(body))
        fin = live_fin + [f for f in body["metadata"].get("finalizers", []) if f not in live_fin]
        live["metadata"]["finalizers"] = fin
        if not fin:
            live["metadata"].pop("finalizers")
        old = self.objects.get(key)
        live["metadata"]["managedFields"] = [{"manager": field_manager, "operation": "Apply",
                                              "fieldsV1": _fields(body), "time": f"t{len(self.calls)}"}]
        if old is None or root_app.comparable(old) != root_app.comparable(live):
            live["metadata"]["resourceVersion"] = str(next(self.rv))
        if not dry_run:
            self.objects[key] = live
            self.owned[key] = copy.deepcopy(body)
        return copy.deepcopy(live)

    def json_patch(self, ref, name, ops, namespace=None, dry_run=False):
        self.calls.append(("json_patch", name, dry_run, copy.deepcopy(ops)))
        obj = copy.deepcopy(self.objects[(namespace, name)])
        for op in ops:
            if op["op"] == "test":
                assert obj["metadata"]["resourceVersion"] == op["value"]
            else:
                assert op["path"] == "/metadata/finalizers"
                obj["metadata"]["finalizers"] = op["value"]
        if not dry_run:
            self.objects[(namespace, name)] = obj
        return obj

    def delete(self, ref, name, namespace=None, propagation=None, dry_run=False):
        self.calls.append(("delete", name, dry_run))
        if dry_run:
            return {}
        obj = self.objects[(namespace, name)]
        if obj["metadata"].get("finalizers"):
            obj["metadata"]["deletionTimestamp"] = "2026-11-24T14:00:00Z"
        else:
            del self.objects[(namespace, name)]
        return {}

    def writes(self):
        return [c for c in self.calls if c[0] in ("json_patch", "delete") or (c[0] == "apply" and not c[2])]


# -- desired object ---------------------------------------------------------------
def test_build_application_defaults():
    app = root_app.build_application(params())
    assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
    assert app["metadata"] == {"name": "root", "namespace": "argocd",
                               "finalizers": ["resources-finalizer.argocd.argoproj.io"]}
    assert app["spec"] == {
        "project": "default",
        "source": {"repoURL": "https://git.example/gitops.git", "targetRevision": "HEAD", "path": "clusters/dev"},
        "destination": {"server": "https://kubernetes.default.svc"},
    }


def test_build_application_sync_policy_and_destination_name():
    app = root_app.build_application(params(
        destination_name="in-cluster", destination_namespace="argocd", finalizer=False,
        labels={"team": "platform"}, annotations={"note": True},
        sync_policy={"automated": {"prune": True, "self_heal": True, "allow_empty": None},
                     "retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "max_duration": "3m"}},
                     "sync_options": ["CreateNamespace=true"]}))
    assert "finalizers" not in app["metadata"]
    assert app["metadata"]["labels"] == {"team": "platform"}
    assert app["metadata"]["annotations"] == {"note": "true"}
    assert app["spec"]["destination"] == {"name": "in-cluster", "namespace": "argocd"}
    assert app["spec"]["syncPolicy"] == {
        "automated": {"prune": True, "selfHeal": True},
        "retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}},
        "syncOptions": ["CreateNamespace=true"],
    }


def test_empty_automated_enables_automated_sync():
    policy = root_app.build_sync_policy({"automated": {"prune": None, "self_heal": None, "allow_empty": None},
                                         "retry": None, "sync_options": None})
    assert policy == {"automated": {}}


# -- validation --------------------------------------------------------------------
@pytest.mark.parametrize("over, option", [
    ({"repo_url": None}, "repo_url"),
    ({"namespace": "Argo_CD"}, "namespace"),
    ({"namespace": "x" * 64}, "namespace"),
    ({"name": "Root App"}, "name"),
    ({"destination_namespace": "bad ns"}, "destination_namespace"),
    ({"destination_server": "https://a", "destination_name": "b"}, "destination_server, destination_name"),
    ({"target_revision": " "}, "target_revision"),
    ({"labels": {"bad key!": "x"}}, "labels.bad key!"),
    ({"sync_policy": {"retry": {"limit": 1, "backoff": {"duration": "5 seconds"}}}},
     "sync_policy.retry.backoff.duration"),
    ({"sync_policy": {"retry": {"limit": -5}}}, "sync_policy.retry.limit"),
    ({"sync_policy": {"sync_options": ["CreateNamespace"]}}, "sync_policy.sync_options"),
    ({"wait_timeout": 0}, "wait_timeout"),
])
def test_validation_names_the_option(over, option):
    with pytest.raises(ValidationError) as exc:
        root_app.validate(params(**over))
    assert f"{option}:" in str(exc.value)


def test_validation_failure_makes_no_request():
    api = FakeApps()
    with pytest.raises(ValidationError):
        root_app.run(api, params(repo_url=None), check_mode=False, want_diff=False)
    assert api.calls == []


def test_absent_needs_no_repo_url():
    root_app.validate(params(state="absent", repo_url=None))


# -- present: idempotence, check mode, diff -------------------------------------------
def test_create_then_rerun_is_unchanged():
    api = FakeApps()
    first = root_app.run(api, params(), check_mode=False, want_diff=False)
    assert first["changed"] is True
    assert [c[:3] for c in api.calls] == [("get", "root"), ("apply", "root", False)]
    assert "managedFields" not in first["application"]["metadata"]
    api.calls.clear()
    second = root_app.run(api, params(), check_mode=False, want_diff=False)
    assert second["changed"] is False
    assert api.writes() == [] and [c[0] for c in api.calls] == ["get"]      # the no-write fast path: one GET
    assert second["application"]["spec"]["source"]["targetRevision"] == "HEAD"


def test_check_mode_persists_nothing():
    api = FakeApps()
    result = root_app.run(api, params(), check_mode=True, want_diff=True)
    assert result["changed"] is True
    assert api.objects == {}
    assert all(c[2] for c in api.calls if c[0] == "apply")
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["spec"]["source"]["repoURL"] == "https://git.example/gitops.git"


def test_changed_revision_is_changed_with_diff():
    api = FakeApps()
    root_app.run(api, params(), check_mode=False, want_diff=False)
    result = root_app.run(api, params(target_revision="v2"), check_mode=False, want_diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"]["spec"]["source"]["targetRevision"] == "HEAD"
    assert result["diff"]["after"]["spec"]["source"]["targetRevision"] == "v2"
    for side in ("before", "after"):
        assert "managedFields" not in result["diff"][side]["metadata"]
        assert "resourceVersion" not in result["diff"][side]["metadata"]
    assert api.objects[("argocd", "root")]["spec"]["source"]["targetRevision"] == "v2"


def test_status_and_bookkeeping_do_not_count_as_change():
    api = FakeApps()
    root_app.run(api, params(), check_mode=False, want_diff=False)
    live = api.objects[("argocd", "root")]
    live["status"] = {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}
    live["metadata"]["generation"] = 7
    result = root_app.run(api, params(), check_mode=False, want_diff=False)
    assert result["changed"] is False


def test_dropping_the_finalizer_is_a_change():
    api = FakeApps()
    root_app.run(api, params(), check_mode=False, want_diff=False)
    result = root_app.run(api, params(finalizer=False), check_mode=False, want_diff=True)
    assert result["changed"] is True
    assert "finalizers" not in api.objects[("argocd", "root")]["metadata"]


def test_present_refuses_an_app_being_deleted():
    api = FakeApps()
    api.seed({"metadata": {"name": "root", "namespace": "argocd", "deletionTimestamp": "x"}})
    with pytest.raises(ValidationError, match="being deleted"):
        root_app.run(api, params(), check_mode=False, want_diff=False)


# -- absent -----------------------------------------------------------------------
def _seed_app(api, finalizers):
    api.seed({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
              "metadata": {"name": "root", "namespace": "argocd", "finalizers": finalizers}, "spec": {}})


def test_absent_cascade_adds_finalizer_then_deletes():
    api = FakeApps()
    _seed_app(api, [])
    result = root_app.run(api, params(state="absent"), check_mode=False, want_diff=True)
    assert result["changed"] is True
    patch = [c for c in api.calls if c[0] == "json_patch"][0]
    assert patch[3][0]["op"] == "test" and patch[3][0]["path"] == "/metadata/resourceVersion"
    assert patch[3][1]["value"] == ["resources-finalizer.argocd.argoproj.io"]
    assert ("delete", "root", False) in api.calls
    # Argo CD (not running here) would now delete the children and drop the finalizer.
    assert api.objects[("argocd", "root")]["metadata"]["deletionTimestamp"]
    assert result["diff"]["after"] == {}
    again = root_app.run(api, params(state="absent"), check_mode=False, want_diff=False)
    assert again["changed"] is False


def test_absent_without_cascade_removes_only_argo_finalizer():
    api = FakeApps()
    _seed_app(api, ["resources-finalizer.argocd.argoproj.io", "example.com/keep"])
    root_app.run(api, params(state="absent", cascade=False), check_mode=False, want_diff=False)
    patch = [c for c in api.calls if c[0] == "json_patch"][0]
    assert patch[3][1] == {"op": "replace", "path": "/metadata/finalizers", "value": ["example.com/keep"]}


def test_absent_without_cascade_deletes_at_once():
    api = FakeApps()
    _seed_app(api, ["resources-finalizer.argocd.argoproj.io"])
    result = root_app.run(api, params(state="absent", cascade=False, wait=True), check_mode=False,
                          want_diff=False)
    assert result["changed"] is True and result["application"] == {}
    assert api.objects == {}


def test_absent_check_mode_is_dry_run():
    api = FakeApps()
    _seed_app(api, [])
    result = root_app.run(api, params(state="absent"), check_mode=True, want_diff=False)
    assert result["changed"] is True
    assert all(c[2] for c in api.calls if c[0] in ("json_patch", "delete"))
    assert "deletionTimestamp" not in api.objects[("argocd", "root")]["metadata"]


def test_absent_when_missing_is_unchanged():
    api = FakeApps()
    result = root_app.run(api, params(state="absent"), check_mode=False, want_diff=False)
    assert result == {"changed": False, "application": {}}
    assert api.calls == [("get", "root")]


def test_absent_wait_times_out_naming_the_controller():
    api = FakeApps()
    _seed_app(api, [])
    clock = itertools.count(0, 5).__next__
    msg, _result = failure(root_app.ensure_absent, api, params(state="absent", wait=True, wait_timeout=10),
                           False, False, clock=clock, sleep=lambda s: None)
    assert "still present" in msg and "application controller" in msg


# -- waiting for the first sync ------------------------------------------------------------
class Sequence:
    def __init__(self, states):
        self.states = list(states)
        self.gets = 0

    def get(self, ref, name, namespace=None):
        self.gets += 1
        return self.states[min(self.gets - 1, len(self.states) - 1)]


def _app(sync=None, phase=None, conditions=None):
    status = {}
    if sync:
        status["sync"] = {"status": sync}
    if phase:
        status["operationState"] = {"phase": phase, "message": f"op {phase}"}
    if conditions:
        status["conditions"] = conditions
    return {"metadata": {"name": "root", "managedFields": [{}]}, "status": status}


def test_first_sync_state():
    assert root_app.first_sync_state(None) == "waiting"
    assert root_app.first_sync_state(_app()) == "waiting"
    assert root_app.first_sync_state(_app("OutOfSync", "Running")) == "waiting"
    assert root_app.first_sync_state(_app("Synced", "Running")) == "waiting"
    assert root_app.first_sync_state(_app("Synced")) == "synced"
    assert root_app.first_sync_state(_app("OutOfSync", "Succeeded")) == "synced"
    assert root_app.first_sync_state(_app("OutOfSync", "Failed")) == "failed"


def test_wait_first_sync_succeeds():
    api = Sequence([_app("OutOfSync"), _app("OutOfSync", "Running"), _app("Synced", "Succeeded")])
    clock = itertools.count(0, 1).__next__
    result = root_app.wait_first_sync(api, params(), 60, clock=clock, sleep=lambda s: None)
    assert api.gets == 3
    assert "managedFields" not in result["application"]["metadata"]


def test_wait_first_sync_fails_fast_on_failed_operation():
    api = Sequence([_app("OutOfSync", "Failed")])
    msg, _result = failure(root_app.wait_first_sync, api, params(), 60, clock=itertools.count().__next__,
                           sleep=lambda s: None)
    assert "first sync failed" in msg and "operation=Failed (op Failed)" in msg


def test_wait_first_sync_timeout_is_bounded_and_explains():
    api = Sequence([_app("Unknown", conditions=[{"type": "ComparisonError", "message": "repo not found"}])])
    clock = itertools.count(0, 10).__next__
    sleeps = []
    msg, _result = failure(root_app.wait_first_sync, api, params(), 30, clock=clock, sleep=sleeps.append)
    assert "timed out after 30s" in msg
    assert "ComparisonError: repo not found" in msg
    assert api.gets <= 5
