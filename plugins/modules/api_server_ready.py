#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Wait until a control plane node's kube-apiserver is ready and stays ready (/readyz)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: api_server_ready
short_description: Wait until a kube-apiserver answers /readyz with 200 for a settle period in a row
version_added: "0.3.0"
description:
  - Polls O(url) (the API server's C(/readyz), asked with C(?verbose)) every O(interval) seconds until it has
    answered HTTP 200 for O(settle) seconds in a row, and fails when that has not happened within O(timeout)
    seconds, naming the checks the API server reports as failing (for example C(informer-sync)).
  - A restarted API server refuses every request (HTTP 403, even for cluster-admin) until its authorizer's
    caches are filled, and a kubelet that was just restarted on a new release may restart the static
    kube-apiserver pod once more a moment later. The settle period makes a single 200 between two such
    restarts not count as ready.
  - Runs on the control plane node and needs no credentials (C(/readyz) is readable by anyone, as kubeadm sets
    up the API server). The certificate is verified against O(ca_path) and the name O(tls_server_name).
author:
  - ecoeco platform team (@ecoeco)
attributes:
  check_mode:
    description: Only reads; runs the same in check mode.
    support: full
  diff_mode:
    description: Changes nothing.
    support: none
options:
  url:
    description: The API server's readiness endpoint.
    type: str
    default: https://127.0.0.1:6443/readyz
  ca_path:
    description: The cluster's CA certificate, which signed the API server's certificate.
    type: path
    default: /etc/kubernetes/pki/ca.crt
  tls_server_name:
    description: The name the API server's certificate must carry (kubeadm's always carry C(kubernetes)).
    type: str
    default: kubernetes
  timeout:
    description: Seconds the whole wait may take.
    type: int
    default: 300
  settle:
    description: Seconds the answers must stay 200 in a row; shorter than O(timeout).
    type: int
    default: 15
  interval:
    description: Seconds between two requests.
    type: float
    default: 1.0
"""

EXAMPLES = r"""
- name: Wait until the upgraded API server has been ready for 20 seconds in a row
  ecoeco.gitops.api_server_ready:
    timeout: 300
    settle: 20
"""

RETURN = r"""
seconds:
  description: How long the wait took.
  returned: always
  type: float
  sample: 21.3
interruptions:
  description: Each time the API server stopped answering 200 after it had, and what it answered then.
  returned: always
  type: list
  elements: str
  sample: ["after 3.1s: HTTP 500, failing checks: informer-sync"]
"""

import http.client
import socket
import ssl
from typing import Tuple
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ecoeco.gitops.plugins.module_utils import api_ready
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ModuleFailure, ValidationError

ARGUMENT_SPEC = dict(
    url={"type": "str", "default": "https://127.0.0.1:6443/readyz"},
    ca_path={"type": "path", "default": "/etc/kubernetes/pki/ca.crt"},
    tls_server_name={"type": "str", "default": "kubernetes"},
    timeout={"type": "int", "default": 300},
    settle={"type": "int", "default": 15},
    interval={"type": "float", "default": 1.0},
)
REQUEST_TIMEOUT = 5.0


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address whose certificate is checked for another name (127.0.0.1 -> kubernetes)."""

    def __init__(self, host: str, port: int, server_name: str, context: ssl.SSLContext):
        super().__init__(host, port, timeout=REQUEST_TIMEOUT, context=context)
        self.server_name = server_name
        self.tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.server_name)


def make_probe(url: str, ca_path: str, server_name: str) -> api_ready.Probe:
    """One GET of ``url?verbose`` per call: (status, body), or (0, why) when nothing answered."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValidationError(f"url must be an https URL such as https://127.0.0.1:6443/readyz, got {url!r}")
    try:
        context = ssl.create_default_context(cafile=ca_path)
    except (OSError, ssl.SSLError) as exc:
        raise ValidationError(f"ca_path {ca_path}: cannot read a CA certificate from it ({exc})") from exc
    path = (parts.path or "/readyz") + "?" + ("&".join(filter(None, [parts.query, "verbose"])))

    def probe() -> Tuple[int, str]:
        conn = _NamedHTTPSConnection(parts.hostname, parts.port or 443, server_name, context)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read(65536).decode("utf-8", "replace")
        except ssl.SSLCertVerificationError as exc:
            raise ModuleFailure(f"{url}: the API server's certificate does not verify against {ca_path} "
                                f"for the name {server_name}: {exc.verify_message}") from exc
        except (OSError, http.client.HTTPException) as exc:
            return 0, str(exc)
        finally:
            conn.close()
    return probe


def main() -> None:
    """Validate, then wait; every failure names the option or the URL."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        api_ready.validate(params["timeout"], params["settle"], params["interval"])
        probe = make_probe(params["url"], params["ca_path"], params["tls_server_name"])
        result = api_ready.wait_settled(probe, params["url"], params["timeout"], params["settle"],
                                        params["interval"])
    except ValidationError as exc:
        module.fail_json(msg=str(exc))
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
