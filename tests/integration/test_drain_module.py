"""k8s_drain against a real kube-apiserver, scheduler and controller-manager, with kwok nodes.

Pods are bound to kwok nodes of their own (nodeSelector on the node name); kwok's stages
make them Running and, once the API server has marked them deleted, remove them, as a
kubelet would. Evictions go through the Eviction API, so the disruption controller's
PodDisruptionBudget status decides: a budget that allows no disruption makes the drain fail
within its timeout naming the pods, and the node stays cordoned.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.workloads import pinned_deployment
from tools.localcluster.ansible import PlaybookResult, run_playbook
from tools.localcluster.cluster import Cluster
from tools.localcluster.procs import wait_until

pytestmark = pytest.mark.controlplane

PLAYBOOK = Path(__file__).parent / "playbooks" / "drain_module.yml"
NS = "drain-test"
BLOCKED, FREE = "drain-0000", "drain-0001"


def _drain(cluster: Cluster, tmp_path: Path, node: str, *, check: bool = False,
           **extra: Any) -> tuple[PlaybookResult, dict[str, Any], float]:
    result_file = tmp_path / f"result-{time.monotonic_ns()}.json"
    begin = time.monotonic()
    run = run_playbook(PLAYBOOK, extra_vars={"kubeconfig": str(cluster.kubeconfig), "drain_node": node,
                                             "result_file": str(result_file), **extra},
                       check=check, timeout=300)
    took = time.monotonic() - begin
    module = json.loads(result_file.read_text()) if result_file.exists() else {}
    print(f"[drain {node}] rc={run.rc} {took:.1f}s evicted={module.get('evicted')} "
          f"blocking={module.get('blocking')}{' check' if check else ''}")
    return run, module, took


def _node(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.api.get(f"/api/v1/nodes/{name}")


def _pods_on(cluster: Cluster, node: str) -> list[str]:
    pods = cluster.api.get(f"/api/v1/namespaces/{NS}/pods?fieldSelector=spec.nodeName%3D{node}")["items"]
    return sorted(p["metadata"]["name"] for p in pods)


def _running_on(cluster: Cluster, node: str, n: int, prefix: str) -> list[str]:
    def ready() -> list[str] | None:
        pods = cluster.api.get(f"/api/v1/namespaces/{NS}/pods?fieldSelector=spec.nodeName%3D{node}")["items"]
        names = [p["metadata"]["name"] for p in pods if p["metadata"]["name"].startswith(prefix)
                 and p.get("status", {}).get("phase") == "Running"
                 and not p["metadata"].get("deletionTimestamp")]
        return names if len(names) >= n else None
    wait_until(f"{n} {prefix} pods Running on {node}", ready, 120)
    return ready() or []


@pytest.fixture(scope="module")
def workloads(cluster: Cluster) -> None:
    cluster.create_many_nodes(2, prefix="drain")
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            pinned_deployment("guarded", NS, BLOCKED, 2), pinned_deployment("free", NS, FREE, 2),
            {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
             "metadata": {"name": "guarded", "namespace": NS},
             "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}}}]
    cluster.kubectl("create", "namespace", NS, check=False)
    wait_until("default ServiceAccount", lambda: cluster.api.get(
        f"/api/v1/namespaces/{NS}/serviceaccounts/default", ok404=True), 60)
    cluster.apply(yaml.safe_dump_all(docs))
    _running_on(cluster, BLOCKED, 2, "guarded")
    _running_on(cluster, FREE, 2, "free")

    def budget_observed() -> bool:
        pdb = cluster.api.get(f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/guarded")
        status = pdb.get("status") or {}
        return status.get("observedGeneration") == pdb["metadata"]["generation"] and status.get("currentHealthy") == 2
    wait_until("the PodDisruptionBudget's status", budget_observed, 60)


def test_bad_input_fails_clearly_and_changes_nothing(cluster: Cluster, workloads: None, tmp_path: Path) -> None:
    run, module, _took = _drain(cluster, tmp_path, FREE, drain_timeout=0)
    assert not run.ok and "timeout: must be a positive number of seconds" in run.stdout, str(run)
    run, module, _took = _drain(cluster, tmp_path, "no-such-node")
    assert not run.ok and "node no-such-node does not exist" in run.stdout, str(run)
    assert not _node(cluster, FREE)["spec"].get("unschedulable")


def test_check_mode_lists_the_pods_and_changes_nothing(cluster: Cluster, workloads: None, tmp_path: Path) -> None:
    before = _pods_on(cluster, FREE)
    run, module, _took = _drain(cluster, tmp_path, FREE, check=True)
    assert run.ok and run.changed == 1, str(run)
    assert sorted(p.split("/")[1] for p in module["evicted"]) == before
    assert not _node(cluster, FREE)["spec"].get("unschedulable")
    assert _pods_on(cluster, FREE) == before


def test_pdb_blocks_the_drain_which_fails_in_time_naming_the_pods(
        cluster: Cluster, workloads: None, tmp_path: Path) -> None:
    pods = _pods_on(cluster, BLOCKED)
    run, module, took = _drain(cluster, tmp_path, BLOCKED, drain_timeout=15)
    assert not run.ok, str(run)
    assert took < 15 + 60, f"the drain took {took:.0f}s for a 15 s timeout"
    assert "did not finish within 15s" in module["msg"] and "stays cordoned" in module["msg"], module["msg"]
    for pod in pods:
        assert f"{NS}/{pod}" in module["msg"], (pod, module["msg"])
    assert "disruption budget" in module["msg"], module["msg"]
    assert sorted(b["pod"] for b in module["blocking"]) == [f"{NS}/{p}" for p in pods]
    assert module["cordoned"] is True
    assert _node(cluster, BLOCKED)["spec"].get("unschedulable") is True
    assert _pods_on(cluster, BLOCKED) == pods  # nothing evicted


def test_drain_evicts_the_pods_then_uncordon(cluster: Cluster, workloads: None, tmp_path: Path) -> None:
    pods = _pods_on(cluster, FREE)
    assert len(pods) == 2
    run, module, took = _drain(cluster, tmp_path, FREE, drain_timeout=90)
    assert run.ok and run.changed == 1, str(run)
    assert sorted(p.split("/")[1] for p in module["evicted"]) == pods
    assert _pods_on(cluster, FREE) == []
    assert _node(cluster, FREE)["spec"].get("unschedulable") is True
    print(f"[drain] 2 pods evicted from {FREE} in {module['seconds']}s (playbook {took:.1f}s)")

    again, module, _took = _drain(cluster, tmp_path, FREE, drain_timeout=30)
    assert again.ok and again.changed == 0, str(again)

    run, module, _took = _drain(cluster, tmp_path, FREE, drain_state="uncordoned")
    assert run.ok and run.changed == 1, str(run)
    assert not _node(cluster, FREE)["spec"].get("unschedulable")
    _running_on(cluster, FREE, 2, "free")  # the Deployment's pods come back on the schedulable node


def test_a_blocked_drain_finishes_once_the_budget_allows(cluster: Cluster, workloads: None, tmp_path: Path) -> None:
    # The pods are pinned to the cordoned node: their replacements stay Pending, so only a budget
    # that allows every disruption lets both go.
    cluster.kubectl("delete", "pdb", "-n", NS, "guarded")
    run, module, _took = _drain(cluster, tmp_path, BLOCKED, drain_timeout=120)
    assert run.ok, str(run)
    assert _pods_on(cluster, BLOCKED) == []
