#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Create, update or delete the root App-of-Apps Argo CD Application."""

from __future__ import annotations

DOCUMENTATION = r"""
module: argocd_root_app
short_description: Create, update or delete the root App-of-Apps Argo CD Application
version_added: "0.1.0"
description:
  - Manages the root C(argoproj.io/v1alpha1) C(Application) of an App-of-Apps layout through the Kubernetes API.
  - Idempotent by server-side apply with a field manager. The module first applies as a server-side dry run and
    reports C(changed) only when that result differs from the live object (ignoring C(managedFields),
    C(resourceVersion), C(generation), C(status) and timestamps).
  - Check mode is a server-side dry run, so nothing is persisted. C(--diff) shows the object before and after.
  - With O(state=absent), O(cascade=true) makes sure Argo CD's resources finalizer is set before deleting, so Argo CD
    deletes the child resources; O(cascade=false) removes that finalizer first, so the children stay.
author:
  - ecoeco platform team (@ecoeco)
extends_documentation_fragment:
  - ecoeco.gitops.k8s_auth
attributes:
  check_mode:
    description: Server-side dry run; nothing is persisted.
    support: full
  diff_mode:
    description: Shows the Application before and after (server bookkeeping removed).
    support: full
options:
  name:
    description: Name of the Application.
    type: str
    required: true
  namespace:
    description: Namespace where Argo CD watches Applications.
    type: str
    default: argocd
  state:
    description: Whether the Application should exist.
    type: str
    choices: [present, absent]
    default: present
  project:
    description: The Argo CD AppProject the Application belongs to.
    type: str
    default: default
  repo_url:
    description:
      - Repository URL of the source (Git or Helm repository). Required when O(state=present).
      - Must be a URL (C(https://), C(http://), C(ssh://), C(git://), C(oci://), C(file://)) with a host, or scp-like
        (C(git@host:org/repo.git)); anything else is refused before any request.
    type: str
  target_revision:
    description: Branch, tag, commit or Helm chart version to track.
    type: str
    default: HEAD
  path:
    description:
      - Directory inside the repository that holds the child Applications, relative to its top.
      - An absolute path or one that leaves the repository with C(..) is refused before any request.
    type: str
  destination_server:
    description:
      - API server URL of the destination cluster.
      - Defaults to C(https://kubernetes.default.svc) when O(destination_name) is not set.
    type: str
  destination_name:
    description: Name of the destination cluster as registered in Argo CD. Mutually exclusive with O(destination_server).
    type: str
  destination_namespace:
    description: Default namespace for the resources of the root Application.
    type: str
  sync_policy:
    description: The C(spec.syncPolicy) of the Application. Omit it for manual sync.
    type: dict
    suboptions:
      automated:
        description: Enables automated sync. An empty dictionary enables it with Argo CD's defaults.
        type: dict
        suboptions:
          prune:
            description: Delete resources that are no longer in Git.
            type: bool
          self_heal:
            description: Revert changes made in the cluster outside Git.
            type: bool
          allow_empty:
            description: Allow a sync that would leave the Application with no resources.
            type: bool
      retry:
        description: Retry policy of failed syncs.
        type: dict
        suboptions:
          limit:
            description: Maximum number of attempts; C(-1) retries forever.
            type: int
          backoff:
            description: Backoff between attempts.
            type: dict
            suboptions:
              duration:
                description: First delay, a duration such as C(5s).
                type: str
              factor:
                description: Multiplier of the delay after each attempt.
                type: int
              max_duration:
                description: Longest delay, a duration such as C(3m).
                type: str
      sync_options:
        description: Sync options of the form C(Name=value), for example C(CreateNamespace=true).
        type: list
        elements: str
  finalizer:
    description: Set Argo CD's C(resources-finalizer.argocd.argoproj.io) on the Application.
    type: bool
    default: true
  labels:
    description: Labels of the Application.
    type: dict
  annotations:
    description: Annotations of the Application.
    type: dict
  cascade:
    description:
      - With O(state=absent), whether Argo CD deletes the resources of the Application (and so the child
        Applications and their resources) too.
    type: bool
    default: true
  wait:
    description:
      - With O(state=present), wait until the first sync finished (C(Synced) or operation C(Succeeded));
        fail when the sync operation failed.
      - With O(state=absent), wait until the Application is gone.
      - Never waits in check mode.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait at most when O(wait=true) (monotonic clock), and for the deletion with O(state=absent).
      - Also bounds every API request of the run (plus 5 seconds), also when the API server stops answering.
        Must be positive.
    type: int
    default: 300
  field_manager:
    description: Field manager name for server-side apply.
    type: str
    default: ecoeco.gitops
"""

