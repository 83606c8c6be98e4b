# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""``node_label_specs``: the k8s_node_labels input for many hosts, read from hostvars in one pass."""

from __future__ import annotations

DOCUMENTATION = r"""
name: node_label_specs
short_description: Node labels and taints of many inventory hosts, for M(ecoeco.gitops.k8s_node_labels)
version_added: "0.1.0"
description:
  - Reads, in one pass over C(hostvars), every host's node name, labels and taints and returns the
    O(ecoeco.gitops.k8s_node_labels#module:nodes) and O(ecoeco.gitops.k8s_node_labels#module:declared_nodes)
    arguments of M(ecoeco.gitops.k8s_node_labels).
  - Each host's variables are read once, so the cost grows with the number of hosts, not with its square
    (a Jinja loop that appends to a list copies the list on every host).
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The inventory hosts whose labels and taints are applied in this run (for example C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  declared_hosts:
    description:
      - Every inventory host of the cluster (for example C(groups['k8s_cluster'])); their node names become
        C(declared). Defaults to O(hosts).
    type: list
    elements: str
  name_var:
    description: Host variable with the host's Kubernetes node name; the inventory hostname when unset.
    type: str
    default: k8s_node_name
  labels_var:
    description: Host variable with the node's labels (a dict).
    type: str
    default: node_labels
  taints_var:
    description: Host variable with the node's taints (a list of C({key, value, effect})).
    type: str
    default: node_taints
"""

EXAMPLES = r"""
- name: Label and taint the hosts of this play in one pass
  ecoeco.gitops.k8s_node_labels:
    nodes: "{{ specs.nodes }}"
    declared_nodes: "{{ specs.declared }}"
  vars:
    specs: "{{ hostvars | ecoeco.gitops.node_label_specs(ansible_play_hosts, groups['k8s_cluster']) }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description:
    - C(nodes), a dict of node name to C({labels, taints}) for O(hosts); C(declared), the node names of
      O(declared_hosts) (or of O(hosts)), in inventory order without duplicates.
  type: dict
"""

from typing import Any, Dict, Iterable, List, Mapping, Optional

from ansible.errors import AnsibleFilterError


def node_label_specs(hostvars: Mapping[str, Any], hosts: Iterable[str],
                     declared_hosts: Optional[Iterable[str]] = None, name_var: str = "k8s_node_name",
                     labels_var: str = "node_labels", taints_var: str = "node_taints") -> Dict[str, Any]:
    """``{"nodes": {node: {labels, taints}}, "declared": [node, ...]}`` from each host's variables, read once."""
    if isinstance(hosts, str) or (declared_hosts is not None and isinstance(declared_hosts, str)):
        raise AnsibleFilterError("node_label_specs: hosts and declared_hosts must be lists of inventory hostnames")
    run = list(hosts or [])
    cache: Dict[str, Any] = {}

    def host_vars(host: str) -> Any:
        if host not in cache:
            try:
                cache[host] = hostvars[host]
            except KeyError:
                cache[host] = {}
        return cache[host]

    def value(hv: Any, key: str, default: Any) -> Any:
        return hv[key] if key in hv and hv[key] is not None else default

    def node_name(host: str) -> str:
        return str(value(host_vars(host), name_var, host))

    nodes: Dict[str, Any] = {}
    for host in run:
        hv = host_vars(host)
        nodes[node_name(host)] = {"labels": value(hv, labels_var, {}), "taints": value(hv, taints_var, [])}
    declared: List[str] = []
    seen = set()
    for host in (run if declared_hosts is None else declared_hosts):
        name = node_name(host)
        if name not in seen:
            seen.add(name)
            declared.append(name)
    return {"nodes": nodes, "declared": declared}


class FilterModule:
    """ecoeco.gitops filters."""

    def filters(self) -> Dict[str, Any]:
        return {"node_label_specs": node_label_specs}
