#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Set Argo CD's admin password (bcrypt) in Secret argocd-secret."""

from __future__ import annotations

DOCUMENTATION = r"""
module: argocd_admin_password
short_description: Set Argo CD's admin password as a bcrypt hash in argocd-secret
version_added: "0.1.0"
description:
  - Writes C(admin.password) (a bcrypt hash) and C(admin.passwordMtime) (RFC 3339, now) into Argo CD's Secret.
  - Idempotent, because when the stored hash already verifies against O(password), nothing changes and the
    modification time is kept.
  - The password never appears in the result or the diff; the diff shows C(<hidden>) changing.
  - Fails with a clear message when the Secret does not exist (Argo CD is not installed in O(namespace)).
author:
  - ecoeco platform team (@ecoeco)
extends_documentation_fragment:
  - ecoeco.gitops.k8s_auth
requirements:
  - bcrypt (Python library)
attributes:
  check_mode:
    description: Server-side dry run of the patch; nothing is persisted.
    support: full
  diff_mode:
    description: Shows that the hidden password and its modification time change.
    support: full
options:
  password:
    description: The admin password in clear text (at most 72 bytes). Never logged.
    type: str
    required: true
  namespace:
    description: Namespace of the Argo CD installation.
    type: str
    default: argocd
  secret_name:
    description: Name of the Secret Argo CD reads its admin password from.
    type: str
    default: argocd-secret
"""

EXAMPLES = r"""
- name: Set the Argo CD admin password from a vaulted variable
  ecoeco.gitops.argocd_admin_password:
    kubeconfig: /etc/kubernetes/admin.conf
    password: "{{ vault_argocd_admin_password }}"
  no_log: true
"""

RETURN = r"""
secret:
  description: Namespace and name of the Secret.
  returned: always
  type: dict
  sample: {"namespace": "argocd", "name": "argocd-secret"}
password_mtime:
  description: The C(admin.passwordMtime) now stored (null when the Secret has none).
  returned: always
  type: str
  sample: "2026-11-24T14:05:00Z"
"""

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd import admin_password
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import run_module
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import AUTH_ARG_SPEC, K8sClient
from ansible_collections.ecoeco.gitops.plugins.module_utils.secrets import SecretMaskingModule

ARGUMENT_SPEC = dict(
    AUTH_ARG_SPEC,
    password={"type": "str", "required": True, "no_log": True},
    namespace={"type": "str", "default": "argocd"},
    secret_name={"type": "str", "default": "argocd-secret"},
)


def main() -> None:
    module = SecretMaskingModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)

    def body() -> dict:
        admin_password.validate(module.params)  # the one validation step, before the client is configured
        client = K8sClient(module.params)
        return admin_password.run(client, module.params, module.check_mode, module._diff, validated=True)

    run_module(module, body)


if __name__ == "__main__":
    main()
