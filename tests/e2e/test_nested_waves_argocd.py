"""Issue #13, nested App-of-Apps on real Argo CD: the verifier does not wait for the parent's resync.

A root app ``nest`` manages one parent app ``platform``, which manages two
children with waves of their own: ``platform-config`` (wave 0, a ConfigMap)
and ``platform-api`` (wave 1, a Deployment with ``minReadySeconds`` so that it
turns healthy a while after its sync). Argo CD updates the parent's own health
only when it next reconciles the parent (status-only changes of child
Applications are ignored by default), so it lags the children. The verifier,
running on the root meanwhile, judges the parent by its children: it must
report the parent healthy within 1 s of the last child turning healthy.
Both times, and Argo CD's own, are printed and recorded in the run's summary.
"""

from __future__ import annotations

import concurrent.futures
import json

import pytest

from tests.e2e.gitops_e2e import clock, install_health_check, rfc3339, verify_waves
from tools.localcluster.app_recorder import AppRecorder, status, synced_healthy
from tests.support.cluster_fixtures import record_measurement

pytestmark = [pytest.mark.argocd, pytest.mark.slow]

ROOT, PARENT = "nest", "platform"
CHILDREN = {"platform-config": 0, "platform-api": 1}
MIN_READY_SECONDS = 20
DETECTION_LIMIT = 1.0


def application(argocd, name: str, path: str, namespace: str, wave: int | None = None) -> dict:
    meta = {"name": name, "namespace": argocd.namespace}
    if wave is not None:
        meta["annotations"] = {"argocd.argoproj.io/sync-wave": str(wave)}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": meta,
            "spec": {"project": "default",
                     "source": {"repoURL": argocd.repo_url, "targetRevision": "main", "path": path},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
                     "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                                    "syncOptions": ["CreateNamespace=true"]}}}


def nested_repo_files(argocd) -> dict[str, str]:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "platform-api"},
        "spec": {"replicas": 1, "minReadySeconds": MIN_READY_SECONDS,
                 "selector": {"matchLabels": {"app": "platform-api"}},
                 "template": {"metadata": {"labels": {"app": "platform-api"}},
                              "spec": {"containers": [{"name": "api", "image": "registry.example/platform-api:1.0"}]}}}}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "platform-config"},
                 "data": {"tier": "platform"}}
    return {
        "nested/root/platform.json": json.dumps(application(argocd, PARENT, "nested/platform", argocd.namespace, 0)),
        "nested/platform/platform-config.json": json.dumps(
            application(argocd, "platform-config", "nested/apps/config", "nest-config", CHILDREN["platform-config"])),
        "nested/platform/platform-api.json": json.dumps(
            application(argocd, "platform-api", "nested/apps/api", "nest-api", CHILDREN["platform-api"])),
        "nested/apps/config/configmap.json": json.dumps(configmap),
        "nested/apps/api/deployment.json": json.dumps(deployment),
    }


def own_healthy(obj: dict) -> bool:
    return (status(obj).get("health") or {}).get("status") == "Healthy"


@pytest.mark.timeout(1200)
def test_verifier_reports_a_nested_parent_healthy_with_its_last_child(cluster, argocd, tmp_path):
    install_health_check(cluster, argocd, "gating")
    argocd.commit(nested_repo_files(argocd), "nested app of apps: platform with two waves")
    rec = AppRecorder(cluster.api, argocd.namespace).start()
    try:
        cluster.apply(json.dumps(application(argocd, ROOT, "nested/root", argocd.namespace)))
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            verifier = pool.submit(verify_waves, cluster, argocd, tmp_path, root_app=ROOT,
                                   wave_timeout=300, timeout=600)
            run, result = verifier.result(timeout=900)
        assert run.ok, str(run)
        print("\n[nested] verifier report:\n" + "\n".join(result.get("report", [])) + f"\n{result.get('msg')}")
        assert not result.get("failed"), result.get("msg")
        [wave] = result["waves"]
        [parent] = wave["apps"]
        assert parent["name"] == PARENT and parent["ready"]
        # The verifier was watching before the parent was ready (not an instant pass at its first LIST).
        assert parent["seconds_to_healthy"] > 0, parent
        verifier_at = rfc3339(wave["detected_at"])

        child_at = {name: rec.settled_at(name, synced_healthy) for name in CHILDREN}
        assert all(at is not None for at in child_at.values()), child_at
        last_child = max(child_at, key=child_at.get)
        assert last_child == "platform-api", child_at
        assert child_at["platform-config"] < child_at["platform-api"], "the parent's waves did not gate"

        # Argo CD's own verdict on the parent (and on the root) comes when its resync gets round to it.
        rec.wait_for(PARENT, own_healthy, 300, since=child_at[last_child])
        rec.wait_for(ROOT, own_healthy, 300, since=child_at[last_child])
        argocd_parent_at = rec.settled_at(PARENT, own_healthy)
        argocd_root_at = rec.settled_at(ROOT, own_healthy)
        parent_obj = rec.current(PARENT)
        delay = verifier_at - child_at[last_child]
        lag = argocd_parent_at - child_at[last_child]
        lines = [f"last child {last_child} Synced/Healthy  {clock(child_at[last_child])}",
                 f"verifier reported {PARENT} healthy {clock(verifier_at)}  ({delay:+.3f}s)",
                 f"Argo CD's own {PARENT} health Healthy {clock(argocd_parent_at)}  ({lag:+.1f}s; "
                 f"lastTransitionTime {status(parent_obj)['health'].get('lastTransitionTime')})",
                 f"Argo CD's own {ROOT} health Healthy {clock(argocd_root_at)}  "
                 f"({argocd_root_at - child_at[last_child]:+.1f}s)"]
        print("[nested] " + "\n[nested] ".join(lines))
        print("[nested] timeline:\n  " + "\n  ".join(rec.timeline()))
        record_measurement("nested parent healthy",
                           f"last child {clock(child_at[last_child])}; verifier {clock(verifier_at)} "
                           f"({delay:+.3f}s); Argo CD's parent {clock(argocd_parent_at)} ({lag:+.1f}s), "
                           f"root ({argocd_root_at - child_at[last_child]:+.1f}s); app resync {argocd.app_resync}s")
        assert -0.5 <= delay <= DETECTION_LIMIT, lines
    finally:
        rec.stop()
        cluster.kubectl("delete", "application", "-n", argocd.namespace, ROOT, "--wait=false", check=False)
