"""Unit tests of module_utils/drain.py with a fake API client and a fake clock (the real API is tested
in tests/integration/test_drain_module.py)."""

from __future__ import annotations

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils import drain
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ModuleFailure, ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sError

PARAMS = {"name": "w1", "state": "drained", "timeout": 10, "grace_period": None, "poll_interval": 1,
          "ignore_daemonsets": True, "delete_emptydir_data": False, "force": False}


def pod(name, owner="ReplicaSet", phase="Running", volumes=(), mirror=False):
    meta = {"name": name, "namespace": "ns", "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "controller": True}]
    if mirror:
        meta["annotations"] = {drain.MIRROR_ANNOTATION: "abc"}
    return {"metadata": meta, "spec": {"volumes": list(volumes)}, "status": {"phase": phase}}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeClient:
    """Pods go away one round after their eviction is accepted; ``budget`` pods are refused with 429."""

    def __init__(self, pods, budget=(), unschedulable=False):
        self.pods = {p["metadata"]["name"]: p for p in pods}
        self.budget = set(budget)
        self.node = {"metadata": {"name": "w1"}, "spec": {"unschedulable": unschedulable}}
        self.patches, self.evictions, self.leaving = [], [], set()

    def get(self, ref, name, namespace=None):
        return self.node if name == "w1" else None

    def merge_patch(self, ref, name, patch, namespace=None, dry_run=False):
        self.patches.append((patch, dry_run))
        if not dry_run:
            self.node["spec"]["unschedulable"] = patch["spec"]["unschedulable"]
        return self.node

    def list(self, ref, namespace=None, label_selector=None, field_selector=None):
        assert field_selector == "spec.nodeName=w1"
        for name in self.leaving:
            self.pods.pop(name, None)
        self.leaving = set()
        return {"items": list(self.pods.values())}

    def post_path(self, path, body):
        name = body["metadata"]["name"]
        self.evictions.append(name)
        if name in self.budget:
            raise K8sError("429", 429, body={
                "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                "details": {"causes": [{"reason": "DisruptionBudget",
                                        "message": "The disruption budget db needs 2 healthy pods and has 2"}]}})
        self.leaving.add(name)
        return {}


def run(client, check=False, **params):
    clock = FakeClock()
    return drain.Drainer(client, dict(PARAMS, **params), check, clock=clock, sleep=clock.sleep), clock


def test_drain_cordons_evicts_and_skips_daemonsets_and_mirror_pods():
    client = FakeClient([pod("a"), pod("b"), pod("ds", owner="DaemonSet"), pod("static", owner=None, mirror=True)])
    drainer, _clock = run(client)
    result = drainer.drain()
    assert result["changed"] and result["cordoned"]
    assert sorted(result["evicted"]) == ["ns/a", "ns/b"]
    assert sorted(result["skipped"]) == ["ns/ds", "ns/static"]
    assert client.node["spec"]["unschedulable"] is True


def test_pdb_blocked_drain_fails_at_the_deadline_naming_pods_and_stays_cordoned():
    client = FakeClient([pod("db-0"), pod("web")], budget={"db-0"})
    drainer, clock = run(client, timeout=10)
    with pytest.raises(ModuleFailure) as err:
        drainer.drain()
    assert 10 <= clock.now <= 12
    assert "ns/db-0" in err.value.msg and "disruption budget db needs 2" in err.value.msg
    assert "stays cordoned" in err.value.msg
    assert err.value.result["blocking"][0]["pod"] == "ns/db-0"
    assert err.value.result["evicted"] == ["ns/web"]
    assert client.node["spec"]["unschedulable"] is True
    assert client.evictions.count("db-0") >= 9  # retried every round


def test_unmanaged_and_emptydir_pods_refuse_before_any_eviction():
    client = FakeClient([pod("bare", owner=None), pod("cache", volumes=[{"name": "t", "emptyDir": {}}]), pod("ok")])
    drainer, _clock = run(client)
    with pytest.raises(ModuleFailure) as err:
        drainer.drain()
    assert "ns/bare not managed by a controller" in err.value.msg and "ns/cache has emptyDir" in err.value.msg
    assert client.evictions == []
    drainer, _clock = run(client, force=True, delete_emptydir_data=True)
    assert sorted(drainer.drain()["evicted"]) == ["ns/bare", "ns/cache", "ns/ok"]


def test_check_mode_lists_and_sends_only_dry_runs():
    client = FakeClient([pod("a")])
    drainer, _clock = run(client, check=True)
    result = drainer.drain()
    assert result["changed"] and result["evicted"] == ["ns/a"]
    assert client.patches == [({"spec": {"unschedulable": True}}, True)]
    assert client.evictions == [] and client.node["spec"]["unschedulable"] is False


def test_drained_node_reruns_unchanged_and_uncordons():
    client = FakeClient([pod("ds", owner="DaemonSet")], unschedulable=True)
    drainer, _clock = run(client)
    assert drainer.drain()["changed"] is False
    result = drain.run(client, dict(PARAMS, state="uncordoned"), False)
    assert result["changed"] and client.node["spec"]["unschedulable"] is None


def test_missing_node_fails_naming_it():
    client = FakeClient([])
    with pytest.raises(ModuleFailure, match="node w9 does not exist"):
        drain.run(client, dict(PARAMS, name="w9"), False)


@pytest.mark.parametrize("key, value, text", [
    ("timeout", 0, "timeout: must be a positive"),
    ("grace_period", -1, "grace_period: must be 0 or more"),
    ("name", "", "name: the node name"),
    ("poll_interval", 0, "poll_interval"),
])
def test_validation(key, value, text):
    with pytest.raises(ValidationError, match=text):
        drain.validate(dict(PARAMS, **{key: value}))
