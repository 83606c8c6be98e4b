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

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional

# The kubernetes library (and yaml) are imported on first use, not when this
# file is imported: importing kubernetes costs 0.5 s, 3 s on a loaded 2-core
# machine, and the filters and role argument checks that import the
# module_utils for their validation alone (input_errors) never need it.
k8s_client: Any = None
k8s_config: Any = None
yaml: Any = None
_IMPORT_STATE: Dict[str, Any] = {"tried": False, "error": None}


class ApiException(Exception):  # replaced by kubernetes.client.rest.ApiException once imported
    """Stand-in until (or unless) the kubernetes library is imported."""

    status = 0
    reason = ""
    body = None


def kubernetes_import_error() -> Optional[Exception]:
    """Import the kubernetes library once; the ImportError, or None when it is there."""
    global k8s_client, k8s_config, yaml, ApiException  # pylint: disable=global-statement
    if not _IMPORT_STATE["tried"]:
        _IMPORT_STATE["tried"] = True
        try:
            import yaml as _yaml
            from kubernetes import client as _client
            from kubernetes import config as _config
            from kubernetes.client.rest import ApiException as _ApiException
        except ImportError as exc:  # pragma: no cover - reported by the module
            _IMPORT_STATE["error"] = exc
        else:
            k8s_client, k8s_config, yaml, ApiException = _client, _config, _yaml, _ApiException
    return _IMPORT_STATE["error"]


from ansible.module_utils.basic import env_fallback

from ansible_collections.ecoeco.gitops.plugins.module_utils.waiter import Deadline

