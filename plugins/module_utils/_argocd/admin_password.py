# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Argo CD's admin password: a bcrypt hash in Secret ``argocd-secret``.

Argo CD reads ``admin.password`` (bcrypt) and ``admin.passwordMtime``
(RFC 3339; tokens issued before it are revoked).  The module is idempotent
because an existing hash that verifies against the wanted password is kept.
The password itself never leaves this module: not in results, not in diffs.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any, Callable, Dict, Optional

from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_validation import (
    dns1123_label_error,
    dns1123_subdomain_error,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import SECRETS, K8sError

try:
    import bcrypt
    HAS_BCRYPT = True
except ImportError:  # pragma: no cover - reported by the module
    HAS_BCRYPT = False

PASSWORD_KEY = "admin.password"
MTIME_KEY = "admin.passwordMtime"
HIDDEN = "<hidden>"
HIDDEN_CHANGED = "<hidden, changed>"
BCRYPT_ROUNDS = 10  # Argo CD's own cost
BCRYPT_MAX_BYTES = 72


def utc_now_rfc3339() -> str:
    """Current UTC time as Argo CD writes it (RFC 3339, seconds, Z)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decode(data: Dict[str, str], key: str) -> Optional[bytes]:
    value = (data or {}).get(key)
    if not value:
        return None
    try:
        return base64.b64decode(value)
    except (ValueError, TypeError):
        return None


def password_matches(password: str, stored_hash: Optional[bytes]) -> bool:
    """True when ``stored_hash`` is a bcrypt hash of ``password``."""
    if not stored_hash:
        return False
    try:
        return bcrypt.checkpw(password.encode("utf-8"), stored_hash)
    except ValueError:  # not a bcrypt hash (or corrupted): replace it
        return False


def validate(params: Dict[str, Any]) -> None:
    """Raise ValidationError naming the option when the password cannot be hashed."""
    if not HAS_BCRYPT:
        raise ValidationError("the 'bcrypt' Python library is required on the host that runs this module")
    password = params.get("password")
    if not password:
        raise ValidationError("password: must not be empty")
    if not password.strip():
        raise ValidationError("password: must not be only white space")
    for option, default in (("namespace", "argocd"), ("secret_name", "argocd-secret")):
        error = (dns1123_label_error if option == "namespace" else dns1123_subdomain_error)(
            params.get(option) or default)
        if error:
            raise ValidationError(f"{option}: {error}")
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        raise ValidationError(f"password: longer than {BCRYPT_MAX_BYTES} bytes, which bcrypt cannot hash")


def run(client: Any, params: Dict[str, Any], check_mode: bool, want_diff: bool,
        now: Callable[[], str] = utc_now_rfc3339, validated: bool = False) -> Dict[str, Any]:
    """Make ``admin.password`` in the Secret verify against ``params['password']`` (validated unless the caller did)."""
    if not validated:
        validate(params)
    namespace = params.get("namespace") or "argocd"
    name = params.get("secret_name") or "argocd-secret"
    secret = client.get(SECRETS, name, namespace)
    if secret is None and check_mode:
        # A check run before the install: the manifest's apply did not create the Secret.
        warning = (f"Secret {namespace}/{name} does not exist yet; a real run fails unless the "
                   "Argo CD install creates it first")
        return {"changed": True, "secret": {"namespace": namespace, "name": name}, "password_mtime": None,
                "warnings": [warning]}
    if secret is None:
        raise ValidationError(f"Secret {namespace}/{name} does not exist: install Argo CD into namespace "
                              f"{namespace} first (its install manifest creates the Secret)")
    data = secret.get("data") or {}
    old_mtime = (_decode(data, MTIME_KEY) or b"").decode("utf-8", "replace")
    result: Dict[str, Any] = {"changed": False, "secret": {"namespace": namespace, "name": name},
                              "password_mtime": old_mtime or None}
    if password_matches(params["password"], _decode(data, PASSWORD_KEY)):
        return result
    mtime = now()
    hashed = bcrypt.hashpw(params["password"].encode("utf-8"), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
    patch = {
        "metadata": {"resourceVersion": secret.get("metadata", {}).get("resourceVersion")},
        "data": {
            PASSWORD_KEY: base64.b64encode(hashed).decode("ascii"),
            MTIME_KEY: base64.b64encode(mtime.encode("utf-8")).decode("ascii"),
        },
    }
    try:
        client.merge_patch(SECRETS, name, patch, namespace, dry_run=check_mode)
    except K8sError as exc:
        # Never echo the request: it carries the hash.
        raise K8sError(f"cannot update Secret {namespace}/{name}: HTTP {exc.status} {exc.reason}",
                       exc.status, exc.reason) from None
    result.update(changed=True, password_mtime=mtime)
    if want_diff:
        result["diff"] = {
            "before_header": f"Secret {namespace}/{name}", "after_header": f"Secret {namespace}/{name}",
            "before": {PASSWORD_KEY: HIDDEN if data.get(PASSWORD_KEY) else "", MTIME_KEY: old_mtime},
            "after": {PASSWORD_KEY: HIDDEN_CHANGED, MTIME_KEY: mtime},
        }
    return result
