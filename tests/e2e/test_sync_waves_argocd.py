"""argocd_sync_waves on real Argo CD (controller + repo-server) with the sample GitOps repo.

A middle wave cannot become healthy: the sample's PostgreSQL StatefulSet is
committed with a nodeSelector no node has. With the argocd role's gating
health check, Argo CD holds back the later waves; the verifier, run through
ansible-playbook, waits wave 0, then fails on wave 1 naming the app, the
StatefulSet and the pod the scheduler cannot place, with the scheduler's
own words.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.harness.ansible import run_playbook

pytestmark = pytest.mark.argocd

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "tests" / "integration" / "playbooks" / "sync_waves.yml"
GATING_LUA = ROOT / "roles" / "argocd" / "files" / "application-health-gating.lua"
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
STS = "k8s/databases/base/postgresql/statefulset.yaml"


def test_stuck_wave_is_diagnosed_down_to_the_pod(cluster, argocd, tmp_path):
    cluster.api.request("PATCH", f"/api/v1/namespaces/{argocd.namespace}/configmaps/argocd-cm",
                        {"data": {HEALTH_KEY: GATING_LUA.read_text()}}, content_type="application/merge-patch+json")
    sts = argocd.read(STS)
    assert "workload: database" in sts
    argocd.commit({STS: sts.replace("workload: database", "workload: nowhere")}, "pin postgresql nowhere")
    result_file = tmp_path / "result.json"
    try:
        cluster.apply(argocd.read("argocd/root-app.yaml"))
        begin = time.monotonic()
        run = run_playbook(PLAYBOOK, extra_vars={
            "kubeconfig": str(cluster.kubeconfig), "result_file": str(result_file), "sw_root_app": "root-app",
            "sw_namespace": argocd.namespace, "sw_wave_timeout": 60, "sw_timeout": 300,
            "sw_expect_failure": True}, timeout=400)
        took = time.monotonic() - begin
        result = json.loads(result_file.read_text())
        print(f"\n[sync_waves e2e] playbook {took:.0f}s, module {result.get('elapsed')}s, "
              f"{result.get('api_requests')} requests\n" + "\n".join(result.get("report", []))
              + f"\n{result.get('msg')}")
        assert run.ok, run
        assert result["failed"] is True
        assert result["health_check"] == "gating"
        assert [w["healthy"] for w in result["waves"]] == [True, False, False, False]
        msg = result["msg"]
        assert msg.startswith("wave timeout 60s reached; wave 1, app databases: sync Synced, health Progressing")
        assert "StatefulSet data/postgresql 0/1 ready, pod postgresql-0 Pending - 0/14 nodes are available" in msg
        assert [w["apps"][0]["sync"] for w in result["waves"][2:]] == ["Missing", "Missing"]
        # Argo CD gated: the later waves' Applications were never created
        assert argocd.application("workers") is None and argocd.application("apis") is None
        assert result["api_requests"] <= 3 + 2 * 3 + 2      # cm, LIST, WATCH(es); GET+LIST per workload
    finally:
        cluster.kubectl("delete", "application", "-n", argocd.namespace, "root-app", "--wait=false", check=False)
        argocd.reset_repo()