AUTH_ARG_SPEC: Dict[str, Dict[str, Any]] = {
    # A kubeconfig dict's credentials are masked by secrets.SecretMaskingModule, not by no_log (a path must
    # stay readable in messages).
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


def bounded(client: Any, timeout: Optional[float], what: str) -> Any:
    """``client.bounded(timeout, what)`` for a K8sClient, nothing for a test double without it."""
    if hasattr(client, "bounded"):
        return client.bounded(timeout, what)
    return contextlib.nullcontext(client)


def _service_account_dir() -> str:
    return os.environ.get(SERVICE_ACCOUNT_DIR_ENV, DEFAULT_SERVICE_ACCOUNT_DIR)


def build_configuration(params: Dict[str, Any]) -> "k8s_client.Configuration":
    """Turn module auth parameters into a kubernetes client Configuration."""
    missing = kubernetes_import_error()
    if missing is not None:
        raise ClientConfigError(f"the 'kubernetes' Python library is required: {missing}")
    cfg = k8s_client.Configuration()
    kubeconfig = params.get("kubeconfig")
    host = params.get("host")
    if kubeconfig:
        _load_kubeconfig(kubeconfig, params.get("context"), cfg)
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
            _load_kubeconfig(default, params.get("context"), cfg)
        else:
            raise ClientConfigError(
                "no cluster credentials: set kubeconfig (or K8S_AUTH_KUBECONFIG), or host and "
                "api_key, or run in a pod with a service account"
            )
    if host:
        cfg.host = host
    if params.get("api_key"):
        cfg.api_key = {"authorization": "Bearer " + params["api_key"]}
    for option, attr in (("ca_cert", "ssl_ca_cert"), ("client_cert", "cert_file"), ("client_key", "key_file")):
        path = params.get(option)
        if path:
            if not os.path.isfile(path):
                raise ClientConfigError(f"{option}: file {path} does not exist")
            setattr(cfg, attr, path)
    if params.get("validate_certs") is not None:
        cfg.verify_ssl = bool(params["validate_certs"])
    # No urllib3 retries (they multiplied the read timeout): K8sClient retries reads inside its deadline.
    cfg.retries = False
    return cfg


def _load_kubeconfig(kubeconfig: Any, context: Optional[str], cfg: "k8s_client.Configuration") -> None:
    """Load a kubeconfig path or dict into ``cfg``; a clear error naming the option when it is unusable."""
    if isinstance(kubeconfig, dict):
        source, data = "kubeconfig (dict)", kubeconfig
    elif isinstance(kubeconfig, str):
        path = os.path.expanduser(kubeconfig)
        source = f"kubeconfig {path}"
        if not os.path.isfile(path):
            raise ClientConfigError(f"kubeconfig: file {path} does not exist")
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        except (OSError, UnicodeDecodeError) as exc:
            raise ClientConfigError(f"{source}: cannot read it: {exc}") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ClientConfigError(f"{source}: not valid YAML{where}") from None
    else:
        raise ClientConfigError(f"kubeconfig: expected a file path or a dictionary, got {type(kubeconfig).__name__}")
    if not isinstance(data, dict) or not isinstance(data.get("clusters"), list) or not data.get("contexts"):
        raise ClientConfigError(f"{source}: not a kubeconfig (a mapping with clusters, contexts and users)")
    names = [c.get("name") for c in data.get("contexts") or [] if isinstance(c, dict)]
    if context and context not in names:
        raise ClientConfigError(f"context: {context!r} is not a context of {source} (it has {', '.join(map(str, names))})")
    try:
        if isinstance(kubeconfig, dict):
            k8s_config.load_kube_config_from_dict(data, context=context, client_configuration=cfg)
        else:  # from the file, so that relative certificate paths resolve against its folder
            k8s_config.load_kube_config(config_file=os.path.expanduser(kubeconfig), context=context,
                                        client_configuration=cfg)
    except (k8s_config.ConfigException, ValueError, TypeError, KeyError) as exc:
        raise ClientConfigError(f"{source}: {exc}") from None


# Reads (GET) that failed on the connection are retried with this backoff while the deadline allows.
RETRY_BACKOFF = (0.5, 1.0, 2.0, 4.0)
# Without a deadline, a read that failed on the connection (not a timeout) is tried this often.
UNBOUNDED_READ_ATTEMPTS = 2
# Answers that say "not now" rather than "no": the API server is busy (429) or a resource's storage is still
# initializing (429/503 right after a CRD is created). A read that got one is tried again, like an unreachable one.
RETRY_STATUSES = (429, 503)
# A module's requests may end this many seconds after its timeout (its failure report needs a few reads).
DEADLINE_GRACE = 5.0


class K8sClient:
    """Raw REST calls against fixed paths; every call counts as one request.

    Every request is bounded: by ``request_timeout``, and by the time left on ``deadline`` (the module's
    timeout) when one is set - a request starts only with time left and never outlives the deadline, and the
    retries of a read that failed on the connection happen inside it.  An unresponsive API server therefore
    fails the module within its timeout, and the message names the server and what was waited for.
    """

    def __init__(self, params: Dict[str, Any], request_timeout: float = 30.0,
                 timeout: Optional[float] = None, what: str = "its answer",
                 sleep: Any = time.sleep):
        configuration = build_configuration(params)
        self.server = configuration.host
        self.api = k8s_client.ApiClient(configuration)
        # Audit logs can tell this collection's requests from everyone else's.
        self.api.user_agent = USER_AGENT
        self.request_timeout = request_timeout
        self.sleep = sleep
        self.timeout: Optional[float] = None
        self.deadline: Optional[Deadline] = None
        self.what = what
        self._bind(timeout, what)

    def _bind(self, timeout: Optional[float], what: str) -> None:
        self.timeout, self.what = timeout, what
        self.deadline = None if timeout is None else Deadline(timeout + DEADLINE_GRACE)

    @contextlib.contextmanager
    def bounded(self, timeout: Optional[float], what: str) -> Iterator["K8sClient"]:
        """Within the block, requests end ``timeout`` (plus a grace) from now, and errors name ``what``."""
        saved = self.timeout, self.deadline, self.what
        self._bind(timeout, what)
        try:
            yield self
        finally:
            self.timeout, self.deadline, self.what = saved

    def _timeout_left(self, method: str, path: str, wanted: float) -> float:
        """Seconds this request may take: ``wanted``, cut to the deadline; K8sError when none is left."""
        if self.deadline is None:
            return wanted
        left = self.deadline.remaining()
        if left <= 0.05:
            raise K8sError(f"{method} {path}: {self._limit()} ran out before this request to the API server "
                           f"{self.server}, waiting for {self.what}")
        return min(wanted, left)

    def _limit(self) -> str:
        if self.timeout is None:
            return f"the {self.request_timeout:g}s request timeout"
        return f"the {self.timeout:g}s timeout (+{DEADLINE_GRACE:g}s grace)"

    # -- plumbing -----------------------------------------------------------
    def _call(self, method: str, path: str, query: Optional[Dict[str, Any]] = None,
              body: Any = None, content_type: str = "application/json",
              stream: bool = False, timeout: Optional[float] = None) -> Any:
        attempt = 0
        while True:
            try:
                return self._call_once(method, path, query, body, content_type, stream, timeout)
            except K8sError as exc:
                attempt += 1
                if not self._retry_status(method, stream, exc.status, attempt):
                    raise
                self.sleep(RETRY_BACKOFF[attempt - 1])
            except _Unreachable as exc:
                attempt += 1
                retry = method == "GET" and not stream and attempt <= len(RETRY_BACKOFF)
                if retry and self.deadline is None:
                    retry = attempt < UNBOUNDED_READ_ATTEMPTS
                if retry and self.deadline is not None:
                    retry = self.deadline.remaining() > RETRY_BACKOFF[attempt - 1] + 0.5
                reason = _reason(exc.cause)
                if "SSL" in reason or (reason == "timed out" and self.deadline is None):
                    retry = False  # a certificate problem does not go away; a timeout was a long wait
                if not retry:
                    if reason == "timed out":
                        raise K8sError(f"{method} {path}: the API server {self.server} did not answer within "
                                       f"{self._limit()}, waiting for {self.what}") from exc.cause
                    raise K8sError(f"{method} {path}: cannot reach the API server {self.server}: {reason} "
                                   f"(waiting for {self.what})") from exc.cause
                self.sleep(RETRY_BACKOFF[attempt - 1])

    def _retry_status(self, method: str, stream: bool, status: int, attempt: int) -> bool:
        """Whether a read answered with a "not now" status (RETRY_STATUSES) gets another attempt."""
        if method != "GET" or stream or status not in RETRY_STATUSES or attempt > len(RETRY_BACKOFF):
            return False
        return self.deadline is None or self.deadline.remaining() > RETRY_BACKOFF[attempt - 1] + 0.5

    def _call_once(self, method: str, path: str, query: Optional[Dict[str, Any]], body: Any,
                   content_type: str, stream: bool, timeout: Optional[float]) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # The kubernetes client JSON-encodes bodies itself for JSON content types and for
        # server-side apply (application/apply-patch+yaml): pass those as objects.
        client_encodes = "json" in content_type or content_type == APPLY_CONTENT_TYPE
        if body is not None and not client_encodes and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        wanted = timeout if timeout is not None else self.request_timeout
        request_timeout: Any = self._timeout_left(method, path, wanted)
        if stream:  # a watch: connect quickly, then read until the server ends the stream
            request_timeout = (min(10.0, request_timeout), request_timeout)
        try:
            resp = self.api.call_api(
                path, method,
                query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
                header_params=headers, body=body,
                auth_settings=["BearerToken"], _preload_content=False,
                _request_timeout=request_timeout,
            )
        except ApiException as exc:
            raise _api_error(method, path, exc) from exc
        except Exception as exc:  # urllib3 errors: unreachable, TLS, timeouts
            raise _Unreachable(exc) from exc
        # With _preload_content=False call_api returns the raw urllib3 response, not a tuple.
        response = resp[0] if isinstance(resp, tuple) else resp
        if stream:
            return response
        try:
            data = response.data
        except Exception as exc:  # the body stopped coming: a read timeout
            raise _Unreachable(exc) from exc
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
        if self.deadline is not None:
            timeout_seconds = min(timeout_seconds, self.deadline.remaining())
        timeout_seconds = max(1, int(math.ceil(timeout_seconds)))
        resp = self._call("GET", ref.path(namespace), {
            "watch": "true", "resourceVersion": resource_version,
            "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds),
            "labelSelector": label_selector,
        }, stream=True, timeout=timeout_seconds + 5)
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


class _Unreachable(Exception):
    """A request got no HTTP answer (refused, reset, TLS, timed out); ``cause`` is the urllib3 error."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def _reason(exc: BaseException) -> str:
    """A short reason for a urllib3 error (its class name and message, without the pool's repr)."""
    text = str(exc)
    inner = getattr(exc, "reason", None)
    if inner is not None:
        text = str(inner)
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return "timed out"
    return f"{type(inner or exc).__name__}: {text}"[:300]


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
