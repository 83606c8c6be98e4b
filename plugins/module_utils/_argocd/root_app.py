# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The root App-of-Apps ``Application``: build, apply, delete, wait for first sync.

Idempotence comes from the API server: the desired object is applied with
server-side apply as a dry run first, and the module changes something only
when that dry-run result differs from the live object (ignoring server
bookkeeping).  Check mode stops after the dry run, so nothing is persisted.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlparse

from ansible_collections.ecoeco.gitops.plugins.module_utils.diffing import comparable
from ansible_collections.ecoeco.gitops.plugins.module_utils.apply import apply_object
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ModuleFailure, ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import (
    APPLICATIONS,
    K8sError,
    bounded,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_validation import (
    dns1123_label_error,
    dns1123_subdomain_error,
    go_duration_error,
    label_string,
    label_value_error,
    qualified_name_error,
    seconds_error,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils.waiter import WaitTimeout, wait_for

FINALIZER = "resources-finalizer.argocd.argoproj.io"
DEFAULT_FIELD_MANAGER = "ecoeco.gitops"
DEFAULT_DESTINATION_SERVER = "https://kubernetes.default.svc"
API_VERSION = "argoproj.io/v1alpha1"


# -- validation ---------------------------------------------------------------
def validate(params: Dict[str, Any]) -> None:
    """Raise ValidationError naming the option when ``params`` cannot make a valid Application."""
    errors: List[str] = []

    def check(option: str, err: str) -> None:
        if err:
            errors.append(f"{option}: {err}")

    check("name", dns1123_subdomain_error(params.get("name") or ""))
    check("namespace", dns1123_label_error(params.get("namespace") or ""))
    if params.get("state", "present") == "present":
        if not params.get("repo_url"):
            errors.append("repo_url: required when state is present (the Git or Helm repository "
                          "the root Application reads)")
        else:
            check("repo_url", repo_url_error(params["repo_url"]))
        if params.get("path") is not None:
            check("path", repo_path_error(params["path"]))
        if params.get("destination_server") is not None:
            check("destination_server", server_url_error(params["destination_server"]))
        check("project", dns1123_subdomain_error(params.get("project") or ""))
        if not (params.get("target_revision") or "").strip():
            errors.append("target_revision: must not be empty (use HEAD, a branch, a tag or a commit)")
        dest_ns = params.get("destination_namespace")
        if dest_ns is not None:
            check("destination_namespace", dns1123_label_error(dest_ns))
        if params.get("destination_server") and params.get("destination_name"):
            errors.append("destination_server, destination_name: set only one of them")
        for option in ("labels", "annotations"):
            for key, value in (params.get(option) or {}).items():
                check(f"{option}.{key}", qualified_name_error(key))
                if option == "labels":
                    check(f"labels.{key}", label_value_error(label_string(value)))
        errors.extend(_sync_policy_errors(params.get("sync_policy")))
    for option in ("wait_timeout",):
        if params.get(option) is not None:
            check(option, seconds_error(params[option]))
    if errors:
        raise ValidationError("invalid argocd_root_app arguments: " + "; ".join(errors))


_SCP_URL = re.compile(r"^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:[^\s]+$")  # git@github.com:org/repo.git
_URL_SCHEMES = ("https", "http", "ssh", "git", "oci", "file")


def repo_url_error(url: str) -> str:
    """Why ``url`` is not a repository URL Argo CD can read (https, ssh, git, oci or scp-like), or ''."""
    if url != url.strip() or any(c.isspace() for c in url):
        return f"'{url}' is not a repository URL (it contains white space)"
    if _SCP_URL.match(url):
        return ""
    parsed = urlparse(url)
    if parsed.scheme in _URL_SCHEMES and (parsed.netloc or (parsed.scheme == "file" and parsed.path)):
        return ""
    return (f"'{url}' is not a repository URL (expected https://host/org/repo.git, ssh://..., "
            "git@host:org/repo.git or oci://...)")


def repo_path_error(path: str) -> str:
    """Why ``path`` is not a directory inside the repository, or ''."""
    if not path.strip():
        return "must not be empty (use . for the repository's top directory)"
    parts = path.replace("\\", "/").split("/")
    if path.startswith("/") or ".." in parts:
        return f"'{path}' leaves the repository (use a relative path without '..')"
    return ""


def server_url_error(url: str) -> str:
    """Why ``url`` is not an API server URL, or ''."""
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc or any(c.isspace() for c in url):
        return f"'{url}' is not an API server URL such as https://kubernetes.default.svc"
    return ""


def _sync_policy_errors(policy: Optional[Dict[str, Any]]) -> List[str]:
    errors: List[str] = []
    if not policy:
        return errors
    retry = policy.get("retry") or {}
    if retry.get("limit") is not None and retry["limit"] < -1:
        errors.append("sync_policy.retry.limit: must be -1 (unlimited) or more")
    backoff = retry.get("backoff") or {}
    for key in ("duration", "max_duration"):
        if backoff.get(key) is not None:
            err = go_duration_error(backoff[key])
            if err:
                errors.append(f"sync_policy.retry.backoff.{key}: {err}")
    if backoff.get("factor") is not None and backoff["factor"] < 1:
        errors.append("sync_policy.retry.backoff.factor: must be 1 or more")
    for option in policy.get("sync_options") or []:
        if "=" not in option or option.startswith("="):
            errors.append(f"sync_policy.sync_options: '{option}' is not of the form Name=value "
                          "(for example CreateNamespace=true)")
    return errors


# -- desired object -------------------------------------------------------------
def _drop_none(data: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def build_sync_policy(policy: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Module ``sync_policy`` (snake case) -> Application ``spec.syncPolicy``."""
    if not policy:
        return None
    out: Dict[str, Any] = {}
    automated = policy.get("automated")
    if automated is not None:
        out["automated"] = _drop_none({
            "prune": automated.get("prune"),
            "selfHeal": automated.get("self_heal"),
            "allowEmpty": automated.get("allow_empty"),
        })
    retry = policy.get("retry")
    if retry is not None:
        backoff = retry.get("backoff")
        out["retry"] = _drop_none({
            "limit": retry.get("limit"),
            "backoff": _drop_none({
                "duration": backoff.get("duration"),
                "factor": backoff.get("factor"),
                "maxDuration": backoff.get("max_duration"),
            }) if backoff else None,
        })
    if policy.get("sync_options"):
        out["syncOptions"] = list(policy["sync_options"])
    return out or None


def build_application(params: Dict[str, Any]) -> Dict[str, Any]:
    """The Application this module owns (only the fields it manages)."""
    metadata: Dict[str, Any] = {"name": params["name"], "namespace": params["namespace"]}
    if params.get("labels"):
        metadata["labels"] = {k: label_string(v) for k, v in params["labels"].items()}
    if params.get("annotations"):
        metadata["annotations"] = {k: label_string(v) for k, v in params["annotations"].items()}
    if params.get("finalizer", True):
        metadata["finalizers"] = [FINALIZER]
    destination: Dict[str, Any] = {}
    if params.get("destination_name"):
        destination["name"] = params["destination_name"]
    else:
        destination["server"] = params.get("destination_server") or DEFAULT_DESTINATION_SERVER
    if params.get("destination_namespace"):
        destination["namespace"] = params["destination_namespace"]
    source = _drop_none({
        "repoURL": params["repo_url"],
        "targetRevision": params.get("target_revision") or "HEAD",
        "path": params.get("path"),
    })
    spec: Dict[str, Any] = {
        "project": params.get("project") or "default",
        "source": source,
        "destination": destination,
    }
    sync_policy = build_sync_policy(params.get("sync_policy"))
    if sync_policy:
        spec["syncPolicy"] = sync_policy
    return {"apiVersion": API_VERSION, "kind": "Application", "metadata": metadata, "spec": spec}


def public_object(obj: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The object as returned to the user: everything but managedFields."""
    if not obj:
        return {}
    out = dict(obj)
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k != "managedFields"}
    return out


def _ref_text(params: Dict[str, Any]) -> str:
    return f"Application {params['namespace']}/{params['name']}"


# -- present ------------------------------------------------------------------
def ensure_present(client: Any, params: Dict[str, Any], check_mode: bool,
                   want_diff: bool) -> Dict[str, Any]:
    """Create or update the Application through the apply service (no write when it is already in place)."""
    namespace, name = params["namespace"], params["name"]
    manager = params.get("field_manager") or DEFAULT_FIELD_MANAGER
    body = build_application(params)
    live = client.get(APPLICATIONS, name, namespace)
    if live and live.get("metadata", {}).get("deletionTimestamp"):
        raise ValidationError(f"{_ref_text(params)} is being deleted (deletionTimestamp "
                              f"{live['metadata']['deletionTimestamp']}); wait until it is gone, "
                              "then apply it again")
    try:
        done = apply_object(client, APPLICATIONS, body, live, manager, namespace, check_mode=check_mode)
    except K8sError as exc:
        if exc.status == 404:
            raise K8sError(f"cannot apply {_ref_text(params)}: {exc} (does namespace {namespace} exist "
                           "and are the Argo CD CRDs installed?)", exc.status, exc.reason, exc.body) from exc
        raise
    result: Dict[str, Any] = {"changed": done.changed, "application": public_object(done.after)}
    if want_diff:
        result["diff"] = {
            "before_header": _ref_text(params), "after_header": _ref_text(params),
            "before": comparable(live), "after": comparable(done.after),
        }
    if params.get("wait") and not check_mode:
        result.update(wait_first_sync(client, params, float(params.get("wait_timeout") or 300)))
    return result


def sync_summary(app: Dict[str, Any]) -> str:
    """One line on where an Application's sync stands, for messages."""
    status = app.get("status") or {}
    op = status.get("operationState") or {}
    parts = [f"sync={(status.get('sync') or {}).get('status', 'Unknown')}",
             f"health={(status.get('health') or {}).get('status', 'Unknown')}"]
    if op:
        parts.append(f"operation={op.get('phase', '?')}" + (f" ({op['message']})" if op.get("message") else ""))
    for cond in status.get("conditions") or []:
        parts.append(f"{cond.get('type')}: {cond.get('message', '')}".strip())
    return ", ".join(parts)


def first_sync_state(app: Optional[Dict[str, Any]]) -> str:
    """'synced', 'failed' or 'waiting' for an Application's first sync."""
    if not app:
        return "waiting"
    status = app.get("status") or {}
    phase = (status.get("operationState") or {}).get("phase")
    if phase in ("Failed", "Error"):
        return "failed"
    if phase in ("Running", "Terminating"):
        return "waiting"
    if (status.get("sync") or {}).get("status") == "Synced" or phase == "Succeeded":
        return "synced"
    return "waiting"


def wait_first_sync(client: Any, params: Dict[str, Any], timeout: float, interval: float = 2.0,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """Poll the Application until its first sync finished, failed, or ``timeout`` passed.

    Returns result keys; raises ModuleFailure (with the app as seen) when it failed or timed out.
    """
    seen: Dict[str, Any] = {}

    def settled() -> Optional[str]:
        seen["app"] = client.get(APPLICATIONS, params["name"], params["namespace"])
        state = first_sync_state(seen["app"])
        return None if state == "waiting" else state

    started = clock()
    try:
        state = wait_for(settled, timeout, interval=interval, clock=clock, sleep=sleep, what="the first sync")
    except WaitTimeout:
        raise ModuleFailure(f"{_ref_text(params)}: timed out after {timeout:.0f}s waiting for the first sync: "
                            f"{sync_summary(seen.get('app') or {})}",
                            {"application": public_object(seen.get("app"))}) from None
    app = seen["app"]
    if state == "failed":
        raise ModuleFailure(f"{_ref_text(params)}: first sync failed: {sync_summary(app or {})}",
                            {"application": public_object(app)})
    return {"application": public_object(app), "sync_seconds": round(clock() - started, 1)}


# -- absent -------------------------------------------------------------------
def ensure_absent(client: Any, params: Dict[str, Any], check_mode: bool, want_diff: bool,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """Delete the Application, with Argo CD's cascade (finalizer) or without it."""
    namespace, name = params["namespace"], params["name"]
    cascade = params.get("cascade", True)
    live = client.get(APPLICATIONS, name, namespace)
    result: Dict[str, Any] = {"changed": False, "application": {}}
    if live is None:
        return result
    meta = live.get("metadata", {})
    finalizers = list(meta.get("finalizers") or [])
    deleting = bool(meta.get("deletionTimestamp"))
    ops: List[Dict[str, Any]] = []
    if cascade and FINALIZER not in finalizers and not deleting:
        # Argo CD deletes the resources an Application manages only with its finalizer.
        ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")},
               {"op": "add", "path": "/metadata/finalizers", "value": finalizers + [FINALIZER]}]
    elif not cascade and FINALIZER in finalizers:
        kept = [f for f in finalizers if f != FINALIZER]
        ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")},
               {"op": "replace", "path": "/metadata/finalizers", "value": kept}]
    if not ops and deleting:
        # Already being deleted the requested way: nothing left to do but maybe wait.
        result["application"] = public_object(live)
    else:
        result["changed"] = True
        if ops:
            live = client.json_patch(APPLICATIONS, name, ops, namespace, dry_run=check_mode)
        if not deleting:
            client.delete(APPLICATIONS, name, namespace, dry_run=check_mode)
        result["application"] = public_object(live)
    if want_diff:
        result["diff"] = {"before_header": _ref_text(params), "after_header": _ref_text(params),
                          "before": comparable(live), "after": {}}
    if params.get("wait") and not check_mode:
        timeout = float(params.get("wait_timeout") or 300)
        try:
            wait_for(lambda: client.get(APPLICATIONS, name, namespace) is None, timeout, interval=2.0,
                     clock=clock, sleep=sleep, what=f"{_ref_text(params)} to be deleted")
        except WaitTimeout:
            how = ("Argo CD removes its finalizer after deleting the app's resources: is the "
                   "application controller running?") if cascade else "another finalizer holds it"
            raise ModuleFailure(f"{_ref_text(params)}: still present {timeout:.0f}s after delete; {how}",
                                result) from None
        result["application"] = {}
    return result


# -- entry point --------------------------------------------------------------
def run(client: Any, params: Dict[str, Any], check_mode: bool, want_diff: bool,
        validated: bool = False) -> Dict[str, Any]:
    """Validate (unless the caller did), then converge the root Application to ``params['state']``.

    Every request ends within ``wait_timeout`` plus a few seconds, even when the API server stops answering.
    """
    if not validated:
        validate(params)
    timeout = float(params.get("wait_timeout") or 300)
    with bounded(client, timeout, f"{_ref_text(params)}"):
        if params.get("state", "present") == "absent":
            return ensure_absent(client, params, check_mode, want_diff)
        return ensure_present(client, params, check_mode, want_diff)
