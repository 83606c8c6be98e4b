# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The one way this collection writes an object: server-side apply, only when something differs.

``apply_object`` reads nothing itself: given the live object (one GET by the
caller, or None), it

1. skips the write when every field of the document already has that value in
   the cluster *and* every field this field manager owns is still in the
   document (so a field dropped from a newer document is still removed): a
   rerun costs the caller's GET and nothing else;
2. otherwise applies it (a server-side dry run in check mode), and reports a
   change only when the API server's result differs from what was there in
   anything but bookkeeping and status;
3. gives the before/after for ``--diff`` from the same two objects, with the
   values of a Secret hidden.

``k8s_manifest`` (every document of a release manifest) and
``argocd_root_app`` (the root Application) both write through it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ansible_collections.ecoeco.gitops.plugins.module_utils.diffing import changed_paths, comparable
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sError, ResourceRef

HIDDEN = "<hidden>"
# Kinds whose values are secret: never in a result or a diff.
SECRET_KINDS = ("Secret",)
CREATED, CONFIGURED, UNCHANGED = "created", "configured", "unchanged"


@dataclass
class Applied:
    """What one apply did: ``action`` and the objects before and after (None = did not exist)."""

    action: str
    before: Optional[Dict[str, Any]]
    after: Optional[Dict[str, Any]]
    changed_paths: List[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.action != UNCHANGED

    def diff(self, label: str) -> Dict[str, Any]:
        """The ``--diff`` entry, Secret values hidden."""
        return {"before_header": label, "after_header": label,
                "before": redacted(self.before) if self.before else {},
                "after": redacted(self.after) if self.after else {}}


def label_of(body: Dict[str, Any], namespace: Optional[str]) -> str:
    """``Kind namespace/name`` for messages and diff headers."""
    return f"{body['kind']} {namespace + '/' if namespace else ''}{body['metadata']['name']}"


def apply_object(client: Any, ref: ResourceRef, body: Dict[str, Any], live: Optional[Dict[str, Any]],
                 field_manager: str, namespace: Optional[str] = None, *, check_mode: bool = False,
                 force: bool = True) -> Applied:
    """Apply ``body`` unless ``live`` already has it (see the module docstring)."""
    if already_applied(body, live, field_manager):
        return Applied(UNCHANGED, live, live)
    try:
        after = client.apply(ref, body, field_manager, namespace, dry_run=check_mode, force=force)
    except K8sError as exc:
        raise K8sError(f"{label_of(body, namespace)}: {exc}", exc.status, exc.reason, exc.body) from exc
    if live is not None and comparable(live) == comparable(after):
        return Applied(UNCHANGED, live, after)
    if live is None:
        return Applied(CREATED, None, after)
    return Applied(CONFIGURED, live, after, changed_paths(comparable(live), comparable(after)))


# -- deciding whether an object needs a write --------------------------------------

def omitted_when_stored(value: Any) -> bool:
    """A value the API server drops on write (``omitempty``): false, 0, "", [] or null.

    An empty mapping is not one of them: ``emptyDir: {}`` says something.
    """
    if value is None or value is False or value == "" or value == []:
        return True
    return type(value) in (int, float) and value == 0


def is_subset(desired: Any, live: Any) -> bool:
    """True when every value of ``desired`` is already in ``live`` (lists: same length, element-wise).

    A key of ``desired`` whose value the server omits when stored (false, 0, "", [], null) matches a
    ``live`` without that key: the server dropped it, and applying it again would change nothing.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(is_subset(value, live[key]) if key in live else omitted_when_stored(value)
                   for key, value in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(desired) == len(live) and all(
            is_subset(d, lv) for d, lv in zip(desired, live))
    return desired == live


def _list_element(items: Any, key: str) -> Any:
    """The element of ``items`` that a managedFields key (k:, v:, i:) points at, or None."""
    if not isinstance(items, list):
        return None
    kind, raw = key.partition(":")[::2]
    if kind == "k":
        want = json.loads(raw)
        for item in items:
            if isinstance(item, dict) and all(str(item[k]) == str(v) for k, v in want.items() if k in item) \
                    and any(k in item for k in want):
                return item
        return None
    if kind == "v":
        value = json.loads(raw)
        return value if value in items else None
    if kind == "i":
        index = int(raw)
        return items[index] if index < len(items) else None
    return None


def owned_fields_declared(fields: Dict[str, Any], doc: Any) -> bool:
    """True when every field in a managedFields ``fieldsV1`` tree is still present in ``doc``."""
    for key, sub in fields.items():
        if key == ".":
            continue
        if key.startswith("f:"):
            name = key[2:]
            if not isinstance(doc, dict) or name not in doc:
                return False
            child = doc[name]
        else:
            child = _list_element(doc, key)
            if child is None:
                return False
        if sub and not owned_fields_declared(sub, child):
            return False
    return True


IDENTITY = ("apiVersion", "kind", "metadata")


def _identity_only(doc: Dict[str, Any]) -> bool:
    """Nothing but apiVersion, kind, metadata.name/namespace: an apply records no managedFields entry for it."""
    return set(doc) <= set(IDENTITY) and set(doc.get("metadata") or {}) <= {"name", "namespace"}


def already_applied(desired: Dict[str, Any], live: Optional[Dict[str, Any]], field_manager: str) -> bool:
    """The no-write fast path: ``desired`` is in ``live`` and owns nothing beyond ``desired``.

    A document's ``status`` (some CRDs ship one) is not compared: status is never applied with the object.
    """
    desired = {k: v for k, v in desired.items() if k != "status"}
    if not live or not is_subset(desired, live):
        return False
    entries = [e for e in (live.get("metadata") or {}).get("managedFields") or []
               if e.get("manager") == field_manager and e.get("operation") == "Apply" and not e.get("subresource")]
    if not entries:
        return _identity_only(desired)
    return all(owned_fields_declared(e.get("fieldsV1") or {}, desired) for e in entries)


# -- results that never carry secrets ----------------------------------------------

def redacted(obj: Dict[str, Any]) -> Dict[str, Any]:
    """``comparable(obj)``, with the values of a Secret hidden."""
    out = comparable(obj)
    if out.get("kind") in SECRET_KINDS:
        for key in ("data", "stringData"):
            if isinstance(out.get(key), dict):
                out[key] = {k: HIDDEN for k in out[key]}
    return out
