"""argocd_root_app on real Argo CD (controller + repo-server) with the sample GitOps repo.

The module applies the root App-of-Apps and waits for its first sync; then
``state: absent`` with ``cascade: true`` hands the deletion to Argo CD, which
deletes the child Applications and only then drops its finalizer.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tools.localcluster.ansible import run_playbook

pytestmark = pytest.mark.argocd

PLAYBOOK = Path(__file__).resolve().parents[1] / "integration" / "playbooks" / "root_app.yml"
NAME = "root-app"


def root(cluster, argocd, tmp_path, **options):
    result_file = tmp_path / f"result-{time.monotonic_ns()}.json"
    extra = {"kubeconfig": str(cluster.kubeconfig), "ra_name": NAME, "ra_namespace": argocd.namespace,
             "result_file": str(result_file)}
    extra.update({f"ra_{k}": v for k, v in options.items()})
    run = run_playbook(PLAYBOOK, extra_vars=extra, timeout=600)
    return run, (json.loads(result_file.read_text()) if result_file.exists() else {})


def children(argocd) -> list[str]:
    return sorted(a["metadata"]["name"] for a in argocd.applications() if a["metadata"]["name"] != NAME)


def test_first_sync_then_cascading_delete(cluster, argocd, tmp_path):
    try:
        begin = time.monotonic()
        run, result = root(cluster, argocd, tmp_path, repo_url=argocd.repo_url, target_revision="main",
                           path="argocd/applications", destination_namespace=argocd.namespace,
                           sync_policy={"automated": {"prune": True, "self_heal": True}},
                           wait=True, wait_timeout=300)
        assert run.ok and run.changed == 1, str(run)
        status = result["application"]["status"]
        assert status["sync"]["status"] == "Synced" or status["operationState"]["phase"] == "Succeeded"
        assert status["sync"]["revision"] == argocd.head()
        created = children(argocd)
        assert "infrastructure" in created, created
        print(f"\n[root_app e2e] first sync after {result['sync_seconds']}s (module), playbook "
              f"{time.monotonic() - begin:.0f}s; children {created}")
        # Idempotent while the controller keeps writing status and operation state.
        run, result = root(cluster, argocd, tmp_path, repo_url=argocd.repo_url, target_revision="main",
                           path="argocd/applications", destination_namespace=argocd.namespace,
                           sync_policy={"automated": {"prune": True, "self_heal": True}})
        assert run.ok and run.changed == 0, str(run)

        begin = time.monotonic()
        run, result = root(cluster, argocd, tmp_path, state="absent", cascade=True, wait=True, wait_timeout=240)
        assert run.ok and run.changed == 1, str(run)
        assert argocd.application(NAME) is None
        # Argo CD removed the root's finalizer only after deleting what the root manages: its children.
        leftover = [a for a in argocd.applications() if a["metadata"]["name"] in created
                    and not a["metadata"].get("deletionTimestamp")]
        assert leftover == [], leftover
        print(f"[root_app e2e] cascading delete done in {time.monotonic() - begin:.0f}s")
    finally:
        if argocd.application(NAME) is not None:
            cluster.kubectl("patch", "application", "-n", argocd.namespace, NAME, "--type", "merge",
                            "-p", '{"metadata":{"finalizers":null}}', check=False)
            cluster.kubectl("delete", "application", "-n", argocd.namespace, NAME, "--wait=false", check=False)
