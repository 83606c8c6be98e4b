"""node_label_specs: the k8s_node_labels input for many hosts, each host's variables read once."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ecoeco.gitops.plugins.filter.node_label_specs import FilterModule, node_label_specs


class CountingHostvars(dict):
    """hostvars stand-in that counts how often each host's variables are read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads: dict = {}

    def __getitem__(self, host):
        self.reads[host] = self.reads.get(host, 0) + 1
        return super().__getitem__(host)


HOSTVARS = {
    "cp": {"k8s_node_name": "k8s-master", "node_labels": {"workload": "control-plane"}},
    "w1": {"node_labels": {"workload": "api"},
           "node_taints": [{"key": "dedicated", "value": "api", "effect": "NoSchedule"}]},
    "w2": {"node_labels": None},
    "w3": {},
}


def test_nodes_of_the_run_and_every_declared_name():
    hv = CountingHostvars(HOSTVARS)
    out = node_label_specs(hv, ["cp", "w1", "w2"], ["cp", "w1", "w2", "w3"])
    assert out["nodes"] == {
        "k8s-master": {"labels": {"workload": "control-plane"}, "taints": []},
        "w1": {"labels": {"workload": "api"},
               "taints": [{"key": "dedicated", "value": "api", "effect": "NoSchedule"}]},
        "w2": {"labels": {}, "taints": []},
    }
    assert out["declared"] == ["k8s-master", "w1", "w2", "w3"]
    assert hv.reads == {"cp": 1, "w1": 1, "w2": 1, "w3": 1}      # each host once, whatever is read from it


def test_limit_narrows_nodes_not_declared():
    out = node_label_specs(HOSTVARS, ["w1"], list(HOSTVARS))
    assert list(out["nodes"]) == ["w1"] and len(out["declared"]) == 4


def test_declared_defaults_to_the_run_and_other_variable_names():
    hv = {"a": {"name": "node-a", "lbl": {"x": "1"}, "tnt": []}, "b": {}}
    out = node_label_specs(hv, ["a", "b", "a"], name_var="name", labels_var="lbl", taints_var="tnt")
    assert out == {"nodes": {"node-a": {"labels": {"x": "1"}, "taints": []}, "b": {"labels": {}, "taints": []}},
                   "declared": ["node-a", "b"]}


def test_unknown_host_counts_as_no_variables():
    want = {"nodes": {"ghost": {"labels": {}, "taints": []}}, "declared": ["ghost"]}
    assert node_label_specs({}, ["ghost"]) == want


def test_a_string_instead_of_a_list_is_refused():
    with pytest.raises(AnsibleFilterError, match="lists of inventory hostnames"):
        node_label_specs(HOSTVARS, "w1")


def test_scales_linearly():
    hv = CountingHostvars({f"h{i}": {"node_labels": {"n": str(i)}} for i in range(5000)})
    out = node_label_specs(hv, list(hv), list(hv))
    assert len(out["nodes"]) == 5000 and len(out["declared"]) == 5000
    assert set(hv.reads.values()) == {1}


def test_registered_as_a_filter():
    assert FilterModule().filters()["node_label_specs"] is node_label_specs
