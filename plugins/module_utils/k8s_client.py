# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""A thin Kubernetes REST client for the collection's modules.

It talks to fixed API paths (no discovery), so a module makes exactly the
requests it needs: one LIST, one WATCH, one PATCH.  Authentication follows
kubernetes.core: explicit ``host``/``api_key``, a ``kubeconfig`` (path or
dict) with ``context``, or the pod's service account (in-cluster), in that
order, with the same ``K8S_AUTH_*`` environment fallbacks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - reported by the module
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = _exc

    class ApiException(Exception):  # type: ignore[no-redef]
        """Stand-in so this module imports without the kubernetes library."""

        status = 0
        reason = ""
        body = None

from ansible.module_utils.basic import env_fallback

AUTH_ARG_SPEC: Dict[str, Dict[str, Any]] = {
    "kubeconfig": {"type": "raw", "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG"])},
    "context": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_CONTEXT"])},
    "host": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_HOST"])},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_API_KEY"])},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"],
                       "fallback": (env_fallback, ["K8S_AUTH_VERIFY_SSL"])},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"],
                "fallback": (env_fallback, ["K8S_AUTH_SSL_CA_CERT"])},
    "client_cert": {"type": "path", "aliases": ["cert_file"],
                    "fallback": (env_fallback, ["K8S_AUTH_CERT_FILE"])},
    "client_key": {"type": "path", "aliases": ["key_file"], "no_log": False,
                   "fallback": (env_fallback, ["K8S_AUTH_KEY_FILE"])},
}

USER_AGENT = "ecoeco.gitops"

# Where the pod's service account lives; overridable for tests that run the
# in-cluster path outside a pod (the hook Job tests).
SERVICE_ACCOUNT_DIR_ENV = "K8S_AUTH_SERVICE_ACCOUNT_DIR"
DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


# Server-side apply; the body is JSON, which is YAML too.
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"


