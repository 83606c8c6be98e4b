"""The harness's Argo CD: real controller + repo-server sync from the local file:// repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.localcluster.argocd import ArgoCD, run_core
from tools.localcluster.cluster import Cluster
from tools.localcluster.procs import wait_until

pytestmark = pytest.mark.argocd

RSS_LIMIT = 1.5 * 2**30


def _application(name: str, app: ArgoCD, path: str, namespace: str) -> str:
    return json.dumps({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": app.namespace},
        "spec": {"project": "default",
                 "source": {"repoURL": app.repo_url, "targetRevision": "main", "path": path},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
                 "syncPolicy": {"automated": {"prune": True},
                                "syncOptions": ["CreateNamespace=true"]}}})


def _configmap(value: str) -> str:
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: harness-probe\n"
            f"data:\n  value: \"{value}\"\n")


def test_argocd_syncs_commits_from_the_local_repo(cluster: Cluster, argocd: ArgoCD) -> None:
    ns = "harness-argocd"
    first = argocd.commit({"harness-probe/cm.yaml": _configmap("one")}, "probe one")
    cluster.apply(_application("harness-probe", argocd, "harness-probe", ns))
    try:
        got = argocd.wait_application("harness-probe", timeout=180)
        assert got["status"]["sync"]["revision"] == first
        cm = cluster.api.get(f"/api/v1/namespaces/{ns}/configmaps/harness-probe")
        assert cm["data"]["value"] == "one"

        second = argocd.commit({"harness-probe/cm.yaml": _configmap("two")}, "probe two")
        argocd.refresh("harness-probe")

        def synced_two() -> bool:
            status = argocd.application("harness-probe")["status"]
            live = cluster.api.get(f"/api/v1/namespaces/{ns}/configmaps/harness-probe")
            return status["sync"].get("revision") == second and live["data"]["value"] == "two"

        wait_until("second commit synced", synced_two, 180)
    finally:
        cluster.kubectl("delete", "application", "-n", argocd.namespace, "harness-probe",
                        "--wait=false", check=False)
        argocd.reset_repo()
    assert not (argocd.repo_path / "harness-probe").exists()


def test_argocd_cli_core_mode_port_forwards_through_kwok(cluster: Cluster, argocd: ArgoCD, tmp_path: Path) -> None:
    """`argocd app resources --core` reads the controller's resource tree from our redis via a kwok pod."""
    ns, name = "harness-core", "harness-core"
    cm = _configmap("core").replace("harness-probe", "harness-core-probe")
    argocd.commit({"harness-core/cm.yaml": cm}, "core-mode probe")
    cluster.apply(_application(name, argocd, "harness-core", ns))
    node = cluster.api.get("/api/v1/nodes")["items"][0]["metadata"]["name"]
    pods: list[str] = []
    try:
        argocd.wait_application(name, timeout=180)
        pods = argocd.create_pods(node)
        mark = cluster.audit_mark()
        proc = run_core(cluster, tmp_path, "app", "resources", name, namespace=argocd.namespace, home=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "harness-core-probe" in proc.stdout and "ConfigMap" in proc.stdout, proc.stdout

        def forwarded() -> set[tuple[str, int]]:
            return {(e["objectRef"]["name"], (e.get("responseStatus") or {}).get("code"))
                    for e in cluster.audit_events(since=mark, resource="pods")
                    if e["objectRef"].get("subresource") == "portforward"}

        wait_until("redis port-forward (101 Switching Protocols) in the audit log",
                   lambda: ("argocd-redis-local", 101) in forwarded(), 30)
    finally:
        argocd.delete_pods(pods)
        cluster.kubectl("delete", "application", "-n", argocd.namespace, name, "--wait=false", check=False)
        argocd.reset_repo()


def test_sample_repo_root_app_points_at_the_local_repo(argocd: ArgoCD) -> None:
    root = argocd.read("argocd/root-app.yaml")
    assert argocd.repo_url in root
    assert "github.com" not in root


def test_memory_with_argocd_stays_under_limit(cluster: Cluster, argocd: ArgoCD) -> None:
    total = sum(cluster.rss_bytes().values()) + sum(argocd.rss_bytes().values())
    print(f"{cluster.rss_report()}; argocd {argocd.rss_report()}")
    assert total < RSS_LIMIT
