"""The sample GitOps repo with the hooks (argocd/with-hooks), synced by the real Argo CD.

Argo CD creates the hook's ServiceAccount, RBAC and vars ConfigMap (PreSync,
wave -1), runs the PreSync Job, syncs waves 0..3, runs the PostSync Job and
deletes both Jobs on success. kwok "runs" the Job pods (it cannot run the
image), so what the Jobs would do is done for real around it, as the hook
identity with the sample's own vars: the presync playbook labels the 14
nodes before the sync (without those labels waves 1-3 cannot schedule), and
the postsync playbook verifies the four waves after it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.support.cluster_fixtures import REPORT
from tools.localcluster.procs import wait_until
from tests.hooks import hookenv

pytestmark = pytest.mark.hooks

HOOKS = hookenv.HOOKS_DIR
REMOTE = "https://github.com/ecoeco/ecoeco.gitops//deploy/hooks?ref=0.1.0"
GATING_LUA = hookenv.REPO_ROOT / "roles" / "argocd" / "files" / "application-health-gating.lua"
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
# The root's children in the sample (kind, name); the ApplicationSet apis generates api-auth/-scan/-chat.
CHILDREN = (("Application", "infrastructure"), ("Application", "databases"), ("Application", "workers"),
            ("ApplicationSet", "apis"), ("Application", "gateway"))
GENERATED = ("api-auth", "api-scan", "api-chat")
PACKAGE_FILES = ("kustomization.yaml", "serviceaccount.yaml", "rbac.yaml", "presync-job.yaml",
                 "postsync-job.yaml", "vars/presync.yml", "vars/postsync.yml")


def _vendor_hooks(argocd) -> str:
    """Commit this checkout's deploy/hooks into the repo (hooks/base) in place of the GitHub URL."""
    files = {f"hooks/base/{rel}": (HOOKS / rel).read_text(encoding="utf-8") for rel in PACKAGE_FILES}
    files["hooks/kustomization.yaml"] = argocd.read("hooks/kustomization.yaml").replace(REMOTE, "base")
    return argocd.commit(files, "hooks: the package of this checkout")


def _restore_session_identity(cluster, admin, argocd, hook_rbac, hook_sa_dir: Path) -> None:
    """Leave the hook identity as the other tests expect it.

    The root app is removed without cascading (its finalizer would delete the hook objects Argo CD
    created), the test RBAC is re-applied, and the session token is re-issued: Argo CD re-created the
    ServiceAccount, so tokens of the old one are rejected.
    """
    cluster.kubectl("patch", "application", "-n", argocd.namespace, "root-app", "--type", "merge",
                    "-p", '{"metadata":{"finalizers":null}}', check=False)
    cluster.kubectl("delete", "application", "-n", argocd.namespace, "root-app", "--timeout=60s", check=False)
    hookenv.apply(cluster, *hookenv.rbac_docs(hook_rbac))
    hookenv.service_account_dir(admin, cluster, hook_sa_dir)


