"""``ecoeco.gitops.remove_node`` against the real kube-apiserver with the example inventory's kwok nodes.

The machine part (kubeadm reset, CNI config, iptables) needs real machines: it runs in
tests/cluster/test_day2.py; here ``remove_node_reset=false`` and every task goes to the API.
Checked: --check changes nothing; the last control plane is refused before any change; a drain
a PodDisruptionBudget blocks fails within its timeout naming the pods and leaves the Node cordoned
and in the cluster; a free node is drained and deleted, and a rerun changes nothing.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from tools.localcluster import audit
from tests.support.workloads import pinned_deployment
from tools.localcluster.ansible import PlaybookResult, run_playbook
from tools.localcluster.cluster import Cluster
from tools.localcluster.procs import wait_until
from tools.localcluster.versions import REPO_ROOT

pytestmark = pytest.mark.controlplane

INVENTORY = REPO_ROOT / "inventories" / "example" / "hosts.yml"
NS = "remove-test"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def _remove(kubeconfig: str, hosts: str, **kwargs: Any) -> PlaybookResult:
    extra = {"ecoeco_kubeconfig": kubeconfig, "remove_node_hosts": hosts, "remove_node_reset": False,
             **kwargs.pop("extra_vars", {})}
    result = run_playbook("ecoeco.gitops.remove_node", INVENTORY, extra_vars=extra, timeout=300, **kwargs)
    print(f"[remove_node {hosts}] rc={result.rc} changed={result.changed} {result.seconds:.1f}s"
          f"{' check' if kwargs.get('check') else ''}")
    return result


def _node(cluster: Cluster, name: str) -> Any:
    return cluster.api.get(f"/api/v1/nodes/{name}", ok404=True)


def _pods_on(cluster: Cluster, node: str) -> list[str]:
    pods = cluster.api.get(f"/api/v1/namespaces/{NS}/pods?fieldSelector=spec.nodeName%3D{node}")["items"]
    return sorted(p["metadata"]["name"] for p in pods if p.get("status", {}).get("phase") == "Running")


@pytest.fixture(scope="module")
def workloads(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", NS, check=False)
    wait_until("default ServiceAccount", lambda: cluster.api.get(
        f"/api/v1/namespaces/{NS}/serviceaccounts/default", ok404=True), 60)
    cluster.apply(yaml.safe_dump_all([
        pinned_deployment("guarded", NS, "k8s-api-info", 2), pinned_deployment("free", NS, "k8s-worker-2", 1),
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "guarded", "namespace": NS},
         "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}}}]))
    wait_until("pods Running", lambda: len(_pods_on(cluster, "k8s-api-info")) == 2
               and len(_pods_on(cluster, "k8s-worker-2")) == 1, 120)

    def budget_observed() -> bool:
        status = cluster.api.get(f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/guarded").get("status") or {}
        return status.get("currentHealthy") == 2
    wait_until("the PodDisruptionBudget's status", budget_observed, 60)


def test_without_hosts_fails_clearly(kubeconfig: str) -> None:
    result = _remove(kubeconfig, "no-such-host")
    assert not result.ok and "matches no host of the inventory" in result.stdout, str(result)


def test_check_mode_changes_nothing(cluster: Cluster, kubeconfig: str, workloads: None) -> None:
    mark = cluster.audit_mark()
    result = _remove(kubeconfig, "k8s-worker-2", check=True)
    assert result.ok, str(result)
    node = _node(cluster, "k8s-worker-2")
    assert node is not None and not node["spec"].get("unschedulable")
    assert len(_pods_on(cluster, "k8s-worker-2")) == 1
    time.sleep(1.0)
    writes = [f"{ev['verb']} {ev.get('requestURI')}"
              for ev in audit.writes(cluster.audit_events(since=mark, user="kubernetes-admin"))
              if "ecoeco-harness" not in (ev.get("userAgent") or "") and "dryRun=All" not in ev.get("requestURI", "")]
    assert writes == [], writes


def test_refuses_the_last_control_plane(cluster: Cluster, kubeconfig: str) -> None:
    cluster.kubectl("label", "node", "k8s-master", f"{CONTROL_PLANE_LABEL}=", "--overwrite")
    result = _remove(kubeconfig, "k8s-master")
    assert not result.ok, str(result)
    assert "refusing to remove k8s-master: it is the last control plane" in result.stdout, str(result)
    node = _node(cluster, "k8s-master")
    assert node is not None and not node["spec"].get("unschedulable")


def test_pdb_blocked_removal_fails_naming_pods_and_keeps_the_node_cordoned(
        cluster: Cluster, kubeconfig: str, workloads: None) -> None:
    pods = _pods_on(cluster, "k8s-api-info")
    result = _remove(kubeconfig, "k8s-api-info", extra_vars={"remove_node_drain_timeout": 10})
    assert not result.ok, str(result)
    assert result.seconds < 10 + 90, result.seconds
    assert "did not finish within 10s" in result.stdout, str(result)
    for pod in pods:
        assert f"{NS}/{pod}" in result.stdout, (pod, str(result))
    node = _node(cluster, "k8s-api-info")
    assert node is not None, "a blocked drain must not delete the Node"
    assert node["spec"].get("unschedulable") is True
    assert _pods_on(cluster, "k8s-api-info") == pods


def test_removes_a_worker_and_a_rerun_changes_nothing(
        cluster: Cluster, kubeconfig: str, workloads: None) -> None:
    result = _remove(kubeconfig, "k8s-worker-2")
    assert result.ok and result.changed >= 2, str(result)
    assert _node(cluster, "k8s-worker-2") is None
    assert _pods_on(cluster, "k8s-worker-2") == []
    again = _remove(kubeconfig, "k8s-worker-2")
    assert again.ok and again.changed == 0, str(again)
