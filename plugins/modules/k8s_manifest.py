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
  - The whole manifest is checked before the first write - every document's C(apiVersion), C(kind), names, namespace
    and labels, every kind resolved against the API server (or a CustomResourceDefinition of the manifest), then a
    server-side dry run of every object that would be written (except objects whose namespace or kind only this
    run creates). A document the API server refuses fails the task naming it, and nothing is written.
  - Values of Secrets never appear in the result, the diff or the logged arguments, at any verbosity. The C(data)
    and C(stringData) values of every Secret in O(definition) (as given, base64 encoded and decoded) are masked
    as C(********) wherever they would appear, also in C(invocation.module_args); values shorter than 4 characters
    are not masked. The rest of O(definition) stays visible. Prefer O(src) for Secrets anyway, which keeps the
    values out of the task's arguments altogether.
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

from ansible_collections.ecoeco.gitops.plugins.module_utils import manifest, rollout
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError, run_module
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import AUTH_ARG_SPEC, K8sClient, bounded
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_validation import seconds_error
from ansible_collections.ecoeco.gitops.plugins.module_utils.secrets import SecretMaskingModule

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
    """The documents of O(definition) or O(src), validated; errors name the option, the file and the document."""
    source = params["definition"]
    where = "definition"
    if params["src"]:
        where = f"src {params['src']}"
        if not os.path.isfile(params["src"]):
            raise ValidationError(f"src: file {params['src']} does not exist")
        try:
            with open(params["src"], encoding="utf-8") as handle:
                source = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"{where}: cannot read it: {exc}") from None
    if isinstance(source, str):
        try:
            source = list(yaml.safe_load_all(source))
        except yaml.YAMLError as exc:
            raise ValidationError(f"{where}: not valid YAML: {exc}") from None
    elif isinstance(source, dict):
        source = [source]
    elif source is not None and not isinstance(source, list):
        raise ValidationError(f"definition: expected a list of objects, an object or YAML text, "
                              f"got {type(source).__name__}")
    docs = manifest.validate_documents(source or [], where)
    if not docs:
        raise ValidationError(f"{where}: holds no Kubernetes object")
    return docs


def validate(params: dict) -> list:
    """Every check the argument spec cannot make; returns the documents."""
    for key in ("crd_timeout", "wait_timeout"):
        error = seconds_error(params[key])
        if error:
            raise ValidationError(f"{key}: {error}")
    if not (params["field_manager"] or "").strip():
        raise ValidationError("field_manager: must not be empty")
    return load_documents(params)


def main() -> None:
    module = SecretMaskingModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                                 mutually_exclusive=[("definition", "src")],
                                 required_one_of=[("definition", "src")])

    def body() -> dict:
        params = module.params
        docs = validate(params)
        client = K8sClient(params)
        result = manifest.ManifestApplier(
            client, docs, params["field_manager"], namespace=params["namespace"],
            force_conflicts=params["force_conflicts"], check_mode=module.check_mode,
            want_diff=module._diff, crd_timeout=params["crd_timeout"],
        ).run()
        if params["wait"] and not module.check_mode:
            with bounded(client, params["wait_timeout"], "the workloads to roll out"):
                result["rollout"] = rollout.wait_rolled_out(client, rollout.workloads_of(result["objects"]),
                                                            params["wait_timeout"])
        return result

    run_module(module, body)


if __name__ == "__main__":
    main()
