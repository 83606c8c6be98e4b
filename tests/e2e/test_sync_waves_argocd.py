"""argocd_sync_waves on real Argo CD (controller + repo-server) with the sample GitOps repo.

A middle wave cannot become healthy: the sample's PostgreSQL StatefulSet is
committed with a nodeSelector no node has. With the argocd role's gating
health check, Argo CD holds back the later waves; the verifier, run through
ansible-playbook, waits wave 0, then fails on wave 1 naming the app, the
StatefulSet and the pod the scheduler cannot place, with the scheduler's
own words.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.gitops_e2e import install_health_check, verify_waves
from tools.localcluster.nodes import inventory_nodes

pytestmark = pytest.mark.argocd

STS = "k8s/databases/base/postgresql/statefulset.yaml"


def _label_nodes_as_the_inventory_says(cluster) -> None:
    """The example inventory's node labels (the node_labels role's job, done directly here): only the
    StatefulSet pinned below is unschedulable, every other workload has its node."""
    for spec in inventory_nodes():
        cluster.api.request("PATCH", f"/api/v1/nodes/{spec.name}", {"metadata": {"labels": spec.labels}},
                            content_type="application/merge-patch+json")


def test_stuck_wave_is_diagnosed_down_to_the_pod(cluster, argocd, tmp_path):
    _label_nodes_as_the_inventory_says(cluster)
    install_health_check(cluster, argocd, "gating")
    sts = argocd.read(STS)
    assert "workload: database" in sts
    argocd.commit({STS: sts.replace("workload: database", "workload: nowhere")}, "pin postgresql nowhere")
    try:
        cluster.apply(argocd.read("argocd/root-app.yaml"))
        begin = time.monotonic()
        run, result = verify_waves(cluster, argocd, tmp_path, root_app="root-app", wave_timeout=60, timeout=300,
                                   expect_failure=True, timeout_run=400)
        took = time.monotonic() - begin
        print(f"\n[sync_waves e2e] playbook {took:.0f}s, module {result.get('elapsed')}s, "
              f"{result.get('api_requests')} requests\n" + "\n".join(result.get("report", []))
              + f"\n{result.get('msg')}")
        assert run.ok, run
        assert result["failed"] is True
        assert result["health_check"] == "gating"
        assert [w["healthy"] for w in result["waves"]] == [True, False, False, False, False]
        msg = result["msg"]
        assert msg.startswith("wave timeout 60s reached; wave 1, app databases: sync Synced, health Progressing")
        assert "StatefulSet data/postgresql 0/1 ready, pod postgresql-0 Pending - 0/14 nodes are available" in msg
        assert [w["apps"][0]["sync"] for w in result["waves"][2:]] == ["Missing", "Missing", "Missing"]
        # Argo CD gated: the later waves' Applications and the ApplicationSet were never created
        assert argocd.application("workers") is None and argocd.applicationset("apis") is None
        assert argocd.application("gateway") is None
        # cm, LIST, WATCH(es) of Applications and of ApplicationSets; GET+LIST per workload
        assert result["api_requests"] <= 3 + 2 + 2 * 3 + 2
    finally:
        cluster.kubectl("delete", "application", "-n", argocd.namespace, "root-app", "--wait=false", check=False)
        argocd.reset_repo()


def test_verify_prints_progress_while_a_wave_is_slow(cluster, argocd, tmp_path):
    """ecoeco.gitops.verify prints the report every progress interval while wave 1 waits for a node.

    Wave 1's StatefulSet wants a node labelled ``workload: late`` that only appears ~20 s later: the play shows
    which waves are done and what it waits for at every slice, then passes; the slices share one clock.
    """
    import re
    import threading

    from tools.localcluster.ansible import run_playbook
    from tools.localcluster.demo import demo_extra_vars
    from tools.localcluster.nodes import DEFAULT_INVENTORY

    from tools.localcluster.procs import wait_until

    # The test before this one deletes its root-app without waiting (Argo CD's cascade takes a while):
    # applying it again while it is being deleted would change nothing.
    wait_until("the earlier test's root-app deleted", lambda: argocd.application("root-app") is None, 300,
               interval=1)
    _label_nodes_as_the_inventory_says(cluster)
    install_health_check(cluster, argocd, "gating")
    sts = argocd.read(STS)
    argocd.commit({STS: sts.replace("workload: database", "workload: late")}, "postgresql waits for a late node")
    late_node = inventory_nodes()[-1].name
    try:
        cluster.apply(argocd.read("argocd/root-app.yaml"))
        out: dict = {}
        extra = {**demo_extra_vars(cluster, argocd), "app_of_apps_name": "root-app",
                 "app_of_apps_progress_interval": 5, "app_of_apps_wave_timeout": 180, "app_of_apps_timeout": 400}
        runner = threading.Thread(target=lambda: out.update(run=run_playbook(
            "ecoeco.gitops.verify", DEFAULT_INVENTORY, extra_vars=extra, timeout=600)), daemon=True)
        runner.start()
        time.sleep(20)
        cluster.api.request("PATCH", f"/api/v1/nodes/{late_node}", {"metadata": {"labels": {"workload": "late"}}},
                            content_type="application/merge-patch+json")
        runner.join(600)
        run = out["run"]
        waiting = [float(s) for s in re.findall(r"still waiting after (\d+)s: wave 1: waiting for databases",
                                                run.stdout)]
        print(f"\n[progress] {len(waiting)} progress reports at {waiting} s; playbook {run.seconds:.0f}s")
        assert run.ok, run.stdout[-3000:]
        assert len(waiting) >= 3, run.stdout[-3000:]
        gaps = [b - a for a, b in zip(waiting, waiting[1:])]
        assert all(4 <= g <= 12 for g in gaps), gaps          # every 5 s of waiting, plus Ansible's start-up
        assert "all waves are Synced and Healthy" in run.stdout
    finally:
        _label_nodes_as_the_inventory_says(cluster)
        cluster.kubectl("delete", "application", "-n", argocd.namespace, "root-app", "--wait=false", check=False)
        argocd.reset_repo()
