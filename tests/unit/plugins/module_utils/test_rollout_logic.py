"""Unit tests of module_utils/rollout.py: when a workload has rolled out, and the bounded wait."""

from __future__ import annotations

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils import rollout
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sError

DEPLOY = ("Deployment", "argocd", "argocd-server")


def deployment(replicas=1, ready=1, updated=1, generation=2, observed=2):
    return {"kind": "Deployment", "metadata": {"name": "argocd-server", "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "readyReplicas": ready, "updatedReplicas": updated}}


def test_rolled_out_deployment():
    assert rollout.not_rolled_out(deployment(), DEPLOY) is None


def test_zero_replicas_is_rolled_out():
    assert rollout.not_rolled_out(deployment(replicas=0, ready=0, updated=0), DEPLOY) is None


@pytest.mark.parametrize("obj, text", [
    (deployment(ready=0), "0/1 ready"),
    (deployment(updated=0), "0/1 updated"),
    (deployment(observed=1), "not yet seen by its controller"),
    (None, "not found"),
])
def test_not_rolled_out_names_the_workload(obj, text):
    reason = rollout.not_rolled_out(obj, DEPLOY)
    assert reason.startswith("Deployment argocd/argocd-server") and text in reason


def test_daemonset_counts_scheduled_pods():
    ds = {"kind": "DaemonSet", "metadata": {"generation": 1},
          "status": {"observedGeneration": 1, "desiredNumberScheduled": 14, "updatedNumberScheduled": 14,
                     "numberReady": 13}}
    assert "13/14 ready" in rollout.not_rolled_out(ds, ("DaemonSet", "kube-system", "calico-node"))
    ds["status"]["numberReady"] = 14
    assert rollout.not_rolled_out(ds, ("DaemonSet", "kube-system", "calico-node")) is None


def test_workloads_of_picks_namespaced_workloads():
    objects = [{"kind": "Deployment", "namespace": "argocd", "name": "a"},
               {"kind": "ConfigMap", "namespace": "argocd", "name": "b"},
               {"kind": "StatefulSet", "namespace": "argocd", "name": "c"},
               {"kind": "DaemonSet", "namespace": "kube-system", "name": "d"}]
    assert rollout.workloads_of(objects) == [("Deployment", "argocd", "a"), ("StatefulSet", "argocd", "c"),
                                             ("DaemonSet", "kube-system", "d")]


class FakeClient:
    """Returns the next state of each workload on every GET."""

    def __init__(self, states):
        self.states = states
        self.gets = 0

    def get(self, ref, name, namespace=None):
        self.gets += 1
        seq = self.states[name]
        return seq.pop(0) if len(seq) > 1 else seq[0]


def test_wait_polls_only_what_is_pending():
    client = FakeClient({"argocd-server": [deployment(ready=0), deployment()],
                         "argocd-repo-server": [deployment()]})
    out = rollout.wait_rolled_out(client, [DEPLOY, ("Deployment", "argocd", "argocd-repo-server")], 10,
                                  sleep=lambda s: None)
    assert out["workloads"] == 2
    assert client.gets == 3  # both once, then only the pending one


def test_wait_times_out_naming_each_workload():
    client = FakeClient({"argocd-server": [deployment(ready=0)]})
    with pytest.raises(K8sError) as err:
        rollout.wait_rolled_out(client, [DEPLOY], 0.05, sleep=lambda s: None)
    assert "Deployment argocd/argocd-server 0/1 ready" in str(err.value)


def test_nothing_to_wait_for():
    assert rollout.wait_rolled_out(FakeClient({}), [], 10) == {"workloads": 0, "seconds": 0.0}


def test_known_objects_spare_the_first_round_reads():
    client = FakeClient({"argocd-server": [deployment()], "argocd-repo-server": [deployment()]})
    repo = ("Deployment", "argocd", "argocd-repo-server")
    out = rollout.wait_rolled_out(client, [DEPLOY, repo], 10, sleep=lambda s: None,
                                  known={DEPLOY: deployment()})
    assert out["workloads"] == 2 and client.gets == 1  # only the one not known


def test_a_known_object_not_rolled_out_is_read_again():
    client = FakeClient({"argocd-server": [deployment()]})
    out = rollout.wait_rolled_out(client, [DEPLOY], 10, sleep=lambda s: None, known={DEPLOY: deployment(ready=0)})
    assert out["workloads"] == 1 and client.gets == 1  # judged from the known object, then read