EXAMPLES = r"""
- name: Apply the root App-of-Apps
  ecoeco.gitops.argocd_root_app:
    kubeconfig: /etc/kubernetes/admin.conf
    name: root
    repo_url: https://github.com/example/gitops.git
    target_revision: main
    path: clusters/prod
    destination_namespace: argocd
    sync_policy:
      automated:
        prune: true
        self_heal: true
      retry:
        limit: 5
        backoff:
          duration: 5s
          factor: 2
          max_duration: 3m
      sync_options:
        - CreateNamespace=true
    wait: true
    wait_timeout: 600

- name: Delete the root app but keep everything it deployed
  ecoeco.gitops.argocd_root_app:
    name: root
    state: absent
    cascade: false
"""

RETURN = r"""
application:
  description: The Application as stored (the dry-run result in check mode), without C(managedFields). Empty once deleted.
  returned: always
  type: dict
  sample: {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "root"}}
sync_seconds:
  description: Seconds the first sync took to finish.
  returned: when O(wait=true) and O(state=present) and the sync finished
  type: float
  sample: 6.2
diff:
  description: The Application before and after, without server bookkeeping.
  returned: in diff mode
  type: dict
  contains:
    before:
      description: The live object (empty when it did not exist).
      type: dict
      returned: in diff mode
    after:
      description: The object after the change (empty when deleted).
      type: dict
      returned: in diff mode
"""

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd import root_app
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import run_module
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import AUTH_ARG_SPEC, K8sClient
from ansible_collections.ecoeco.gitops.plugins.module_utils.secrets import SecretMaskingModule

SYNC_POLICY_SPEC = {
    "automated": {"type": "dict", "options": {
        "prune": {"type": "bool"},
        "self_heal": {"type": "bool"},
        "allow_empty": {"type": "bool"},
    }},
    "retry": {"type": "dict", "options": {
        "limit": {"type": "int"},
        "backoff": {"type": "dict", "options": {
            "duration": {"type": "str"},
            "factor": {"type": "int"},
            "max_duration": {"type": "str"},
        }},
    }},
    "sync_options": {"type": "list", "elements": "str"},
}

ARGUMENT_SPEC = dict(
    AUTH_ARG_SPEC,
    name={"type": "str", "required": True},
    namespace={"type": "str", "default": "argocd"},
    state={"type": "str", "choices": ["present", "absent"], "default": "present"},
    project={"type": "str", "default": "default"},
    repo_url={"type": "str"},
    target_revision={"type": "str", "default": "HEAD"},
    path={"type": "str"},
    destination_server={"type": "str"},
    destination_name={"type": "str"},
    destination_namespace={"type": "str"},
    sync_policy={"type": "dict", "options": SYNC_POLICY_SPEC},
    finalizer={"type": "bool", "default": True},
    labels={"type": "dict"},
    annotations={"type": "dict"},
    cascade={"type": "bool", "default": True},
    wait={"type": "bool", "default": False},
    wait_timeout={"type": "int", "default": 300},
    field_manager={"type": "str", "default": "ecoeco.gitops"},
)


def main() -> None:
    module = SecretMaskingModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        mutually_exclusive=[("destination_server", "destination_name")],
        required_if=[("state", "present", ("repo_url",))],
    )

    def body() -> dict:
        root_app.validate(module.params)  # the one validation step, before the client is configured
        client = K8sClient(module.params)
        return root_app.run(client, module.params, module.check_mode, module._diff, validated=True)

    run_module(module, body)


if __name__ == "__main__":
    main()
