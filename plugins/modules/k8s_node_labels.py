#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Declarative labels and taints for many Kubernetes nodes in one pass."""

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_node_labels
short_description: Declarative labels and taints for many Kubernetes nodes in one pass
version_added: "0.1.0"
description:
  - Lists the cluster's nodes once, computes for every declared node the labels and taints that differ, and sends one
    JSON patch per node that differs, several at a time. A run that changes nothing makes exactly one API request.
  - Every patch operation is guarded by a C(test) of the value it was planned from (the label, the annotation, the
    whole taint list). When someone else changed one of those meanwhile, the node is read again and planned anew;
    status updates of the node never cause a retry.
  - A label or taint is managed when its key starts with one of O(managed_prefixes), or when its key is recorded in
    the node annotations C(node.ecoeco.io/managed-labels) or C(node.ecoeco.io/managed-taints), which this module
    writes for every declared key outside the prefixes. Managed keys that are no longer declared are removed.
    Labels and taints that are not managed are never touched.
  - Every node, label key and value, and taint is validated before any request that changes something, so a bad
    entry changes nothing.
author:
  - ecoeco platform team (@ecoeco)
extends_documentation_fragment:
  - ecoeco.gitops.k8s_auth
attributes:
  check_mode:
    description: Computes and reports the changes without patching.
    support: full
  diff_mode:
    description: Shows labels and taints before and after, per changed node.
    support: full
options:
  nodes:
    description:
      - The nodes to manage in this run, by node name. Each value is a dictionary with C(labels) (a dictionary of
        label key to value) and C(taints) (a list of dictionaries with C(key), optional C(value), and C(effect), one of
        C(NoSchedule), C(PreferNoSchedule), C(NoExecute)).
      - The declared labels and taints are the whole managed set of the node.
    type: dict
    required: true
  managed_prefixes:
    description:
      - Label and taint key prefixes that this module owns on every node.
      - A prefix that covers Kubernetes' own label namespaces (C(kubernetes.io/), C(k8s.io/) and their subdomains,
        or a prefix of a key the kubelet sets such as C(kubernetes.io/arch)) is refused unless
        O(allow_kubernetes_prefixes=true), since a run would remove those labels and taints.
    type: list
    elements: str
    default: ["node.ecoeco.io/"]
  allow_kubernetes_prefixes:
    description: Accept O(managed_prefixes) that cover C(kubernetes.io/) or C(k8s.io/) keys (you own them then).
    type: bool
    default: false
  declared_nodes:
    description:
      - Every node name of the inventory, used to tell nodes that are only outside this run (for example through
        C(--limit)) from nodes that nobody declares.
      - Defaults to the keys of O(nodes).
    type: list
    elements: str
  prune_undeclared_nodes:
    description: Remove managed labels and taints from nodes that carry them but are not in O(declared_nodes).
    type: bool
    default: false
  parallelism:
    description: How many node patches are in flight at once, from 1 to 64.
    type: int
    default: 8
  missing_nodes:
    description: What to do when a node of O(nodes) is not in the cluster, C(warn) and go on, or C(fail) before any change.
    type: str
    choices: [warn, fail]
    default: warn
"""

EXAMPLES = r"""
- name: Label and taint the whole inventory in one pass
  ecoeco.gitops.k8s_node_labels:
    kubeconfig: /etc/kubernetes/admin.conf
    nodes:
      k8s-postgresql:
        labels:
          workload: database
          node.ecoeco.io/role: database
        taints:
          - key: dedicated
            value: database
            effect: NoSchedule
      k8s-api-1:
        labels:
          workload: api
    declared_nodes: "{{ groups['all'] }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
changed_nodes:
  description:
    - Per changed node, C(labels) (C(added), C(removed), C(changed)), C(taints) (C(added), C(removed)) and
      C(ownership) (the managed-keys annotations written), each only when that part changed.
  returned: always
  type: dict
  sample: {"k8s-postgresql": {"labels": {"added": {"workload": "database"}, "removed": [], "changed": {}}}}
missing_nodes:
  description: Nodes of O(nodes) that are not in the cluster.
  returned: always
  type: list
  elements: str
  sample: ["k8s-worker-9"]
undeclared_managed_nodes:
  description: Nodes in the cluster, not in O(declared_nodes), that carry managed labels or taints.
  returned: always
  type: list
  elements: str
  sample: ["old-node-1"]
api_requests:
  description: API requests this run made (one LIST, then one PATCH per changed node, plus re-reads on conflicts).
  returned: always
  type: int
  sample: 1
"""

from ansible_collections.ecoeco.gitops.plugins.module_utils import node_labels
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import run_module
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import AUTH_ARG_SPEC, K8sClient
from ansible_collections.ecoeco.gitops.plugins.module_utils.secrets import SecretMaskingModule

ARGUMENT_SPEC = dict(
    AUTH_ARG_SPEC,
    nodes={"type": "dict", "required": True},
    managed_prefixes={"type": "list", "elements": "str", "default": ["node.ecoeco.io/"]},
    allow_kubernetes_prefixes={"type": "bool", "default": False},
    declared_nodes={"type": "list", "elements": "str"},
    prune_undeclared_nodes={"type": "bool", "default": False},
    parallelism={"type": "int", "default": 8},
    missing_nodes={"type": "str", "choices": ["warn", "fail"], "default": "warn"},
)


def main() -> None:
    module = SecretMaskingModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)

    def body() -> dict:
        checked = node_labels.validate(module.params)  # the one validation step, before the client is configured
        client = K8sClient(module.params)
        return node_labels.run(client, module.params, module.check_mode, module._diff, checked=checked)

    run_module(module, body)


if __name__ == "__main__":
    main()
