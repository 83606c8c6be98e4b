"""The example inventory: hosts.ini and hosts.yml describe the same 14-node cluster."""

from __future__ import annotations

import json
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

from tools.localcluster.ansible import VENV_BIN, ansible_env

EXAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "example"
WORKLOAD_GROUPS = ("api", "async_workers", "database", "cache", "message_queue", "monitoring")


@lru_cache(maxsize=None)
def inventory(name: str) -> dict:
    """`ansible-inventory --list` of one example inventory file."""
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(EXAMPLE / name), "--list"],
        capture_output=True, text=True, env=ansible_env(), check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def hosts_of(inv: dict, group: str) -> set[str]:
    """Hosts of a group, children included."""
    entry = inv.get(group, {})
    found = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        found |= hosts_of(inv, child)
    return found


def test_ini_and_yaml_are_the_same_cluster() -> None:
    assert inventory("hosts.ini") == inventory("hosts.yml")


@pytest.mark.parametrize("name", ["hosts.ini", "hosts.yml"])
def test_fourteen_nodes_one_control_plane(name: str) -> None:
    inv = inventory(name)
    cluster = hosts_of(inv, "k8s_cluster")
    assert len(cluster) == 14
    assert hosts_of(inv, "k8s_control_plane") == {"k8s-master"}
    assert hosts_of(inv, "k8s_workers") == cluster - {"k8s-master"}


@pytest.mark.parametrize("name", ["hosts.ini", "hosts.yml"])
def test_workload_groups_partition_the_workers(name: str) -> None:
    inv = inventory(name)
    groups = [hosts_of(inv, g) for g in WORKLOAD_GROUPS]
    assert all(groups), "every workload group has a node"
    assert sum(len(g) for g in groups) == len(set().union(*groups))
    assert set().union(*groups) == hosts_of(inv, "k8s_workers")


@pytest.mark.parametrize("name", ["hosts.ini", "hosts.yml"])
def test_node_labels_and_taints_are_typed(name: str) -> None:
    hostvars = inventory(name)["_meta"]["hostvars"]
    expected = {"api": "application", "async_workers": "async-workers", "database": "database",
                "cache": "cache", "message_queue": "message-queue", "monitoring": "monitoring"}
    inv = inventory(name)
    for group, workload in expected.items():
        for host in hosts_of(inv, group):
            labels = hostvars[host]["node_labels"]
            assert isinstance(labels, dict) and labels["workload"] == workload, host
    for host, hv in hostvars.items():
        for taint in hv.get("node_taints", []):
            assert set(taint) == {"key", "value", "effect"}, host
            assert taint["effect"] in {"NoSchedule", "PreferNoSchedule", "NoExecute"}, host


def test_group_vars_pin_the_versions_of_versions_yml() -> None:
    import yaml

    versions = yaml.safe_load((EXAMPLE.parents[1] / "versions.yml").read_text(encoding="utf-8"))
    group_vars = yaml.safe_load((EXAMPLE / "group_vars" / "all.yml").read_text(encoding="utf-8"))
    assert group_vars["kubeadm_version"] == versions["kubernetes"]
    assert group_vars["control_plane_kubernetes_version"] == versions["kubernetes"]
    assert group_vars["argocd_version"] == versions["argocd"]
    assert group_vars["calico_version"] == versions["calico"]
