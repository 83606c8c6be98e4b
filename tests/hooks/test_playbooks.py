"""presync/postsync run as the hook Job runs them: a TokenRequest token, the loopback API server, no kubeconfig.

They succeed with the RBAC of deploy/hooks (and every request they make is
authorized), and fail cleanly, with a message that names the missing
permission, when a verb is taken away.
"""

from __future__ import annotations

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import NAMESPACES, NODES
from tests.support.cluster_fixtures import REPORT
from tests.hooks import hookenv

pytestmark = pytest.mark.hooks

LABEL = "node.ecoeco.io/hook-test"
TEST_NAMESPACE = "hooks-presync-test"
HOOK_USER = f"system:serviceaccount:{hookenv.HOOK_NAMESPACE}:{hookenv.HOOK_SA}"


def _nodes(admin, n: int = 2) -> list[str]:
    names = sorted(item["metadata"]["name"] for item in admin.list(NODES)["items"])
    assert len(names) >= n, f"the harness cluster has {len(names)} nodes"
    return names[:n]


def _presync_vars(nodes: list[str], labelled: bool) -> dict:
    declared = {}
    for i, name in enumerate(nodes):
        declared[name] = {"labels": {LABEL: f"node-{i}"} if labelled else {},
                          "taints": [{"key": LABEL, "value": "yes", "effect": "PreferNoSchedule"}]
                          if labelled and i == 0 else []}
    return {
        "presync_nodes": declared,
        # only the test's keys: the shared cluster's other labels stay untouched
        "presync_managed_prefixes": [LABEL],
        "presync_namespaces": [{"name": TEST_NAMESPACE, "labels": {"ecoeco.io/workload": "application"}}]
        if labelled else [],
        "presync_allow_empty": True,
    }


def _no_traceback(result) -> None:
    assert "Traceback (most recent call last)" not in result.stdout + result.stderr, str(result)


def _failed_postsync(cluster, sa_dir, app, tmp_path, wave_timeout: int, timeout: int):
    """Run the postsync hook as its Job would, and check it failed cleanly (no traceback)."""
    env = hookenv.job_env(cluster, sa_dir, tmp_path / "home")
    vars_file = hookenv.write_vars(tmp_path / "postsync.yml", {
        "postsync_root_app": app.name, "postsync_namespace": app.namespace,
        "postsync_wave_timeout": wave_timeout, "postsync_timeout": timeout})
    result = hookenv.run_hook_playbook("postsync", env, vars_file, timeout=300)
    print(result.stdout)  # shown with -s / on failure: what a user reads in the Job's log
    assert result.rc != 0 and result.failed >= 1, str(result)
    _no_traceback(result)
    return result


def _hook_requests(cluster, mark, user: str = HOOK_USER) -> list[dict]:
    return cluster.audit_events(since=mark, user=user)


def _describe(events: list[dict]) -> set[tuple[str, str, int]]:
    return {(e["verb"], (e.get("objectRef") or {}).get("resource", e.get("requestURI", "")),
             (e.get("responseStatus") or {}).get("code", 0)) for e in events}


def test_presync_labels_nodes_and_ensures_namespaces(cluster, admin, hook_sa_dir, tmp_path) -> None:
    nodes = _nodes(admin)
    env = hookenv.job_env(cluster, hook_sa_dir, tmp_path / "home")
    vars_file = hookenv.write_vars(tmp_path / "presync.yml", _presync_vars(nodes, labelled=True))
    try:
        mark = cluster.audit_mark()
        first = hookenv.run_hook_playbook("presync", env, vars_file)
        assert first.ok and first.changed >= 2, str(first)
        REPORT["hooks: presync (first run)"] = f"{first.seconds:.1f}s, changed={first.changed}"
        node = admin.get(NODES, nodes[0])
        assert node["metadata"]["labels"][LABEL] == "node-0"
        assert {"key": LABEL, "value": "yes", "effect": "PreferNoSchedule"} in node["spec"]["taints"]
        assert admin.get(NODES, nodes[1])["metadata"]["labels"][LABEL] == "node-1"
        ns = admin.get(NAMESPACES, TEST_NAMESPACE)
        assert ns and ns["metadata"]["labels"]["ecoeco.io/workload"] == "application"
        events = _hook_requests(cluster, mark)
        assert events, "the audit log shows no request from the hook ServiceAccount"
        refused = [e for e in events if (e.get("responseStatus") or {}).get("code") == 403]
        assert not refused, f"the hook's RBAC refused: {_describe(refused)}"

        second = hookenv.run_hook_playbook("presync", env, vars_file)
        assert second.ok and second.changed == 0, str(second)
        REPORT["hooks: presync (second run)"] = f"{second.seconds:.1f}s, changed=0"
        checked = hookenv.run_hook_playbook("presync", env, vars_file, args=("--check", "--diff"))
        assert checked.ok and checked.changed == 0, str(checked)
    finally:
        cleanup = hookenv.write_vars(tmp_path / "cleanup.yml", _presync_vars(nodes, labelled=False))
        done = hookenv.run_hook_playbook("presync", env, cleanup)
        admin.delete(NAMESPACES, TEST_NAMESPACE)
    assert done.ok, str(done)
    assert LABEL not in admin.get(NODES, nodes[0])["metadata"].get("labels", {})
    assert not any(t["key"] == LABEL for t in admin.get(NODES, nodes[0])["spec"].get("taints") or [])


