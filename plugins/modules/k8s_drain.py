#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Cordon, drain (through the Eviction API, bounded) or uncordon a Kubernetes node."""

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_drain
short_description: Cordon, drain through the Eviction API within a bounded time, or uncordon a node
version_added: "0.1.0"
description:
  - O(state=drained) cordons the node, then evicts its pods through the Eviction API (C(pods/eviction)), so
    PodDisruptionBudgets are respected, and waits until they are gone, all within O(timeout) seconds.
  - An eviction refused because a PodDisruptionBudget allows no disruption now is retried every O(poll_interval)
    seconds. When O(timeout) passes first the module fails naming every pod still on the node and why (the
    budget's message, or that it is still terminating); the node stays cordoned, so nothing that should follow
    a finished drain runs on it.
  - Mirror (static) pods are left alone; so are DaemonSet pods unless O(ignore_daemonsets=false), which refuses
    them. Pods without a controller (unless O(force)) and pods with emptyDir volumes (unless
    O(delete_emptydir_data)) are refused before any eviction, naming them, as C(kubectl drain) does.
  - O(state=cordoned) only marks the node unschedulable; O(state=uncordoned) makes it schedulable again.
  - Keep O(timeout) below the task's own limits (C(async), connection timeouts) so that the module, not Ansible,
    says what blocks.
author:
  - ecoeco platform team (@ecoeco)
extends_documentation_fragment:
  - ecoeco.gitops.k8s_auth
attributes:
  check_mode:
    description: Cordoning and uncordoning are sent as server-side dry runs; the pods a drain would evict are
      listed and none is evicted. Pods that would refuse the drain fail it in check mode too.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  name:
    description: Name of the node.
    type: str
    required: true
  state:
    description: C(drained) (cordoned and emptied), C(cordoned) (unschedulable only) or C(uncordoned).
    type: str
    choices: [drained, cordoned, uncordoned]
    default: drained
  timeout:
    description: Seconds the whole drain (cordon, evictions and waiting for the pods to go) may take.
    type: int
    default: 120
  grace_period:
    description: Termination grace period in seconds given to each evicted pod; unset uses each pod's own.
    type: int
  poll_interval:
    description: Seconds between rounds of eviction retries and checks that the pods are gone.
    type: int
    default: 2
  ignore_daemonsets:
    description: Leave DaemonSet pods on the node (their controller would recreate them at once); C(false) refuses
      the drain when there are any.
    type: bool
    default: true
  delete_emptydir_data:
    description: Evict pods with emptyDir volumes (their data is lost); C(false) refuses the drain naming them.
    type: bool
    default: false
  force:
    description: Evict pods that no controller manages (nothing recreates them); C(false) refuses the drain naming them.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Drain a worker within two minutes before removing it
  ecoeco.gitops.k8s_drain:
    kubeconfig: /etc/kubernetes/admin.conf
    name: k8s-worker-3
    timeout: 120
    delete_emptydir_data: true
  delegate_to: localhost

- name: Make it schedulable again
  ecoeco.gitops.k8s_drain:
    name: k8s-worker-3
    state: uncordoned
"""

RETURN = r"""
node:
  description: The node's name.
  returned: always
  type: str
  sample: k8s-worker-3
cordoned:
  description: Whether the node is unschedulable after the run (still C(true) after a failed drain).
  returned: always
  type: bool
  sample: true
evicted:
  description: Pods (namespace/name) evicted and gone; in check mode, the pods a drain would evict.
  returned: always
  type: list
  elements: str
  sample: ["default/web-5d8f7-abcde"]
skipped:
  description: Pods left on the node (mirror pods, DaemonSet pods).
  returned: always
  type: list
  elements: str
  sample: ["kube-system/calico-node-x2x9z"]
blocking:
  description: On failure, each pod that kept the drain from finishing and why.
  returned: always
  type: list
  elements: dict
  sample: [{"pod": "default/db-0", "reason": "eviction refused (429): Cannot evict pod as it would violate the pod's disruption budget."}]
seconds:
  description: How long the drain took.
  returned: when O(state=drained) and not in check mode
  type: float
  sample: 4.2
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ecoeco.gitops.plugins.module_utils import drain
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import run_module
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import AUTH_ARG_SPEC, K8sClient

ARGUMENT_SPEC = dict(
    AUTH_ARG_SPEC,
    name={"type": "str", "required": True},
    state={"type": "str", "choices": list(drain.STATES), "default": "drained"},
    timeout={"type": "int", "default": 120},
    grace_period={"type": "int"},
    poll_interval={"type": "int", "default": 2},
    ignore_daemonsets={"type": "bool", "default": True},
    delete_emptydir_data={"type": "bool", "default": False},
    force={"type": "bool", "default": False},
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)

    def body() -> dict:
        drain.validate(module.params)
        return drain.run(K8sClient(module.params), module.params, module.check_mode)

    run_module(module, body)


if __name__ == "__main__":
    main()
