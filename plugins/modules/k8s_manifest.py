#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Server-side apply of a whole release manifest, writing only the objects that differ."""

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_manifest
short_description: Server-side apply of a whole manifest, writing only the objects that differ
version_added: "0.1.0"
description:
  - Applies every object of a multi-document manifest (a release's C(install.yaml), for instance) with server-side
    apply under one field manager, in this order, namespaces, then CustomResourceDefinitions (waited for until
    C(Established)), then every other object in manifest order.
  - An object is not written when every field of its document already has that value in the cluster and every field
    the field manager owns is still in the document. A rerun of an unchanged manifest therefore makes one GET per
    object and no write, and a field dropped from a newer manifest is still removed.
  - Any other object is applied; it counts as changed only when the API server's result differs from what was there
    in anything but bookkeeping (resourceVersion, managedFields, generation) and C(status). Controllers updating
    status never make a run report a change.
  - Kinds are resolved by one discovery request per group/version, or from a CustomResourceDefinition of the same
    manifest.
  - Values of Secrets never appear in the result or the diff.
author:
  - ecoeco platform team (@ecoeco)
extends_documentation_fragment:
  - ecoeco.gitops.k8s_auth
attributes:
  check_mode:
    description:
      - Server-side dry run of each apply. Objects in a namespace, or of a kind, that this run would create are reported
        as created without a request, since the API server cannot dry-run them yet.
    support: full
  diff_mode:
    description: Before and after of each object that changes (Secret values hidden).
    support: full
options:
  definition:
    description:
      - The objects, as a list of dictionaries, one dictionary, or a YAML string with one or more documents.
      - Empty documents are skipped; C(kind=List) documents are expanded.
      - Mutually exclusive with O(src).
    type: raw
  src:
    description: Path of a YAML file with the objects, on the host that runs the module. Mutually exclusive with O(definition).
    type: path
  namespace:
    description: Namespace for namespaced objects whose document names none. Ignored for cluster-scoped objects.
    type: str
  field_manager:
    description: The server-side apply field manager that owns the applied fields.
    type: str
    default: ecoeco.gitops
  force_conflicts:
    description: Take over fields another field manager owns, as C(kubectl apply --server-side --force-conflicts).
    type: bool
    default: true
  crd_timeout:
    description: Seconds to wait for the CustomResourceDefinitions written in this run to become C(Established).
    type: int
    default: 60
  wait:
    description:
      - After applying, wait until every Deployment, StatefulSet and DaemonSet of the manifest has rolled out (its
        controller has seen the current spec and every replica is updated and ready), one GET per workload and round.
      - On timeout the module fails naming each workload that has not rolled out and how far it got.
      - Not done in check mode.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for the rollout when O(wait=true).
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: Install Argo CD from its release manifest
  ecoeco.gitops.k8s_manifest:
    kubeconfig: /etc/kubernetes/admin.conf
    src: /srv/manifests/argo-cd/v3.6.1/install.yaml
    namespace: argocd
    field_manager: ecoeco.gitops.argocd
    wait: true
    wait_timeout: 300

- name: Apply objects built in the play
  ecoeco.gitops.k8s_manifest:
    definition:
      - apiVersion: v1
        kind: Namespace
        metadata:
          name: monitoring
"""

RETURN = r"""
objects:
  description: Every object in the order applied, with C(action) one of C(created), C(configured), C(unchanged), and
    for configured objects the dotted paths that changed.
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "Deployment", "namespace": "argocd", "name": "argocd-server", "action": "configured",
            "changed_paths": ["spec.template.spec.containers"]}]
counts:
  description: How many objects were created, configured and left unchanged.
  returned: always
  type: dict
  sample: {"created": 0, "configured": 1, "unchanged": 57}
rollout:
  description: How many workloads were waited for and for how many seconds.
  returned: when O(wait=true) and not in check mode
  type: dict
  sample: {"workloads": 8, "seconds": 0.04}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ecoeco.gitops.plugins.module_utils import manifest, rollout
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError, run_module
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import AUTH_ARG_SPEC, K8sClient

try:
    import yaml
except ImportError:  # pragma: no cover - the kubernetes library requires PyYAML
    yaml = None

ARGUMENT_SPEC = dict(
    AUTH_ARG_SPEC,
    definition={"type": "raw"},
    src={"type": "path"},
    namespace={"type": "str"},
    field_manager={"type": "str", "default": "ecoeco.gitops"},
    force_conflicts={"type": "bool", "default": True},
    crd_timeout={"type": "int", "default": 60},
    wait={"type": "bool", "default": False},
    wait_timeout={"type": "int", "default": 300},
)


def load_documents(params: dict) -> list:
    """The documents of O(definition) or O(src), validated."""
    source = params["definition"]
    if params["src"]:
        if not os.path.isfile(params["src"]):
            raise ValidationError(f"src: file {params['src']} does not exist")
        with open(params["src"], encoding="utf-8") as handle:
            source = handle.read()
    if isinstance(source, str):
        try:
            source = list(yaml.safe_load_all(source))
        except yaml.YAMLError as exc:
            raise ValidationError(f"{'src' if params['src'] else 'definition'}: not valid YAML: {exc}") from exc
    elif isinstance(source, dict):
        source = [source]
    return manifest.validate_documents(source or [])


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           mutually_exclusive=[("definition", "src")],
                           required_one_of=[("definition", "src")])

    def body() -> dict:
        docs = load_documents(module.params)
        for key in ("crd_timeout", "wait_timeout"):
            if module.params[key] <= 0:
                raise ValidationError(f"{key}: must be a positive number of seconds")
        client = K8sClient(module.params)
        result = manifest.ManifestApplier(
            client, docs, module.params["field_manager"], namespace=module.params["namespace"],
            force_conflicts=module.params["force_conflicts"], check_mode=module.check_mode,
            want_diff=module._diff, crd_timeout=module.params["crd_timeout"],
        ).run()
        if module.params["wait"] and not module.check_mode:
            result["rollout"] = rollout.wait_rolled_out(client, rollout.workloads_of(result["objects"]),
                                                        module.params["wait_timeout"])
        return result

    run_module(module, body)


if __name__ == "__main__":
    main()
