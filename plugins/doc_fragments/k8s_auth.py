# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Authentication options shared by every module that talks to Kubernetes."""

from __future__ import annotations


class ModuleDocFragment:
    """Options with the names and environment fallbacks of kubernetes.core."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig as a dictionary.
      - Falls back to E(K8S_AUTH_KUBECONFIG), then to the pod's service account when
        E(KUBERNETES_SERVICE_HOST) is set (in-cluster), then to C(~/.kube/config).
      - Given as a dictionary, every value under its C(users) (tokens, keys, passwords) is masked as C(********)
        in every output, C(invocation.module_args) included; the rest stays readable. A file that is not YAML or
        not a kubeconfig fails with its path named.
    type: raw
  context:
    description: The kubeconfig context to use. Falls back to E(K8S_AUTH_CONTEXT).
    type: str
  host:
    description: The API server URL. Falls back to E(K8S_AUTH_HOST).
    type: str
  api_key:
    description: A bearer token. Falls back to E(K8S_AUTH_API_KEY). Never logged.
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's certificate. Stays on unless set to false.
      - Falls back to E(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description: CA bundle that signs the API server's certificate. Falls back to E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description: Client certificate for mutual TLS. Falls back to E(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description: Key of O(client_cert). Falls back to E(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
requirements:
  - kubernetes >= 30.0 (Python library)
notes:
  - Requests go to fixed API paths with no discovery, so each module makes only the calls it needs.
  - Every request ends within the module's timeout (plus 5 seconds for the failure report), or after 30 seconds
    for a module without one; a read that failed on the connection is retried inside that time. An unresponsive
    API server fails the module naming the server and what it waited for.
  - A O(ca_cert), O(client_cert) or O(client_key) file that does not exist fails naming the option and path.
"""
