"""k8s_node_labels logic: managed set, plans, patches, validation, request counts."""

from __future__ import annotations

import copy
import json
import threading

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils import node_labels as nl
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import NODES, K8sError
from tests.support.failure import failure

PREFIXES = ["node.ecoeco.io/"]


def node(name, labels=None, annotations=None, taints=None, rv="10"):
    obj = {"metadata": {"name": name, "resourceVersion": rv, "labels": dict(labels or {})}, "spec": {}}
    if annotations:
        obj["metadata"]["annotations"] = dict(annotations)
    if taints:
        obj["spec"]["taints"] = [dict(t) for t in taints]
    return obj


def _resolve(doc, path):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    for part in parts[:-1]:
        doc = doc[part]
    return doc, parts[-1]


def apply_json_patch(doc, ops):
    """RFC 6902 on dicts, with the API server's rule that ``test`` of null matches a missing path."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parent, key = _resolve(doc, op["path"])
        if op["op"] == "test":
            if parent.get(key) != op["value"]:
                raise K8sError(f"test failed at {op['path']}", 422)
        elif op["op"] == "add":
            parent[key] = copy.deepcopy(op["value"])
        elif op["op"] == "replace":
            assert key in parent, op
            parent[key] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            assert key in parent, op
            del parent[key]
    return doc


class FakeNodes:
    """Nodes behind LIST/GET/JSON PATCH; ``heartbeat`` changes resourceVersion like kubelet status."""

    def __init__(self, *nodes):
        self.nodes = {n["metadata"]["name"]: copy.deepcopy(n) for n in nodes}
        self.requests = []
        self.lock = threading.Lock()
        self.interfere = {}

    def list(self, ref, namespace=None, label_selector=None, field_selector=None):
        assert ref == NODES
        self.requests.append(("LIST",))
        return {"items": copy.deepcopy(list(self.nodes.values()))}

    def get(self, ref, name, namespace=None):
        self.requests.append(("GET", name))
        return copy.deepcopy(self.nodes.get(name))

    def heartbeat(self, name):
        meta = self.nodes[name]["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    def json_patch(self, ref, name, ops, namespace=None, dry_run=False):
        with self.lock:
            self.requests.append(("PATCH", name, copy.deepcopy(ops)))
            self.heartbeat(name)  # status updates never make a patch fail
            if name in self.interfere:  # someone else writes one of our labels first
                key, value = self.interfere.pop(name)
                self.nodes[name]["metadata"]["labels"][key] = value
            new = apply_json_patch(self.nodes[name], ops)
            self.nodes[name] = new
            self.heartbeat(name)
            return copy.deepcopy(new)

    def patches(self):
        return [r for r in self.requests if r[0] == "PATCH"]


def params(nodes, **over):
    base = {"nodes": nodes, "managed_prefixes": list(PREFIXES), "declared_nodes": None,
            "prune_undeclared_nodes": False, "parallelism": 4, "missing_nodes": "warn"}
    base.update(over)
    return base


DB_TAINT = {"key": "dedicated", "value": "database", "effect": "NoSchedule"}


# -- validation --------------------------------------------------------------------------
@pytest.mark.parametrize("nodes, needle", [
    ({"db-1": {"taints": [{"key": "dedicated", "effect": "NoBlah"}]}}, "nodes.db-1.taints[0] (key dedicated): effect 'NoBlah'"),
    ({"db-1": {"labels": {"bad key": "x"}}}, "nodes.db-1.labels (key bad key)"),
    ({"db-1": {"labels": {"workload": "no spaces"}}}, "nodes.db-1.labels (key workload): value 'no spaces'"),
    ({"db-1": {"labels": {"a/b/c": "x"}}}, "nodes.db-1.labels (key a/b/c)"),
    ({"db-1": {"labels": {"workload": "x" * 64}}}, "longer than 63"),
    ({"Bad_Node": {}}, "nodes: node name 'Bad_Node'"),
    ({"db-1": {"lables": {}}}, "nodes.db-1: unknown field(s) lables"),
    ({"db-1": {"taints": [DB_TAINT, DB_TAINT]}}, "duplicate key and effect NoSchedule"),
    ({"db-1": {"taints": [{"value": "x", "effect": "NoSchedule"}]}}, "nodes.db-1.taints[0]: key is required"),
])
def test_validation_names_node_and_key(nodes, needle):
    with pytest.raises(ValidationError) as exc:
        nl.validate_nodes(nodes, PREFIXES)
    assert needle in str(exc.value)


def test_bad_entry_changes_nothing_and_makes_no_request():
    api = FakeNodes(node("db-1"), node("api-1"))
    nodes = {"api-1": {"labels": {"workload": "api"}},
             "db-1": {"taints": [{"key": "dedicated", "effect": "Nope"}]}}
    with pytest.raises(ValidationError, match="nothing was changed"):
        nl.run(api, params(nodes), check_mode=False, want_diff=False)
    assert api.requests == []


def test_label_values_from_yaml_scalars():
    desired = nl.validate_nodes({"gpu-1": {"labels": {"gpu": True, "cores": 8, "empty": None}}}, PREFIXES)
    assert desired["gpu-1"].labels == {"gpu": "true", "cores": "8", "empty": ""}


# -- managed set and plans ---------------------------------------------------------------
def want(labels=None, taints=None):
    return nl.DesiredNode(labels=dict(labels or {}), taints=[dict(t) for t in taints or []])


def ops_by_path(plan):
    return {(op["op"], op["path"]): op.get("value") for op in plan.patch}


def test_first_apply_records_plain_keys_and_patches_labels_taints():
    not_ready = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    live = node("db-1", labels={"kubernetes.io/hostname": "db-1"}, taints=[not_ready])
    plan = nl.plan_node(live, want({"workload": "database", "node.ecoeco.io/tier": "data"}, [DB_TAINT]), PREFIXES)
    assert plan.patch == [
        {"op": "test", "path": "/metadata/labels/node.ecoeco.io~1tier", "value": None},
        {"op": "add", "path": "/metadata/labels/node.ecoeco.io~1tier", "value": "data"},
        {"op": "test", "path": "/metadata/labels/workload", "value": None},
        {"op": "add", "path": "/metadata/labels/workload", "value": "database"},
        {"op": "test", "path": "/metadata/annotations", "value": None},
        {"op": "add", "path": "/metadata/annotations",
         "value": {nl.MANAGED_LABELS_ANNOTATION: "workload", nl.MANAGED_TAINTS_ANNOTATION: "dedicated"}},
        {"op": "test", "path": "/spec/taints", "value": [not_ready]},
        {"op": "replace", "path": "/spec/taints", "value": [not_ready, DB_TAINT]},
    ]
    assert plan.change["labels"]["added"] == {"workload": "database", "node.ecoeco.io/tier": "data"}
    assert plan.change["taints"] == {"added": [DB_TAINT], "removed": []}
    assert plan.after["labels"]["kubernetes.io/hostname"] == "db-1"
    assert "resourceVersion" not in json.dumps(plan.patch)


def test_converged_node_needs_no_patch():
    live = node("db-1", labels={"workload": "database", "node.ecoeco.io/tier": "data", "foreign": "x"},
                annotations={nl.MANAGED_LABELS_ANNOTATION: "workload", nl.MANAGED_TAINTS_ANNOTATION: "dedicated"},
                taints=[{"key": "other", "effect": "NoExecute", "timeAdded": "t"}, DB_TAINT])
    plan = nl.plan_node(live, want({"workload": "database", "node.ecoeco.io/tier": "data"}, [DB_TAINT]), PREFIXES)
    assert plan.patch is None and plan.change == {}


def test_undeclared_recorded_and_prefixed_labels_are_removed_foreign_untouched():
    live = node("db-1", labels={"workload": "database", "node.ecoeco.io/old": "1", "team": "x", "zone": "a"},
                annotations={nl.MANAGED_LABELS_ANNOTATION: "workload,zone"})
    plan = nl.plan_node(live, want({"zone": "a"}), PREFIXES)
    ops = ops_by_path(plan)
    assert ("remove", "/metadata/labels/workload") in ops
    assert ("remove", "/metadata/labels/node.ecoeco.io~1old") in ops
    assert ops[("test", "/metadata/labels/workload")] == "database"
    assert ops[("replace", "/metadata/annotations/node.ecoeco.io~1managed-labels")] == "zone"
    assert not any("team" in op["path"] or "zone" in op["path"] for op in plan.patch)
    assert plan.change["labels"]["removed"] == ["node.ecoeco.io/old", "workload"]
    assert plan.after["labels"] == {"team": "x", "zone": "a"}
    assert apply_json_patch(live, plan.patch)["metadata"]["labels"] == {"team": "x", "zone": "a"}


def test_unmanaged_taints_are_kept_and_managed_removed():
    foreign = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "t"}
    live = node("db-1", annotations={nl.MANAGED_TAINTS_ANNOTATION: "dedicated"},
                taints=[foreign, DB_TAINT, {"key": "node.ecoeco.io/drain", "effect": "NoExecute"}])
    plan = nl.plan_node(live, want(), PREFIXES)
    ops = ops_by_path(plan)
    assert ops[("replace", "/spec/taints")] == [foreign]
    assert ops[("test", "/spec/taints")] == live["spec"]["taints"]
    assert ("remove", "/metadata/annotations/node.ecoeco.io~1managed-taints") in ops
    assert len(plan.change["taints"]["removed"]) == 2


def test_all_taints_removed_clears_the_field():
    live = node("db-1", annotations={nl.MANAGED_TAINTS_ANNOTATION: "dedicated"}, taints=[DB_TAINT])
    plan = nl.plan_node(live, want(), PREFIXES)
    assert ("remove", "/spec/taints") in ops_by_path(plan)
    assert "taints" not in apply_json_patch(live, plan.patch)["spec"]


def test_changed_taint_value_and_label_value():
    live = node("db-1", labels={"workload": "db"}, annotations={nl.MANAGED_LABELS_ANNOTATION: "workload",
                                                                nl.MANAGED_TAINTS_ANNOTATION: "dedicated"},
                taints=[{"key": "dedicated", "value": "old", "effect": "NoSchedule"}])
    plan = nl.plan_node(live, want({"workload": "database"}, [DB_TAINT]), PREFIXES)
    assert plan.change["labels"]["changed"] == {"workload": {"before": "db", "after": "database"}}
    assert plan.change["taints"]["added"] == [DB_TAINT]
    ops = ops_by_path(plan)
    assert ops[("test", "/metadata/labels/workload")] == "db"
    assert ops[("replace", "/metadata/labels/workload")] == "database"
    assert ops[("replace", "/spec/taints")] == [DB_TAINT]
    assert not any("annotations" in op["path"] for op in plan.patch)


def test_taking_over_a_foreign_label_with_same_value_only_records_it():
    live = node("db-1", labels={"workload": "database"}, annotations={"other": "x"})
    plan = nl.plan_node(live, want({"workload": "database"}), PREFIXES)
    assert plan.patch == [
        {"op": "test", "path": "/metadata/annotations/node.ecoeco.io~1managed-labels", "value": None},
        {"op": "add", "path": "/metadata/annotations/node.ecoeco.io~1managed-labels", "value": "workload"},
    ]
    assert "labels" not in plan.change and plan.change["ownership"]


def test_plan_all_classifies_missing_and_undeclared():
    live = [node("db-1"), node("old-1", labels={"node.ecoeco.io/x": "1"}),
            node("old-2", annotations={nl.MANAGED_LABELS_ANNOTATION: "workload"}),
            node("limited-1", labels={"node.ecoeco.io/x": "1"}), node("plain")]
    desired = {"db-1": want({"a": "b"}), "ghost": want({"a": "b"})}
    plan = nl.plan_all(live, desired, ["db-1", "ghost", "limited-1"], PREFIXES, prune_undeclared=False)
    assert plan.missing == ["ghost"]
    assert plan.undeclared_managed == ["old-1", "old-2"]
    assert [p.name for p in plan.nodes] == ["db-1"]
    pruned = nl.plan_all(live, desired, ["db-1", "ghost", "limited-1"], PREFIXES, prune_undeclared=True)
    assert [p.name for p in pruned.nodes] == ["db-1", "old-1", "old-2"]


# -- run: request counts, check mode, diff -------------------------------------------------
def cluster(n=20):
    return FakeNodes(*[node(f"w-{i}", labels={"kubernetes.io/hostname": f"w-{i}"}) for i in range(n)])


def inventory(n=20):
    return {f"w-{i}": {"labels": {"workload": "api" if i % 2 else "database", "node.ecoeco.io/idx": str(i)},
                       "taints": [DB_TAINT] if i % 2 == 0 else []} for i in range(n)}


def test_first_run_patches_each_node_once_then_noop_is_one_request():
    api = cluster()
    first = nl.run(api, params(inventory()), check_mode=False, want_diff=False)
    assert first["changed"] is True and len(first["changed_nodes"]) == 20
    assert first["api_requests"] == 21 == len(api.requests)
    assert sorted(r[1] for r in api.patches()) == sorted(f"w-{i}" for i in range(20))
    api.requests.clear()
    second = nl.run(api, params(inventory()), check_mode=False, want_diff=False)
    assert second["changed"] is False and second["changed_nodes"] == {}
    assert second["api_requests"] == 1 and api.requests == [("LIST",)]


def test_only_differing_nodes_are_patched():
    api = cluster()
    nl.run(api, params(inventory()), check_mode=False, want_diff=False)
    api.requests.clear()
    inv = inventory()
    inv["w-3"]["labels"]["workload"] = "cache"
    del inv["w-4"]["labels"]["workload"]
    result = nl.run(api, params(inv), check_mode=False, want_diff=True)
    assert sorted(result["changed_nodes"]) == ["w-3", "w-4"]
    assert result["api_requests"] == 3
    assert "workload" not in api.nodes["w-4"]["metadata"]["labels"]
    assert result["changed_nodes"]["w-4"]["labels"]["removed"] == ["workload"]
    assert {d["before_header"] for d in result["diff"]} == {"node/w-3", "node/w-4"}
    d3 = [d for d in result["diff"] if d["before_header"] == "node/w-3"][0]
    assert d3["before"]["labels"]["workload"] == "api" and d3["after"]["labels"]["workload"] == "cache"


def test_check_mode_makes_only_the_list_request():
    api = cluster(5)
    before = copy.deepcopy(api.nodes)
    result = nl.run(api, params(inventory(5)), check_mode=True, want_diff=True)
    assert result["changed"] is True and len(result["changed_nodes"]) == 5
    assert api.requests == [("LIST",)] and result["api_requests"] == 1
    assert api.nodes == before
    assert len(result["diff"]) == 5


def test_status_heartbeats_do_not_cause_retries():
    api = cluster(3)
    for name in list(api.nodes):
        api.heartbeat(name)  # patches never pin the resourceVersion
    result = nl.run(api, params(inventory(3)), check_mode=False, want_diff=False)
    assert result["api_requests"] == 4


def test_concurrent_write_to_our_key_rereads_and_replans():
    api = cluster(3)
    nl.run(api, params(inventory(3)), check_mode=False, want_diff=False)
    inv = inventory(3)
    inv["w-1"]["labels"]["workload"] = "cache"
    api.interfere["w-1"] = ("workload", "someone-else")
    api.requests.clear()
    result = nl.run(api, params(inv), check_mode=False, want_diff=False)
    assert result["changed"] is True
    assert [r[0] for r in api.requests] == ["LIST", "PATCH", "GET", "PATCH"]
    assert result["api_requests"] == 4
    assert api.nodes["w-1"]["metadata"]["labels"]["workload"] == "cache"


def test_patch_error_is_reported_per_node():
    api = cluster(2)
    real = api.json_patch

    def failing(ref, name, ops, namespace=None, dry_run=False):
        if name == "w-1":
            raise K8sError("PATCH /api/v1/nodes/w-1: 403 forbidden", 403)
        return real(ref, name, ops, namespace, dry_run)
    api.json_patch = failing
    msg, result = failure(nl.run, api, params(inventory(2)), check_mode=False, want_diff=False)
    assert "w-1: PATCH /api/v1/nodes/w-1: 403 forbidden" in msg
    assert list(result["changed_nodes"]) == ["w-0"]


def test_missing_nodes_warn_or_fail_before_any_patch():
    api = cluster(2)
    inv = inventory(2)
    inv["w-99"] = {"labels": {"workload": "api"}}
    warned = nl.run(api, params(inv), check_mode=False, want_diff=False)
    assert warned["missing_nodes"] == ["w-99"] and "w-99" in warned["warnings"][0]
    api = cluster(2)
    msg, _result = failure(nl.run, api, params(inv, missing_nodes="fail"), check_mode=False, want_diff=False)
    assert "w-99" in msg and api.patches() == []


def test_undeclared_nodes_left_alone_unless_pruned():
    api = FakeNodes(node("w-0"), node("gone", labels={"node.ecoeco.io/idx": "9", "workload": "db", "x": "y"},
                                      annotations={nl.MANAGED_LABELS_ANNOTATION: "workload"}))
    inv = {"w-0": {"labels": {"workload": "api"}}}
    result = nl.run(api, params(inv), check_mode=False, want_diff=False)
    assert result["undeclared_managed_nodes"] == ["gone"] and "gone" not in result["changed_nodes"]
    assert "prune_undeclared_nodes=false" in result["warnings"][0]
    pruned = nl.run(api, params(inv, prune_undeclared_nodes=True), check_mode=False, want_diff=False)
    assert pruned["changed_nodes"]["gone"]["labels"]["removed"] == ["node.ecoeco.io/idx", "workload"]
    assert api.nodes["gone"]["metadata"]["labels"] == {"x": "y"}
    assert nl.MANAGED_LABELS_ANNOTATION not in api.nodes["gone"]["metadata"].get("annotations", {})


def test_declared_nodes_outside_the_run_are_not_undeclared():
    api = FakeNodes(node("w-0"), node("w-1", labels={"node.ecoeco.io/idx": "1"}))
    result = nl.run(api, params({"w-0": {"labels": {"a": "b"}}}, declared_nodes=["w-0", "w-1"]),
                    check_mode=False, want_diff=False)
    assert result["undeclared_managed_nodes"] == [] and "warnings" not in result


def test_parallelism_is_bounded():
    api = cluster(30)
    active = {"now": 0, "max": 0}
    real = api.json_patch
    gate = threading.Lock()

    def tracking(*args, **kwargs):
        with gate:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        try:
            import time
            time.sleep(0.005)
            return real(*args, **kwargs)
        finally:
            with gate:
                active["now"] -= 1
    api.json_patch = tracking
    nl.run(api, params(inventory(30), parallelism=3), check_mode=False, want_diff=False)
    assert 1 <= active["max"] <= 3