def test_presync_fails_cleanly_without_node_patch(cluster, admin, short_grant, tmp_path) -> None:
    nodes = _nodes(admin)
    sa_dir = short_grant("-nopatch", {"nodes": {"patch"}})
    env = hookenv.job_env(cluster, sa_dir, tmp_path / "home")
    vars_file = hookenv.write_vars(tmp_path / "presync.yml", _presync_vars(nodes, labelled=True))
    result = hookenv.run_hook_playbook("presync", env, vars_file)
    print(result.stdout)  # shown with -s / on failure: what a user reads in the Job's log
    assert result.rc != 0 and result.failed >= 1, str(result)
    _no_traceback(result)
    out = result.stdout
    assert "lacks an RBAC permission" in out and "forbidden" in out.lower(), out[-3000:]
    assert 'cannot patch resource "nodes"' in out, out[-3000:]
    assert LABEL not in admin.get(NODES, nodes[0])["metadata"].get("labels", {})


def test_presync_rejects_an_empty_declaration(cluster, hook_sa_dir, tmp_path) -> None:
    env = hookenv.job_env(cluster, hook_sa_dir, tmp_path / "home")
    vars_file = hookenv.write_vars(tmp_path / "empty.yml", {"presync_nodes": {}})
    result = hookenv.run_hook_playbook("presync", env, vars_file)
    assert result.rc != 0, str(result)
    assert "declare presync_nodes" in result.stdout, result.stdout[-2000:]


def test_postsync_verifies_the_waves_with_the_hook_identity(cluster, admin, root_app, hook_sa_dir, tmp_path) -> None:
    env = hookenv.job_env(cluster, hook_sa_dir, tmp_path / "home")
    vars_file = hookenv.write_vars(tmp_path / "postsync.yml", {
        "postsync_root_app": root_app.name, "postsync_namespace": root_app.namespace,
        "postsync_wave_timeout": 120, "postsync_timeout": 240})
    mark = cluster.audit_mark()
    result = hookenv.run_hook_playbook("postsync", env, vars_file)
    print(result.stdout)  # shown with -s: the wave report
    assert result.ok, str(result)
    _no_traceback(result)
    for child in root_app.children:
        assert child in result.stdout, f"the wave report does not name {child}:\n{result.stdout[-3000:]}"
    REPORT["hooks: postsync (verify 2 waves)"] = f"{result.seconds:.1f}s"
    events = _hook_requests(cluster, mark)
    refused = [e for e in events if (e.get("responseStatus") or {}).get("code") == 403]
    assert events and not refused, f"the hook's RBAC refused: {_describe(refused)}"


def test_postsync_fails_cleanly_without_listing_applications(cluster, admin, root_app, short_grant,
                                                             tmp_path) -> None:
    sa_dir = short_grant("-nolist", {"applications": {"list", "watch"}})
    result = _failed_postsync(cluster, sa_dir, root_app, tmp_path, wave_timeout=30, timeout=60)
    out = result.stdout
    assert "lacks an RBAC permission" in out and "applications" in out, out[-3000:]
    assert result.seconds < 60, f"a missing permission must fail fast, took {result.seconds:.0f}s"


def test_postsync_fails_the_hook_when_a_wave_is_not_healthy(cluster, broken_root_app, hook_sa_dir,
                                                            tmp_path) -> None:
    """Wave 1 cannot render: the hook fails within its timeout, names wave and app, and prints the report."""
    result = _failed_postsync(cluster, hook_sa_dir, broken_root_app, tmp_path, wave_timeout=45, timeout=90)
    out = result.stdout
    broken = broken_root_app.children[1]
    assert f"wave 1, app {broken}" in out, out[-4000:]                  # the verifier's failure, in the Job's log
    assert "Show the wave report" in out and "WAVE  APP" in out, out[-4000:]
    assert result.seconds < 150, f"took {result.seconds:.0f}s for a 90s timeout"
    REPORT["hooks: postsync (broken wave 1, fails)"] = f"{result.seconds:.1f}s"
