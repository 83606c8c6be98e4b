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
    the field manager owns is still in the document. A rerun of an unchanged manifest therefore reads each object
    once and writes nothing, and a field dropped from a newer manifest is still removed. The objects are read with
    one LIST per kind and namespace that holds several objects of the manifest, one GET each otherwise; namespaces
    and CustomResourceDefinitions are always read one GET each, and a LIST the API server refuses (403, for a client
    allowed to get but not to list) falls back to one GET per object.
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
      - Mutually exclusive with O(src) and O(url).
    type: raw
  src:
    description:
      - Path of a YAML file with the objects, on the host that runs the module. Mutually exclusive with O(definition)
        and O(url).
      - Read by the module itself, so a release manifest of megabytes does not go through the task's arguments.
    type: path
  url:
    description:
      - URL of a YAML file with the objects, fetched by the module (on the host that runs it) on every run, with
        certificate validation. Mutually exclusive with O(definition) and O(src).
    type: str
    version_added: "0.2.0"
  argocd_install:
    description:
      - Treat the manifest as an Argo CD release manifest (C(install.yaml)), and adapt it before anything is read or
        written, in memory (the file is untouched) - the same changes as the P(ecoeco.gitops.argocd_install_docs#filter)
        filter - and apply a Namespace object for O(argocd_install.namespace) first (C(install.yaml) has none)
        unless the manifest has one.
      - The run fails, writing nothing, when the manifest has no C(applications.argoproj.io) CustomResourceDefinition
        or no C(argocd-cm) ConfigMap.
    type: dict
    version_added: "0.2.0"
    suboptions:
      namespace:
        description: Namespace Argo CD is installed in; the ClusterRoleBindings' subjects are moved to it.
        type: str
        default: argocd
      image_pull_policy:
        description: C(imagePullPolicy) for every container and init container of the Deployments and StatefulSets;
          empty keeps the manifest's.
        type: str
        default: ""
        choices: ["", Always, IfNotPresent, Never]
      workload_replicas:
        description: "Replicas per Deployment/StatefulSet name, for example C({argocd-dex-server: 0})."
        type: dict
        default: {}
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
        controller has seen the current spec and every replica is updated and ready), one GET per workload and round;
        the first round judges the workloads this run did not write from the objects it read before applying.
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

- name: Install Argo CD in namespace gitops from its release URL, without Dex
  ecoeco.gitops.k8s_manifest:
    url: https://raw.githubusercontent.com/argoproj/argo-cd/v3.6.1/manifests/install.yaml
    namespace: gitops
    argocd_install:
      namespace: gitops
      workload_replicas: {argocd-dex-server: 0}

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

from ansible.module_utils.urls import open_url

from ansible_collections.ecoeco.gitops.plugins.module_utils import manifest, rollout
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.install_manifest import (
    InstallManifestError,
    adapt_install_docs,
    install_error,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError, run_module
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import AUTH_ARG_SPEC, K8sClient, bounded
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_validation import seconds_error
from ansible_collections.ecoeco.gitops.plugins.module_utils.secrets import SecretMaskingModule

try:
    import yaml
    LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: a release manifest in a fraction of a second
except ImportError:  # pragma: no cover - the kubernetes library requires PyYAML
    yaml = None
    LOADER = None

URL_TIMEOUT = 60

ARGUMENT_SPEC = dict(
    AUTH_ARG_SPEC,
    definition={"type": "raw"},
    src={"type": "path"},
    url={"type": "str"},
    argocd_install={"type": "dict", "options": {
        "namespace": {"type": "str", "default": "argocd"},
        "image_pull_policy": {"type": "str", "default": "", "choices": ["", "Always", "IfNotPresent", "Never"]},
        "workload_replicas": {"type": "dict", "default": {}},
    }},
    namespace={"type": "str"},
    field_manager={"type": "str", "default": "ecoeco.gitops"},
    force_conflicts={"type": "bool", "default": True},
    crd_timeout={"type": "int", "default": 60},
    wait={"type": "bool", "default": False},
    wait_timeout={"type": "int", "default": 300},
)


def load_documents(params: dict) -> list:
    """The documents of O(definition), O(src) or O(url), adapted (O(argocd_install)) and validated; errors name the
    option, the file and the document."""
    source = params["definition"]
    where = "definition"
    if params.get("url"):
        where = f"url {params['url']}"
        try:
            source = open_url(params["url"], timeout=URL_TIMEOUT).read()
        except Exception as exc:  # pylint: disable=broad-except  # urllib's and open_url's errors alike
            raise ValidationError(f"{where}: cannot fetch it: {exc}") from None
    elif params["src"]:
        where = f"src {params['src']}"
        if not os.path.isfile(params["src"]):
            raise ValidationError(f"src: file {params['src']} does not exist")
        try:
            with open(params["src"], "rb") as handle:
                source = handle.read()
        except OSError as exc:
            raise ValidationError(f"{where}: cannot read it: {exc}") from None
    if isinstance(source, (str, bytes)):
        try:
            # bytes: the C loader takes only exact str or bytes
            text = source if isinstance(source, bytes) else source.encode("utf-8")
            source = list(yaml.load_all(text, Loader=LOADER))
        except yaml.YAMLError as exc:
            raise ValidationError(f"{where}: not valid YAML: {exc}") from None
    elif isinstance(source, dict):
        source = [source]
    elif source is not None and not isinstance(source, list):
        raise ValidationError(f"definition: expected a list of objects, an object or YAML text, "
                              f"got {type(source).__name__}")
    install = params.get("argocd_install")
    if install is not None:
        try:
            source = adapt_install_docs(source or [], install["namespace"], install["image_pull_policy"],
                                        install["workload_replicas"], with_namespace=True)
        except InstallManifestError as exc:
            raise ValidationError(f"{where}: argocd_install: {exc}") from None
        error = install_error(source)
        if error:
            raise ValidationError(f"{where} {error}")
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
                                 mutually_exclusive=[("definition", "src", "url")],
                                 required_one_of=[("definition", "src", "url")])

    def body() -> dict:
        params = module.params
        docs = validate(params)
        client = K8sClient(params)
        applier = manifest.ManifestApplier(
            client, docs, params["field_manager"], namespace=params["namespace"],
            force_conflicts=params["force_conflicts"], check_mode=module.check_mode,
            want_diff=module._diff, crd_timeout=params["crd_timeout"],
        )
        result = applier.run()
        if params["wait"] and not module.check_mode:
            with bounded(client, params["wait_timeout"], "the workloads to roll out"):
                # Workloads this run read and did not write are judged first from that read (no GET each).
                result["rollout"] = rollout.wait_rolled_out(client, rollout.workloads_of(result["objects"]),
                                                            params["wait_timeout"], known=applier.unchanged_live)
        return result

    run_module(module, body)


if __name__ == "__main__":
    main()
