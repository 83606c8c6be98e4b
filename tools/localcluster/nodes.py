"""Node objects for kwok: from an inventory (the example's 14 hosts) or by the thousand.

Nodes are created with only what a kubelet would register (hostname/os/arch
labels, kwok's markers, capacity).  The ``node_labels``/``node_taints`` the
inventory declares are the node_labels role's to apply; ``pre_label=True``
applies them at creation for tests that need a converged cluster (e2e).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.localcluster.ansible import VENV_BIN, ansible_env
from tools.localcluster.versions import REPO_ROOT

DEFAULT_INVENTORY = REPO_ROOT / "inventories" / "example" / "hosts.yml"
CLUSTER_GROUPS = ("k8s_cluster", "k8s_control_plane", "k8s_workers")
NODE_NAME_VAR = "k8s_node_name"


@dataclass
class NodeSpec:
    """One node to create: its name and what the inventory declares for it."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    control_plane: bool = False


def _taint(item: Any) -> dict[str, str]:
    """Accept {key, value, effect} or 'key=value:Effect' / 'key:Effect'."""
    if isinstance(item, dict):
        taint = {"key": str(item["key"]), "effect": str(item.get("effect", "NoSchedule"))}
        if item.get("value") not in (None, ""):
            taint["value"] = str(item["value"])
        return taint
    text = str(item)
    keyval, dummy, effect = text.rpartition(":")
    key, dummy, value = keyval.partition("=")
    taint = {"key": key, "effect": effect or "NoSchedule"}
    if value:
        taint["value"] = value
    return taint


def inventory_nodes(inventory: str | Path | None = None) -> list[NodeSpec]:
    """The cluster's nodes as an inventory declares them (via ``ansible-inventory --list``)."""
    inv = Path(inventory) if inventory else DEFAULT_INVENTORY
    proc = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(inv), "--list"],
                          cwd=REPO_ROOT, env=ansible_env(), capture_output=True, text=True,
                          timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ansible-inventory -i {inv} failed: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout)
    hostvars = data.get("_meta", {}).get("hostvars", {})

    def hosts_of(group: str, seen: set[str] | None = None) -> list[str]:
        seen = seen if seen is not None else set()
        if group in seen or group not in data:
            return []
        seen.add(group)
        out = list(data[group].get("hosts", []))
        for child in data[group].get("children", []):
            out += hosts_of(child, seen)
        return out

    control = set(hosts_of("k8s_control_plane"))
    members: list[str] = []
    for group in CLUSTER_GROUPS:
        for host in hosts_of(group):
            if host not in members:
                members.append(host)
    if not members:
        members = sorted(hostvars)
    specs = []
    for host in members:
        hv = hostvars.get(host, {})
        labels = {str(k): "" if v is None else str(v) for k, v in (hv.get("node_labels") or {}).items()}
        taints = [_taint(t) for t in (hv.get("node_taints") or [])]
        specs.append(NodeSpec(str(hv.get(NODE_NAME_VAR) or host), labels, taints, host in control))
    return specs


def node_body(spec: NodeSpec, pre_label: bool = False, extra_labels: dict[str, str] | None = None,
              cpu: str = "32", memory: str = "128Gi", pods: str = "110") -> dict:
    """A Node as a kubelet would register it (kwok then keeps it Ready)."""
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    labels.update(extra_labels or {})
    taints: list[dict[str, str]] = []
    if pre_label:
        labels.update(spec.labels)
        taints = list(spec.taints)
    resources = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi"}
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": labels,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            # Loopback on purpose: anything that ever dials a "kubelet" stays on this machine.
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": spec.name}],
        },
    }
    if taints:
        body["spec"]["taints"] = taints
    return body
