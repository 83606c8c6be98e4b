"""deploy/hooks renders into least-privilege, non-root hook Jobs, and the sample repo wires it in.

The API server's own verdict on the RBAC is in tests/hooks/ (marker hooks);
this checks the rendered objects only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from tools.localcluster import sample_repo
from tools.localcluster.nodes import inventory_nodes
from tools.localcluster.versions import REPO_ROOT

# The unit tier builds the pinned kustomize itself (seconds when cached), not relying on `make build`.
pytestmark = pytest.mark.usefixtures("kustomize_bin")

HOOKS = REPO_ROOT / "deploy" / "hooks"
REMOTE = "https://github.com/ecoeco/ecoeco.gitops//deploy/hooks?ref=0.1.0"
EXPECTED_RULES = {
    ("ClusterRole", "", "nodes"): {"get", "list", "patch"},
    ("ClusterRole", "", "namespaces"): {"get", "create", "patch"},
    ("Role", "argoproj.io", "applications"): {"get", "list", "watch", "patch"},
    ("Role", "argoproj.io", "applicationsets"): {"list", "watch"},
    ("Role", "", "configmaps"): {"get"},
}


def render(path: Path) -> list[dict]:
    """``kustomize build`` with the pinned kustomize (the module's ``kustomize_bin`` fixture builds it)."""
    return sample_repo.render(path)


def by_kind(docs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def test_rbac_grants_exactly_what_the_playbooks_use() -> None:
    kinds = by_kind(render(HOOKS))
    rules = {}
    for kind in ("ClusterRole", "Role"):
        (role,) = kinds[kind]
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    rules[(kind, group, resource)] = set(rule["verbs"])
            if rule["resources"] == ["configmaps"]:
                assert rule["resourceNames"] == ["argocd-cm"]
    assert rules == EXPECTED_RULES
    sa = kinds["ServiceAccount"][0]["metadata"]
    for binding in kinds["ClusterRoleBinding"] + kinds["RoleBinding"]:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}]


def test_jobs_are_argocd_hooks_that_run_non_root_and_bounded() -> None:
    kinds = by_kind(render(HOOKS))
    jobs = {j["metadata"]["annotations"]["argocd.argoproj.io/hook"]: j for j in kinds["Job"]}
    assert set(jobs) == {"PreSync", "PostSync"}
    postsync_vars = yaml.safe_load(kinds["ConfigMap"][0]["data"]["postsync.yml"])
    for phase, job in jobs.items():
        meta, spec = job["metadata"], job["spec"]
        assert meta["annotations"]["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation,HookSucceeded"
        assert meta["namespace"] == "argocd"
        assert isinstance(spec["backoffLimit"], int) and spec["activeDeadlineSeconds"] > 0
        pod = spec["template"]["spec"]
        assert pod["serviceAccountName"] == kinds["ServiceAccount"][0]["metadata"]["name"]
        assert pod["restartPolicy"] == "Never"
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        (container,) = pod["containers"]
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]
        home = next(e["value"] for e in container["env"] if e["name"] == "HOME")
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for path in (home, "/tmp"):
            assert "emptyDir" in volumes[mounts[path]], f"{path} must be a writable emptyDir"
        assert volumes[mounts["/etc/ecoeco-gitops"]]["configMap"]["name"] == kinds["ConfigMap"][0]["metadata"]["name"]
        playbook = "presync" if phase == "PreSync" else "postsync"
        assert container["args"][:2] == ["ansible-playbook", f"ecoeco.gitops.{playbook}"]
        assert f"@/etc/ecoeco-gitops/{playbook}.yml" in container["args"]
    assert jobs["PostSync"]["spec"]["activeDeadlineSeconds"] > postsync_vars["postsync_timeout"]


def test_support_objects_exist_before_the_presync_job() -> None:
    """A first sync runs PreSync before any normal resource: what the Job needs must be a PreSync hook too."""
    for doc in render(HOOKS):
        if doc["kind"] == "Job":
            continue
        ann = doc["metadata"]["annotations"]
        assert ann["argocd.argoproj.io/hook"] == "PreSync", doc["metadata"]["name"]
        assert int(ann["argocd.argoproj.io/sync-wave"]) < 0
        assert "HookSucceeded" not in ann["argocd.argoproj.io/hook-delete-policy"]


def test_sample_repo_wires_the_hooks_with_inventory_nodes(tmp_path: Path) -> None:
    """argocd/with-hooks renders the root's children (Applications, the ApplicationSet) plus the hooks.

    The sample points at the released package on GitHub; here the URL is
    replaced by this checkout's deploy/hooks (no network).
    """
    repo = tmp_path / "repo"
    shutil.copytree(sample_repo.SAMPLE_DIR, repo)
    kust = repo / "hooks" / "kustomization.yaml"
    text = kust.read_text(encoding="utf-8")
    assert REMOTE in text
    kust.write_text(text.replace(REMOTE, os.path.relpath(HOOKS, kust.parent)), encoding="utf-8")
    kinds = by_kind(render(repo / "argocd" / "with-hooks"))
    assert {a["metadata"]["name"] for a in kinds["Application"]} == {"infrastructure", "databases", "workers",
                                                                     "gateway"}
    assert [a["metadata"]["name"] for a in kinds["ApplicationSet"]] == ["apis"]
    assert len(kinds["Job"]) == 2
    (cm,) = kinds["ConfigMap"]
    presync = yaml.safe_load(cm["data"]["presync.yml"])
    declared = {s.name: s for s in inventory_nodes()}
    assert set(presync["presync_nodes"]) == set(declared)
    for name, spec in declared.items():
        assert presync["presync_nodes"][name]["labels"] == spec.labels, name
        assert presync["presync_nodes"][name].get("taints", []) == spec.taints, name
    assert {n["name"] for n in presync["presync_namespaces"]} == {"api", "async", "data", "messaging", "monitoring"}
    assert yaml.safe_load(cm["data"]["postsync.yml"])["postsync_root_app"] == "root-app"
