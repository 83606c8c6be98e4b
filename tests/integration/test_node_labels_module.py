"""k8s_node_labels against a real kube-apiserver with kwok nodes (run through ansible-playbook).

Request counts come from the API server's audit log: the module's requests
carry the collection's user agent (ecoeco.gitops); kwok's and the
harness's do not.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tools.localcluster.ansible import run_playbook

pytestmark = pytest.mark.controlplane

PLAYBOOK = Path(__file__).parent / "playbooks" / "node_labels_module.yml"
MODULE_UA = "ecoeco.gitops"
PREFIX = "nlmod"
DB_TAINT = {"key": "dedicated", "value": "database", "effect": "PreferNoSchedule"}
CACHE_TAINT = {"key": "dedicated", "value": "cache", "effect": "NoSchedule"}
FOREIGN_TAINT = {"key": "example.com/maintenance", "value": "true", "effect": "NoSchedule"}


def names(n: int, prefix: str = PREFIX) -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


def declared() -> dict:
    n = names(6)
    return {
        n[0]: {"labels": {"workload": "database", "node.ecoeco.io/tier": "data"}, "taints": [DB_TAINT]},
        n[1]: {"labels": {"workload": "application", "node-role": "auth"}},
        n[2]: {"labels": {"workload": "cache"}, "taints": [CACHE_TAINT]},
        n[3]: {"labels": {"workload": "application"}},
        n[4]: {"labels": {"workload": "application"}},
        n[5]: {"labels": {"workload": "monitoring"}},
    }


def apply(cluster, tmp_path, nodes, *, check=False, diff=False, **extra):
    """Run the playbook; return (PlaybookResult, module result, audit events of the module on nodes)."""
    result_file = tmp_path / f"result-{time.monotonic_ns()}.json"
    mark = cluster.audit_mark()
    extra_vars = {"kubeconfig": str(cluster.kubeconfig), "nl_nodes": nodes, "result_file": str(result_file)}
    extra_vars.update(extra)
    run = run_playbook(PLAYBOOK, extra_vars=extra_vars, check=check, diff=diff, timeout=300)
    module = json.loads(result_file.read_text()) if result_file.exists() else {}
    events = cluster.audit_events(since=mark, user_agent=MODULE_UA, resource="nodes")
    return run, module, events


def live(cluster, name: str) -> dict:
    return json.loads(cluster.kubectl("get", "node", name, "-o", "json").stdout)


def patches(events) -> list[str]:
    return sorted(e["objectRef"]["name"] for e in events if e["verb"] == "patch")


@pytest.fixture(scope="module")
def nodes(cluster):
    created = cluster.create_many_nodes(6, prefix=PREFIX)
    cluster.kubectl("label", "node", created[1], "team=payments")
    cluster.kubectl("taint", "node", created[2], "example.com/maintenance=true:NoSchedule")
    yield created
    cluster.delete_nodes(created)


def test_first_run_patches_every_node_once_and_rerun_is_one_list(cluster, nodes, tmp_path):
    run, result, events = apply(cluster, tmp_path, declared())
    assert run.ok and run.changed == 1, str(run)
    assert sorted(result["changed_nodes"]) == nodes
    assert patches(events) == nodes
    assert [e["verb"] for e in events].count("list") == 1
    db = live(cluster, nodes[0])
    assert db["metadata"]["labels"]["workload"] == "database"
    assert db["metadata"]["labels"]["node.ecoeco.io/tier"] == "data"
    assert db["metadata"]["annotations"]["node.ecoeco.io/managed-labels"] == "workload"
    assert DB_TAINT in db["spec"]["taints"]

    run, result, events = apply(cluster, tmp_path, declared())
    assert run.ok and run.changed == 0, str(run)
    assert result["changed_nodes"] == {} and result["api_requests"] == 1
    assert [(e["verb"], e["objectRef"].get("name")) for e in events] == [("list", None)]


def test_undeclared_managed_label_and_taint_are_removed_foreign_ones_stay(cluster, nodes, tmp_path):
    apply(cluster, tmp_path, declared())
    want = declared()
    del want[nodes[3]]["labels"]["workload"]
    del want[nodes[0]]["labels"]["node.ecoeco.io/tier"]
    want[nodes[2]]["taints"] = []
    run, result, events = apply(cluster, tmp_path, want)
    assert run.ok and run.changed == 1, str(run)
    assert sorted(result["changed_nodes"]) == [nodes[0], nodes[2], nodes[3]]
    assert patches(events) == [nodes[0], nodes[2], nodes[3]]
    assert result["changed_nodes"][nodes[3]]["labels"]["removed"] == ["workload"]
    assert "workload" not in live(cluster, nodes[3])["metadata"]["labels"]
    assert "node.ecoeco.io/tier" not in live(cluster, nodes[0])["metadata"]["labels"]
    cache = live(cluster, nodes[2])
    assert CACHE_TAINT not in (cache["spec"].get("taints") or [])
    assert FOREIGN_TAINT in cache["spec"]["taints"]  # foreign taint untouched
    auth = live(cluster, nodes[1])
    assert auth["metadata"]["labels"]["team"] == "payments"  # foreign label untouched
    assert auth["metadata"]["labels"]["kubernetes.io/hostname"] == nodes[1]
    run, result, events = apply(cluster, tmp_path, want)
    assert run.changed == 0 and patches(events) == [], str(run)


def test_check_mode_reports_and_changes_nothing(cluster, nodes, tmp_path):
    apply(cluster, tmp_path, declared())
    want = declared()
    want[nodes[4]]["labels"]["workload"] = "cache"
    run, result, events = apply(cluster, tmp_path, want, check=True)
    assert run.ok and run.changed == 1, str(run)
    assert list(result["changed_nodes"]) == [nodes[4]]
    assert result["changed_nodes"][nodes[4]]["labels"]["changed"] == {
        "workload": {"before": "application", "after": "cache"}}
    assert patches(events) == [] and result["api_requests"] == 1
    assert live(cluster, nodes[4])["metadata"]["labels"]["workload"] == "application"


def test_diff_shows_labels_before_and_after(cluster, nodes, tmp_path):
    apply(cluster, tmp_path, declared())
    want = declared()
    want[nodes[4]]["labels"]["workload"] = "cache"
    run, _result, _events = apply(cluster, tmp_path, want, check=True, diff=True)
    assert run.ok, str(run)
    assert f"node/{nodes[4]}" in run.stdout
    assert '-        "workload": "application"' in run.stdout
    assert '+        "workload": "cache"' in run.stdout


def test_bad_entry_fails_naming_node_and_key_and_changes_nothing(cluster, nodes, tmp_path):
    apply(cluster, tmp_path, declared())
    want = declared()
    want[nodes[4]]["labels"]["workload"] = "cache"
    want[nodes[5]]["taints"] = [{"key": "dedicated", "value": "x", "effect": "NoScheduleEver"}]
    run, _result, events = apply(cluster, tmp_path, want)
    assert not run.ok and run.failed == 1, str(run)
    assert f"nodes.{nodes[5]}.taints[0] (key dedicated): effect 'NoScheduleEver'" in run.stdout
    assert events == []
    assert live(cluster, nodes[4])["metadata"]["labels"]["workload"] == "application"


def test_missing_node_fails_before_any_patch_when_asked(cluster, nodes, tmp_path):
    want = declared()
    want[nodes[4]]["labels"]["workload"] = "cache"
    want["nlmod-absent"] = {"labels": {"workload": "api"}}
    run, _result, events = apply(cluster, tmp_path, want, nl_missing="fail")
    assert not run.ok and "nlmod-absent" in run.stdout, str(run)
    assert patches(events) == []


def test_prune_strips_only_the_undeclared_node(cluster, nodes, tmp_path):
    apply(cluster, tmp_path, declared())
    all_nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    everyone = [n["metadata"]["name"] for n in all_nodes]
    want = declared()
    del want[nodes[5]]
    keep = [n for n in everyone if n != nodes[5]]
    run, result, events = apply(cluster, tmp_path, want, nl_declared=keep, nl_prune=True)
    assert run.ok, str(run)
    assert result["undeclared_managed_nodes"] == [nodes[5]]
    assert list(result["changed_nodes"]) == [nodes[5]] and patches(events) == [nodes[5]]
    pruned = live(cluster, nodes[5])["metadata"]
    assert "workload" not in pruned["labels"] and pruned["labels"]["kubernetes.io/hostname"] == nodes[5]
    assert "node.ecoeco.io/managed-labels" not in (pruned.get("annotations") or {})


def test_200_nodes_one_pass_patches_only_changed_nodes(cluster, tmp_path):
    """Issue 10: one LIST, one PATCH per node that differs, nothing on a no-op rerun."""
    many = cluster.create_many_nodes(200, prefix="nlscale")
    try:
        want = {n: {"labels": {"workload": "application" if i % 3 else "database",
                               "node.ecoeco.io/index": str(i)},
                    "taints": [DB_TAINT] if i % 3 == 0 else []} for i, n in enumerate(many)}
        run, result, events = apply(cluster, tmp_path, want)
        assert run.ok and len(result["changed_nodes"]) == 200, str(run)
        assert len(patches(events)) == 200 and len(set(patches(events))) == 200
        first = run.seconds

        run, result, events = apply(cluster, tmp_path, want)
        assert run.ok and run.changed == 0 and result["api_requests"] == 1, str(run)
        assert [e["verb"] for e in events] == ["list"]
        noop = run.seconds

        for name in many[:5]:
            want[name]["labels"]["workload"] = "cache"
        run, result, events = apply(cluster, tmp_path, want)
        assert run.ok and sorted(result["changed_nodes"]) == many[:5], str(run)
        assert patches(events) == many[:5] and result["api_requests"] == 6
        print(f"\n[node_labels 200 nodes] first run {first:.1f}s, no-op rerun {noop:.1f}s "
              f"(ansible-playbook wall time), 5 changed: {run.seconds:.1f}s")
    finally:
        cluster.delete_nodes(many)