def test_sample_repo_with_hooks_syncs_in_order(cluster, argocd, admin, hook_rbac, hook_sa_dir,
                                               tmp_path: Path) -> None:
    cluster.api.request("PATCH", f"/api/v1/namespaces/{argocd.namespace}/configmaps/argocd-cm",
                        {"data": {HEALTH_KEY: GATING_LUA.read_text(encoding="utf-8")}},
                        content_type="application/merge-patch+json")
    env = hookenv.job_env(cluster, hook_sa_dir, tmp_path / "home")

    # What the PreSync Job does, done for real with the sample's vars and the hook identity.
    presync_vars = tmp_path / "presync.yml"
    presync_vars.write_text(argocd.read("hooks/presync.yml"), encoding="utf-8")
    presync = hookenv.run_hook_playbook("presync", env, presync_vars)
    assert presync.ok, str(presync)
    REPORT["hooks: presync, sample vars (14 nodes, 5 namespaces)"] = \
        f"{presync.seconds:.1f}s, changed={presync.changed}"
    declared = yaml.safe_load(presync_vars.read_text(encoding="utf-8"))["presync_nodes"]
    for name, spec in declared.items():
        labels = cluster.api.get(f"/api/v1/nodes/{name}")["metadata"]["labels"]
        assert spec["labels"].items() <= labels.items(), name

    _vendor_hooks(argocd)
    root = yaml.safe_load(argocd.read("argocd/root-app.yaml"))
    root["spec"]["source"]["path"] = "argocd/with-hooks"
    start = time.monotonic()
    hookenv.apply(cluster, root)
    try:
        def finished() -> bool:
            op = ((argocd.application("root-app") or {}).get("status") or {}).get("operationState") or {}
            return op.get("phase") in ("Succeeded", "Failed", "Error")

        wait_until("root-app sync with hooks finished", finished, 420, interval=1)
        took = time.monotonic() - start
        op = argocd.application("root-app")["status"]["operationState"]
        assert op["phase"] == "Succeeded", op.get("message")
        results = op["syncResult"]["resources"]
        order = [(r.get("syncPhase"), r["kind"], r["name"]) for r in results]
        phases = {(r["kind"], r["name"]): (r.get("syncPhase"), r.get("hookPhase")) for r in results}
        assert phases[("Job", "ecoeco-gitops-presync")] == ("PreSync", "Succeeded"), order
        assert phases[("Job", "ecoeco-gitops-postsync")] == ("PostSync", "Succeeded"), order
        for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap"):
            assert phases[(kind, "ecoeco-gitops-hook" + ("-vars" if kind == "ConfigMap" else ""))][0] == "PreSync"
        for child in CHILDREN:
            assert phases[child][0] == "Sync", order
        REPORT["hooks: root-app with hooks, apply -> PostSync done"] = f"{took:.0f}s"
        # HookSucceeded: Argo CD deletes both Jobs (shortly after the operation ends); the support
        # objects stay for the next sync.

        def jobs_gone() -> bool:
            jobs = cluster.api.get(f"/apis/batch/v1/namespaces/{argocd.namespace}/jobs")["items"]
            return not [j for j in jobs if j["metadata"]["name"].startswith("ecoeco-gitops-")]

        wait_until("hook Jobs deleted (HookSucceeded)", jobs_gone, 90, interval=1)
        assert cluster.api.get(f"/api/v1/namespaces/{argocd.namespace}/serviceaccounts/{hookenv.HOOK_SA}")

        # What the PostSync Job does, done for real with the sample's vars. Argo CD re-created the
        # ServiceAccount (hook-delete-policy BeforeHookCreation), which invalidates tokens of the old
        # one: like the PostSync pod, take a fresh token.
        stale = hookenv.run_hook_playbook("postsync", env, hookenv.write_vars(tmp_path / "stale.yml", {
            "postsync_wave_timeout": 10, "postsync_timeout": 20}))
        assert not stale.ok and "token" in stale.stdout, str(stale)
        fresh = hookenv.service_account_dir(admin, cluster, tmp_path / "sa-after-sync" / "serviceaccount")
        env = hookenv.job_env(cluster, fresh, tmp_path / "home")
        postsync_vars = tmp_path / "postsync.yml"
        postsync_vars.write_text(argocd.read("hooks/postsync.yml"), encoding="utf-8")
        postsync = hookenv.run_hook_playbook("postsync", env, postsync_vars)
        print(postsync.stdout)
        assert postsync.ok, str(postsync)
        for child in [name for _kind, name in CHILDREN] + list(GENERATED):
            assert child in postsync.stdout
        REPORT["hooks: postsync, sample root (5 waves)"] = f"{postsync.seconds:.1f}s"
    finally:
        _restore_session_identity(cluster, admin, argocd, hook_rbac, hook_sa_dir)