class K8sError(Exception):
    """An API call failed; ``status`` is the HTTP status (0 when unreachable)."""

    def __init__(self, message: str, status: int = 0, reason: str = "", body: Any = None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.body = body


class ClientConfigError(K8sError):
    """No usable credentials: the message says which option to set."""


@dataclass(frozen=True)
class ResourceRef:
    """An API path for one resource kind, e.g. argoproj.io/v1alpha1 applications."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: Optional[str] = None, name: Optional[str] = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        return base


APPLICATIONS = ResourceRef("argoproj.io", "v1alpha1", "applications")
APPLICATIONSETS = ResourceRef("argoproj.io", "v1alpha1", "applicationsets")
APPPROJECTS = ResourceRef("argoproj.io", "v1alpha1", "appprojects")
NODES = ResourceRef("", "v1", "nodes", namespaced=False)
NAMESPACES = ResourceRef("", "v1", "namespaces", namespaced=False)
PODS = ResourceRef("", "v1", "pods")
EVENTS = ResourceRef("", "v1", "events")
SECRETS = ResourceRef("", "v1", "secrets")
CONFIGMAPS = ResourceRef("", "v1", "configmaps")


def _service_account_dir() -> str:
    return os.environ.get(SERVICE_ACCOUNT_DIR_ENV, DEFAULT_SERVICE_ACCOUNT_DIR)


def build_configuration(params: Dict[str, Any]) -> "k8s_client.Configuration":
    """Turn module auth parameters into a kubernetes client Configuration."""
    if not HAS_KUBERNETES:
        raise ClientConfigError(f"the 'kubernetes' Python library is required: {KUBERNETES_IMPORT_ERROR}")
    cfg = k8s_client.Configuration()
    kubeconfig = params.get("kubeconfig")
    host = params.get("host")
    if kubeconfig:
        try:
            if isinstance(kubeconfig, dict):
                k8s_config.load_kube_config_from_dict(kubeconfig, context=params.get("context"),
                                                      client_configuration=cfg)
            else:
                path = os.path.expanduser(str(kubeconfig))
                if not os.path.isfile(path):
                    raise ClientConfigError(f"kubeconfig: file {path} does not exist")
                k8s_config.load_kube_config(config_file=path, context=params.get("context"),
                                            client_configuration=cfg)
        except k8s_config.ConfigException as exc:
            raise ClientConfigError(f"kubeconfig: {exc}") from exc
    elif not host and os.environ.get("KUBERNETES_SERVICE_HOST"):
        sa_dir = _service_account_dir()
        loader = k8s_config.incluster_config.InClusterConfigLoader(
            token_filename=os.path.join(sa_dir, "token"),
            cert_filename=os.path.join(sa_dir, "ca.crt"),
        )
        try:
            loader.load_and_set(cfg)
        except k8s_config.ConfigException as exc:
            raise ClientConfigError(f"in-cluster service account ({sa_dir}): {exc}") from exc
    elif not host:
        default = os.path.expanduser("~/.kube/config")
        if os.path.isfile(default):
            k8s_config.load_kube_config(config_file=default, context=params.get("context"),
                                        client_configuration=cfg)
        else:
            raise ClientConfigError(
                "no cluster credentials: set kubeconfig (or K8S_AUTH_KUBECONFIG), or host and "
                "api_key, or run in a pod with a service account"
            )
    if host:
        cfg.host = host
    if params.get("api_key"):
        cfg.api_key = {"authorization": "Bearer " + params["api_key"]}
    if params.get("ca_cert"):
        cfg.ssl_ca_cert = params["ca_cert"]
    if params.get("client_cert"):
        cfg.cert_file = params["client_cert"]
    if params.get("client_key"):
        cfg.key_file = params["client_key"]
    if params.get("validate_certs") is not None:
        cfg.verify_ssl = bool(params["validate_certs"])
    return cfg


class K8sClient:
    """Raw REST calls against fixed paths; every call counts as one request."""

    def __init__(self, params: Dict[str, Any], request_timeout: float = 30.0):
        self.api = k8s_client.ApiClient(build_configuration(params))
        # Audit logs can tell this collection's requests from everyone else's.
        self.api.user_agent = USER_AGENT
        self.request_timeout = request_timeout

    # -- plumbing -----------------------------------------------------------
    def _call(self, method: str, path: str, query: Optional[Dict[str, Any]] = None,
              body: Any = None, content_type: str = "application/json",
              stream: bool = False, timeout: Optional[float] = None) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # The kubernetes client JSON-encodes bodies itself for JSON content types and for
        # server-side apply (application/apply-patch+yaml): pass those as objects.
        client_encodes = "json" in content_type or content_type == APPLY_CONTENT_TYPE
        if body is not None and not client_encodes and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        try:
            resp = self.api.call_api(
                path, method,
                query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
                header_params=headers, body=body,
                auth_settings=["BearerToken"], _preload_content=False,
                _request_timeout=timeout if timeout is not None else self.request_timeout,
            )
        except ApiException as exc:
            raise _api_error(method, path, exc) from exc
        except Exception as exc:  # urllib3 errors: unreachable, TLS, timeouts
            raise K8sError(f"{method} {path}: cannot reach the API server: {exc}") from exc
        # With _preload_content=False call_api returns the raw urllib3 response, not a tuple.
        response = resp[0] if isinstance(resp, tuple) else resp
        if stream:
            return response
        data = response.data
        return json.loads(data) if data else {}

    # -- verbs --------------------------------------------------------------
    def get(self, ref: ResourceRef, name: str, namespace: Optional[str] = None) -> Optional[dict]:
        """Return the object, or None when it does not exist."""
        return self.get_path(ref.path(namespace, name))

    def get_path(self, path: str) -> Optional[dict]:
        """GET an API path (discovery documents, for instance); None when it does not exist."""
        try:
            return self._call("GET", path)
        except K8sError as exc:
            if exc.status == 404:
                return None
            raise

    def post_path(self, path: str, body: dict) -> dict:
        """POST to an API path (a subresource such as a pod's eviction)."""
        return self._call("POST", path, None, body)

    def list(self, ref: ResourceRef, namespace: Optional[str] = None,
             label_selector: Optional[str] = None, field_selector: Optional[str] = None) -> dict:
        return self._call("GET", ref.path(namespace), {
            "labelSelector": label_selector, "fieldSelector": field_selector})

    def create(self, ref: ResourceRef, body: dict, namespace: Optional[str] = None,
               dry_run: bool = False) -> dict:
        return self._call("POST", ref.path(namespace), {"dryRun": "All" if dry_run else None}, body)

    def merge_patch(self, ref: ResourceRef, name: str, patch: dict,
                    namespace: Optional[str] = None, dry_run: bool = False) -> dict:
        return self._call("PATCH", ref.path(namespace, name), {"dryRun": "All" if dry_run else None},
                          patch, content_type="application/merge-patch+json")

    def json_patch(self, ref: ResourceRef, name: str, ops: list,
                   namespace: Optional[str] = None, dry_run: bool = False) -> dict:
        return self._call("PATCH", ref.path(namespace, name), {"dryRun": "All" if dry_run else None},
                          ops, content_type="application/json-patch+json")

    def apply(self, ref: ResourceRef, body: dict, field_manager: str,
              namespace: Optional[str] = None, dry_run: bool = False, force: bool = True) -> dict:
        """Server-side apply (dry-run when asked): the API server computes the result."""
        name = body["metadata"]["name"]
        return self._call("PATCH", ref.path(namespace, name), {
            "fieldManager": field_manager, "force": "true" if force else None,
            "dryRun": "All" if dry_run else None,
        }, body, content_type=APPLY_CONTENT_TYPE)

    def delete(self, ref: ResourceRef, name: str, namespace: Optional[str] = None,
               propagation: Optional[str] = None, dry_run: bool = False) -> Optional[dict]:
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        try:
            return self._call("DELETE", ref.path(namespace, name),
                              {"dryRun": "All" if dry_run else None}, body)
        except K8sError as exc:
            if exc.status == 404:
                return None
            raise

    def watch(self, ref: ResourceRef, namespace: Optional[str], resource_version: str,
              timeout_seconds: int, label_selector: Optional[str] = None) -> Iterator[dict]:
        """Yield watch events ({type, object}) until the server ends the stream.

        The caller resumes from the last seen resourceVersion; an ERROR event
        with code 410 means the version expired and a fresh LIST is needed.
        """
        timeout_seconds = max(1, int(timeout_seconds))
        resp = self._call("GET", ref.path(namespace), {
            "watch": "true", "resourceVersion": resource_version,
            "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds),
            "labelSelector": label_selector,
        }, stream=True, timeout=(10, timeout_seconds + 5))
        buf = b""
        try:
            for chunk in resp.stream(4096, decode_content=False):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        except Exception as exc:  # connection dropped: caller re-lists/resumes
            raise K8sError(f"watch {ref.plural}: stream ended: {exc}") from exc
        finally:
            resp.release_conn()


def _api_error(method: str, path: str, exc: "ApiException") -> K8sError:
    message = exc.reason or ""
    body: Any = None
    try:
        body = json.loads(exc.body) if exc.body else None
        if isinstance(body, dict) and body.get("message"):
            message = body["message"]
    except (TypeError, ValueError):
        pass
    return K8sError(f"{method} {path}: {exc.status} {message}".strip(), exc.status or 0,
                    exc.reason or "", body)
