"""The node_labels role patches only the nodes that differ, in one pass, on 200 kwok nodes.

The API server's audit log is the witness: after a first convergence, a change
to three hosts' labels must cause exactly three PATCH requests (on those three
nodes) and one LIST; a rerun with nothing to change makes one LIST and nothing else.
On the Ansible side the role's work runs once for the 200 hosts, not once per host:
the recap holds one host with a handful of task results.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools.localcluster.ansible import run_playbook
from tools.localcluster.versions import REPO_ROOT

pytestmark = pytest.mark.controlplane

PLAYBOOK = REPO_ROOT / "playbooks" / "node_labels.yml"
PREFIX = "it-scale"
COUNT = 200
CHANGED = (7, 42, 199)
HARNESS_UA = "ecoeco-harness"


def _labels(i: int, generation: int = 0) -> dict[str, str]:
    labels = {"node.ecoeco.io/pool": ("general", "database", "api", "batch")[i % 4],
              "node.ecoeco.io/rack": f"r{i % 16:02d}"}
    if generation and i in CHANGED:
        labels["node.ecoeco.io/pool"] = "moved"
        labels["node.ecoeco.io/generation"] = str(generation)
    return labels


def _inventory(path: Path, generation: int = 0) -> Path:
    hosts = {f"{PREFIX}-{i:04d}": {"node_labels": _labels(i, generation)} for i in range(COUNT)}
    inv = {"all": {"vars": {"ansible_connection": "local",
                            "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                   "children": {"k8s_cluster": {"hosts": hosts}}}}
    path.write_text(yaml.safe_dump(inv, sort_keys=False), encoding="utf-8")
    return path


def _requests(cluster, mark) -> list[dict]:
    return [ev for ev in cluster.audit_events(since=mark, resource="nodes")
            if HARNESS_UA not in (ev.get("userAgent") or "")
            and (ev.get("user") or {}).get("username") == "kubernetes-admin"]


@pytest.fixture(scope="module")
def scale_nodes(cluster):
    names = cluster.create_many_nodes(COUNT, prefix=PREFIX, timeout=600)
    yield names
    cluster.delete_nodes(names)


def _run(cluster, inventory: Path):
    result = run_playbook(PLAYBOOK, inventory, extra_vars={"ecoeco_kubeconfig": str(cluster.kubeconfig)},
                          timeout=600)
    assert result.ok, result
    # One pass: the API play's variable check, the include, the role's argument validation, the
    # module call and the report ran for one host only (the recap lists the hosts that ran a
    # task), not for each of the 200.
    assert list(result.recap) == [f"{PREFIX}-0000"], result.recap
    assert result.recap[f"{PREFIX}-0000"]["ok"] <= 5, result.recap
    return result


def test_only_changed_nodes_are_patched(cluster, scale_nodes, tmp_path):
    _run(cluster, _inventory(tmp_path / "gen0.yml"))  # first convergence

    mark = cluster.audit_mark()
    _run(cluster, _inventory(tmp_path / "gen1.yml", generation=1))
    events = _requests(cluster, mark)
    patched = sorted(ev["objectRef"]["name"] for ev in events if ev["verb"] == "patch")
    lists = [ev for ev in events if ev["verb"] == "list"]
    assert patched == [f"{PREFIX}-{i:04d}" for i in CHANGED], patched
    assert len(lists) == 1, [(ev["verb"], ev.get("requestURI")) for ev in events]
    assert len(events) == len(CHANGED) + 1

    nodes = {n["metadata"]["name"]: n for n in cluster.api.get("/api/v1/nodes")["items"]}
    for i in CHANGED:
        labels = nodes[f"{PREFIX}-{i:04d}"]["metadata"]["labels"]
        assert labels["node.ecoeco.io/pool"] == "moved" and labels["node.ecoeco.io/generation"] == "1"
    assert nodes[f"{PREFIX}-0008"]["metadata"]["labels"]["node.ecoeco.io/pool"] == "general"


def test_noop_rerun_is_one_list(cluster, scale_nodes, tmp_path):
    inventory = _inventory(tmp_path / "gen1.yml", generation=1)
    _run(cluster, inventory)  # converged (also when run alone)
    mark = cluster.audit_mark()
    result = _run(cluster, inventory)
    events = _requests(cluster, mark)
    assert [ev["verb"] for ev in events] == ["list"], [(ev["verb"], ev.get("requestURI")) for ev in events]
    assert result.changed == 0, result
